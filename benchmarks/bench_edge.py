"""Benchmark edge bundles; write benchmarks/results/edge.{json,md}.

Measures, on this machine, for the template's model trained on its default data (20,000 rows)
in a temporary folder, per bundle format:
- native: the default model (HistGradientBoosting with native categorical splits), compiled by
  Treelite and TL2cgen;
- onnx: the same model trained with `train.model.native_categorical: false` (skl2onnx ignores
  native categorical splits, so `modelops export` refuses the default model under onnx);
and for each: the export's seconds; the bundle's size (its directory, and the tar.gz a device
downloads); the time of one call for one row and for 1,000 rows through the device client
(`modelops_device`) against the scikit-learn pipeline's `predict_proba` on the same rows, one
thread (OMP, OpenBLAS, MKL at 1; onnxruntime with intra_op_num_threads=1), median and p95 over
the repeats; parity (max |Δp|, class agreement at `evaluate.threshold`) on the test set and on
the edge cases. The bundles are exported with `modelops export`'s own code, unsigned.

Run with `make bench` (or `python -m benchmarks.bench_edge --quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.bench_pipeline import (
    REPO_ROOT,
    environment,
    fresh,
    machine,
    timed,
    write_results,
)
from tests.support import template_params, venv_bin, write_params

EDGE_VENV = REPO_ROOT / "edge" / ".venv"
FORMATS: dict[str, dict[str, Any]] = {
    "native": {},
    "onnx": {"native_categorical": False},
}
"""Each format, and what its model changes in the template's `train.model`."""
GOALS = {"single_row_p95_us": 1000.0, "archive_bytes": 1_000_000}
BATCH_ROWS = 1000
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _trained(name: str, model: dict[str, Any]) -> Path:
    """A project trained on the default data with `model` changed, edge/.venv linked in."""
    project = fresh(name)
    params = template_params()
    params["train"]["model"].update(model)
    write_params(project, params)
    env = environment(project) | ONE_THREAD
    modelops = str(venv_bin() / "modelops")
    for command in ("prepare", "train"):
        timed([modelops, command], project, env)
    (project / "edge").mkdir()
    (project / "edge" / ".venv").symlink_to(EDGE_VENV)
    return project


def _exported(project: Path, fmt: str) -> tuple[dict[str, Any], float]:
    """`modelops export --format fmt --unsigned` on the project's model, and its seconds."""
    from modelops.edge.export import ExportRequest, export
    from modelops.params import load_params
    from modelops.paths import ProjectPaths

    paths = ProjectPaths(project)
    request = ExportRequest(fmt, out_dir=project / "bundles", unsigned=True)
    started = time.perf_counter()
    published = export(request, load_params(paths.params_file), paths)
    return published, time.perf_counter() - started


def _device_request(project: Path, bundle: Path, *, repeats: int, singles: int) -> dict[str, Any]:
    """What edge_timing needs: the bundle, the model file, the test rows and the edge cases."""
    from modelops.edge.cases import edge_cases, table_columns
    from modelops.paths import MODEL_CARD, ProjectPaths
    from modelops.prepared import load_prepared

    paths = ProjectPaths(project)
    sklearn = yaml.safe_load((paths.model_dir / "MLmodel").read_text())["flavors"]["sklearn"]
    card = json.loads((paths.model_dir / MODEL_CARD).read_text())
    prepared = load_prepared(paths.prepared_dir)
    schema = prepared.schema
    params = yaml.safe_load(paths.params_file.read_text())
    return {
        "bundle": str(bundle),
        "model_file": str(paths.model_dir / sklearn["pickled_model"]),
        "trusted_types": list(sklearn.get("skops_trusted_types") or []),
        "positive_label": card["positive_label"],
        "categorical": list(schema.categorical),
        "threshold": params["evaluate"]["threshold"],
        "rows": {
            "test": table_columns(schema, prepared.test),
            "edge": edge_cases(schema, prepared.train),
        },
        "repeats": repeats,
        "single_calls": singles,
        "batch_rows": BATCH_ROWS,
    }


def _on_device(request: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run edge_timing in edge/.venv, one thread, on `request`; its figures."""
    asked, answered = work / "timing-request.json", work / "timing-result.json"
    asked.write_text(json.dumps(request))
    done = subprocess.run(
        [
            str(EDGE_VENV / "bin" / "python"),
            "-m",
            "benchmarks.edge_timing",
            str(asked),
            str(answered),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, **ONE_THREAD},
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"edge_timing failed:\n{done.stdout}\n{done.stderr}")
    figures: dict[str, Any] = json.loads(answered.read_text())
    return figures


def _size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def bench(repeats: int, singles: int) -> dict[str, Any]:
    """Every format's export, size, timings, parity and goals."""
    found: dict[str, Any] = {"load_before": round(os.getloadavg()[0], 1)}
    for fmt, model in FORMATS.items():
        print(f"{fmt}: training, exporting, timing...", flush=True)
        project = _trained(f"edge-{fmt}", model)
        published, seconds = _exported(project, fmt)
        bundle = Path(published["directory"])
        manifest = json.loads((bundle / "manifest.json").read_text())
        figures = _on_device(
            _device_request(project, bundle, repeats=repeats, singles=singles), project
        )
        single = figures["timings"]["single_row"]["bundle"]
        parity = figures["parity"]
        found[fmt] = {
            "model": model or "the template's default",
            "export_s": round(seconds, 1),
            "directory_bytes": _size(bundle),
            "archive_bytes": int(published["archive_bytes"]),
            "model_file": manifest["model_file"],
            "model_file_bytes": (bundle / manifest["model_file"]).stat().st_size,
            "converters": manifest["converters"],
            "exporter_parity": published["parity"],
            **figures,
            "goals": {
                "exact_at_threshold": all(p["classed_differently"] == 0 for p in parity.values()),
                "single_row_under_1ms": single["p95_us"] < GOALS["single_row_p95_us"],
                "bundle_under_1mb": int(published["archive_bytes"]) < GOALS["archive_bytes"],
            },
        }
    found["load_after"] = round(os.getloadavg()[0], 1)
    return found


def _kb(size: int) -> str:
    return f"{size / 1e3:.1f} KB"


def _met(flag: bool) -> str:
    return "met" if flag else "**not met**"


def _duration(micro: float) -> str:
    """'86.5 µs' or '2.36 ms': three significant figures."""
    return f"{micro / 1e3:.3g} ms" if micro >= 1e3 else f"{micro:.3g} µs"


def _spread(found: dict[str, Any], shape: str, who: str) -> str:
    """'median / p95' of one call."""
    timing = found["timings"][shape][who]
    return f"{_duration(timing['median_us'])} / {_duration(timing['p95_us'])}"


def _faster(found: dict[str, Any], shape: str) -> str:
    """How many times faster the bundle's median call is than the pipeline's."""
    timing = found["timings"][shape]
    return f"{timing['sklearn']['median_us'] / timing['bundle']['median_us']:.1f}x"


def _parity_cell(found: dict[str, Any], part: str) -> str:
    parity = found["parity"][part]
    return (
        f"{parity['rows']}, {parity['max_abs_diff']:.3g}, {parity['class_agreement']:.2%} "
        f"({parity['classed_differently']} differ)"
    )


def markdown(result: dict[str, Any]) -> str:
    formats = [fmt for fmt in FORMATS if fmt in result]
    batch = f"batch_{BATCH_ROWS}"
    one, many = "single_row", f"{BATCH_ROWS:,} rows"
    figures: list[tuple[str, Any]] = [
        (
            "model",
            lambda f: "default" if isinstance(f["model"], str) else "native_categorical: false",
        ),
        ("model file", lambda f: f"`{f['model_file']}` {_kb(f['model_file_bytes'])}"),
        ("bundle directory", lambda f: _kb(f["directory_bytes"])),
        ("bundle archive (tar.gz, what a device downloads)", lambda f: _kb(f["archive_bytes"])),
        ("export (`modelops export`)", lambda f: f"{f['export_s']:g} s"),
        ("one row, bundle: median / p95", lambda f: _spread(f, one, "bundle")),
        ("one row, scikit-learn: median / p95", lambda f: _spread(f, one, "sklearn")),
        ("one row: the bundle faster by", lambda f: _faster(f, one)),
        (f"{many}, bundle: median / p95", lambda f: _spread(f, batch, "bundle")),
        (f"{many}, scikit-learn: median / p95", lambda f: _spread(f, batch, "sklearn")),
        (f"{many}: the bundle faster by", lambda f: _faster(f, batch)),
        ("test set: rows, max \\|Δp\\|, class agreement", lambda f: _parity_cell(f, "test")),
        ("edge cases: rows, max \\|Δp\\|, class agreement", lambda f: _parity_cell(f, "edge")),
    ]
    limit = GOALS["single_row_p95_us"] / 1000
    goals: list[tuple[str, str]] = [
        (
            "exact at `evaluate.threshold` on every row, test set and edge cases",
            "exact_at_threshold",
        ),
        (f"one row well under a millisecond: p95 under {limit:g} ms", "single_row_under_1ms"),
        ("the bundle under 1 MB: its tar.gz", "bundle_under_1mb"),
    ]
    header = ["| | " + " | ".join(f"`{fmt}`" for fmt in formats) + " |"]
    header.append("| --- |" + " --- |" * len(formats))
    lines = [
        "# Edge bundle benchmark",
        "",
        f"Machine: {result['machine']}. Command: `make bench`. Date: {result['date']}.",
        f"Load average (1 min) {result['load_before']} before, {result['load_after']} after.",
        "",
        "The template's model on its default data (20,000 rows: 4,000 test rows), exported "
        "with `modelops export` (unsigned). `native` is the default model (HistGradientBoosting "
        "with native categorical splits), compiled by Treelite and TL2cgen; `onnx` is the same "
        "model trained with `train.model.native_categorical: false`, since skl2onnx ignores "
        "native categorical splits and export refuses the default model under onnx. Timings: "
        "one call through the device client (`modelops_device`, encoding included) against "
        "the scikit-learn pipeline's `predict_proba` on the same rows (a DataFrame built "
        "beforehand), interleaved, one thread (OMP, OpenBLAS, MKL, onnxruntime), garbage "
        f"collection off; {result['repeats']} repeats of {result['single_calls']} one-row "
        f"calls and of one {BATCH_ROWS:,}-row call per model.",
        "",
        *header,
        *(
            f"| {label} | " + " | ".join(cell(result[f]) for f in formats) + " |"
            for label, cell in figures
        ),
        "",
        "## Goals",
        "",
        *header,
        *(
            f"| {label} | " + " | ".join(_met(result[f]["goals"][key]) for f in formats) + " |"
            for label, key in goals
        ),
    ]
    converters = "; ".join(
        f"{fmt}: " + ", ".join(f"{k} {v}" for k, v in sorted(result[fmt]["converters"].items()))
        for fmt in formats
    )
    lines += ["", f"Converters: {converters}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats of 20 one-row calls")
    parser.add_argument("--repeats", type=int, default=20, help="repeats of the timed calls")
    args = parser.parse_args()
    if not (EDGE_VENV / "bin" / "python").is_file():
        raise SystemExit(f"{EDGE_VENV} is missing: run `make install-edge`")
    repeats, singles = (3, 20) if args.quick else (args.repeats, 50)
    result: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "repeats": repeats,
        "single_calls": singles,
    }
    result |= bench(repeats, singles)
    if args.quick:
        print(markdown(result))
        return 0
    write_results("edge", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

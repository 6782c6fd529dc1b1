"""Benchmark the gates and the report; write benchmarks/results/gates.{json,md}.

Measures, on this machine, at 20k rows (the default data) and 200k rows:
- the two gate stages as `dvc repro` runs them (`modelops gate data drift`,
  `modelops gate model champion`; separate processes, imports and intervals included; median of
  three at 20k), with the default HTML reports (only what did not pass) and with every check's;
- Deepchecks' three default suites run as they come on the same data and model (data_integrity,
  train_test_validation, model_evaluation), in one process, imports included;
- `modelops report` on the default data, in a git repository, diffing against main.

Run with `make bench` (or `python -m benchmarks.bench_gates --quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_pipeline import (
    environment,
    fresh,
    machine,
    timed,
    write_results,
)
from tests.support import copy_template, git, small_params, venv_bin, write_params

REPO_ROOT = Path(__file__).resolve().parents[1]

GOALS = {"gates_default_s": 20.0, "speedup_200k": 5.0, "report_s": 5.0}
DEFAULT_SUITES = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
from pathlib import Path
from deepchecks.tabular.suites import data_integrity, model_evaluation, train_test_validation
from modelops import tracking
from modelops.gates.inputs import datasets
from modelops.prepared import load_prepared
prepared = load_prepared(Path("data/prepared"))
train, test = datasets(prepared.train, prepared.test, prepared.schema)
model = tracking.load_model(Path("models/model"))
seconds = {}
for name, suite in (("data_integrity", data_integrity), ("train_test_validation",
        train_test_validation), ("model_evaluation", model_evaluation)):
    started = time.perf_counter()
    suite().run(train_dataset=train, test_dataset=test, model=model)
    seconds[name] = round(time.perf_counter() - started, 2)
Path("suite_seconds.json").write_text(json.dumps(seconds))
"""


def _gate_seconds(
    project: Path, env: dict[str, str], modelops: str, *, repeats: int
) -> tuple[float, float]:
    """Median seconds of the two gate stages over `repeats` runs each."""
    data = [
        timed([modelops, "gate", "data", "drift"], project, env).seconds for _ in range(repeats)
    ]
    model = [
        timed([modelops, "gate", "model", "champion"], project, env).seconds for _ in range(repeats)
    ]
    return statistics.median(data), statistics.median(model)


def bench_size(rows: int, *, repeats: int = 1) -> dict[str, Any]:
    """Time our gate stages and the default suites on one project of `rows` rows."""
    project = fresh(f"gates-{rows}")
    params = small_params(rows)
    params["evaluate"]["importance_rows"] = 5000
    params["evaluate"]["importance_repeats"] = 5
    write_params(project, params)
    env = environment(project)
    modelops = str(venv_bin() / "modelops")
    for command in ("prepare", "train", "evaluate"):
        timed([modelops, command], project, env)
    gate_data, gate_model = _gate_seconds(project, env, modelops, repeats=repeats)
    always = params["gates"]["runner"] | {"html_reports": "always"}
    write_params(project, {**params, "gates": {**params["gates"], "runner": always}})
    data_html, model_html = _gate_seconds(project, env, modelops, repeats=repeats)
    html_bytes = sum(f.stat().st_size for f in (project / "reports" / "deepchecks").glob("*.html"))
    suites = timed([str(venv_bin() / "python"), "-c", DEFAULT_SUITES], project, env)
    per_suite = json.loads((project / "suite_seconds.json").read_text())
    ours = gate_data + gate_model
    return {
        "rows": rows,
        "gate_data_s": round(gate_data, 2),
        "gate_model_s": round(gate_model, 2),
        "gates_total_s": round(ours, 2),
        "gates_total_html_always_s": round(data_html + model_html, 2),
        "html_always_mb": round(html_bytes / 1e6, 1),
        "default_suites_s": round(suites.seconds, 2),
        "default_suites_detail_s": per_suite,
        "speedup": round(suites.seconds / ours, 1),
    }


def bench_report(repeats: int) -> dict[str, Any]:
    """`modelops report` in a git repository whose main has a committed run."""
    project = copy_template(fresh("report"), small_params(20_000))
    env = environment(project)
    dvc, modelops = str(venv_bin() / "dvc"), str(venv_bin() / "modelops")
    timed([dvc, "repro"], project, env)
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "First run")
    runs = [timed([modelops, "report"], project, env).seconds for _ in range(repeats)]
    return {"runs": [round(r, 2) for r in runs], "median": round(statistics.median(runs), 2)}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Gates and report benchmark",
        "",
        f"Machine: {result['machine']}. Command: `make bench`. Date: {result['date']}.",
        "",
        "Our gates are the two gate stages as `dvc repro` runs them (two processes, imports and",
        "HTML reports included). The default suites are Deepchecks' data_integrity,",
        "train_test_validation and model_evaluation run as they come on the same data and model",
        "(one process, imports included).",
        "",
        "| rows | gate_data | gate_model | our gates | with every HTML report (size) "
        "| default suites | speedup |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size in result["sizes"]:
        lines.append(
            f"| {size['rows']:,} | {size['gate_data_s']} s | {size['gate_model_s']} s "
            f"| {size['gates_total_s']} s | {size['gates_total_html_always_s']} s "
            f"({size['html_always_mb']} MB) | {size['default_suites_s']} s | {size['speedup']}x |"
        )
    lines += ["", "Default suites, per suite:", ""]
    for size in result["sizes"]:
        detail = ", ".join(f"{k} {v} s" for k, v in size["default_suites_detail_s"].items())
        lines.append(f"- {size['rows']:,} rows: {detail}")
    report = result["report"]
    lines += [
        "",
        f"`modelops report` (git repository, diff against main): median {report['median']} s "
        f"over {report['runs']}.",
        "",
        f"Goals: our gates under {GOALS['gates_default_s']:g} s on the default data; at least "
        f"{GOALS['speedup_200k']:g}x faster than the default suites at 200k rows; report under "
        f"{GOALS['report_s']:g} s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = parser.parse_args()
    sizes, repeats = ([3_000], 1) if args.quick else ([20_000, 200_000], 3)
    result: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    result["sizes"] = []
    for rows in sizes:
        print(f"gates at {rows} rows...", flush=True)
        result["sizes"].append(bench_size(rows, repeats=repeats if rows <= 20_000 else 1))
        print(f"  {result['sizes'][-1]}", flush=True)
    print("report...", flush=True)
    result["report"] = bench_report(repeats)
    print(f"  {result['report']}", flush=True)
    if args.quick:
        print(markdown(result))
        return 0
    write_results("gates", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`modelops export`: gather what the exporter needs, run it in edge/.venv, read its answer.

The converters cannot share the pipeline's environment (skl2onnx's tree converter fails under
its protobuf 7), so the exporter (`modelops_edge`) runs as a subprocess, as the model server
runs from serving/.venv. This side supplies what only the project knows: the model file and the
types its MLmodel trusts, the test rows and the edge cases (`cases`), the manifest's facts
(the model's content hash, the data version, the git commit) and the gate's threshold.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelops.edge.cases import edge_cases, table_columns
from modelops.errors import ExportError
from modelops.gitinfo import git_state
from modelops.identity import content_hash
from modelops.params import Params
from modelops.paths import MODEL_CARD, ProjectPaths
from modelops.prepared import load_prepared
from modelops.telemetry.profile import PROFILE_FILE

EDGE_BIN = Path("edge") / ".venv" / "bin"
BUNDLES_DIR = "bundles"


@dataclass(frozen=True)
class ExportRequest:
    """What `modelops export` was asked."""

    format: str
    model_dir: Path | None = None
    env: str | None = None
    out_dir: Path | None = None
    key: Path | None = None
    unsigned: bool = False
    name: str = "model"
    tolerance: float | None = None
    """The largest |Δp| parity accepts; None: `gates.edge.tolerance` (the gate's too)."""


@dataclass(frozen=True)
class Outcome:
    """The exporter's answer: what it published, or why it refused (cause and fix)."""

    published: dict[str, Any] | None
    """directory, archive, archive_sha256, archive_bytes, signed, parity, summary."""
    refusal: str = ""
    parity: dict[str, Any] | None = None
    """`parity.json`'s figures, published or not (None when refused before measuring)."""


def export(request: ExportRequest, params: Params, paths: ProjectPaths) -> dict[str, Any]:
    """Run the exporter; returns what it published (directory, archive, sha256, parity).

    Raises:
        ExportError: no model, no exporter environment, or the exporter refused (its message).
    """
    outcome = attempt(request, params, paths)
    if outcome.published is None:
        raise ExportError(outcome.refusal)
    return outcome.published


def exporter(paths: ProjectPaths) -> Path:
    """The exporter's command in edge/.venv.

    Raises:
        ExportError: edge/.venv is not built; the message says how to build it.
    """
    command = paths.root / EDGE_BIN / "modelops-edge"
    if not command.is_file():
        raise ExportError(f"{paths.show(command)} is missing: run `make install-edge`")
    return command


def attempt(request: ExportRequest, params: Params, paths: ProjectPaths) -> Outcome:
    """Run the exporter; its bundle and parity, or its refusal with the figures it measured.

    Raises:
        ExportError: no model, no exporter environment, or an exporter that crashed.
    """
    model_dir, model_hash = _model(request, params, paths)
    command = exporter(paths)
    if not (model_dir / PROFILE_FILE).is_file():
        raise ExportError(
            f"{paths.show(model_dir)}: no {PROFILE_FILE}, the bins a device counts its rows in; "
            "retrain the model with this pipeline (`dvc repro`), which writes it beside the model"
        )
    document = _request(request, params, paths, model_dir=model_dir, model_hash=model_hash)
    with tempfile.TemporaryDirectory(prefix="modelops-export-") as scratch:
        request_file = Path(scratch) / "request.json"
        request_file.write_text(json.dumps(document), encoding="utf-8")
        result_file = Path(scratch) / "result.json"
        run = [str(command), "export", str(request_file), "--result", str(result_file)]
        done = subprocess.run(run, capture_output=True, text=True)
        if not result_file.is_file():
            raise ExportError(f"the exporter failed: {_refusal(done.stderr)}")
        result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    if done.returncode:
        refusal = str(result.get("refused") or _refusal(done.stderr))
        return Outcome(None, refusal=refusal, parity=result.get("parity"))
    return Outcome(result, parity=result["parity"])


def _refusal(stderr: str) -> str:
    """The exporter's `error: ...` line (Treelite and gcc may log around it), else its output."""
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    return errors[-1].removeprefix("error: ") if errors else stderr.strip()


def _model(request: ExportRequest, params: Params, paths: ProjectPaths) -> tuple[Path, str]:
    """The model directory (--model, the environment's released model, or models/model) and
    its content hash (the release's, checked when fetched)."""
    if request.env is not None:
        from modelops.batch.score import released_model

        released = released_model(request.env, params, paths)
        if released is None:
            raise ExportError(f"{request.env} has no released model yet; give --model DIR")
        return released.directory, released.expected_hash
    directory = request.model_dir or paths.model_dir
    if not (directory / "MLmodel").is_file():
        raise ExportError(f"{paths.show(directory)}: no trained model; run `dvc repro` first")
    return directory, content_hash(directory)


def _request(
    request: ExportRequest,
    params: Params,
    paths: ProjectPaths,
    *,
    model_dir: Path,
    model_hash: str,
) -> dict[str, Any]:
    """The exporter's request (JSON): everything it needs, nothing it must look up."""
    flavor = yaml.safe_load((model_dir / "MLmodel").read_text(encoding="utf-8"))["flavors"]
    sklearn = flavor["sklearn"]
    card = json.loads((model_dir / MODEL_CARD).read_text(encoding="utf-8"))
    prepared = load_prepared(paths.prepared_dir)
    schema = prepared.schema
    return {
        "format": request.format,
        "name": request.name,
        "model_file": str((model_dir / sklearn["pickled_model"]).resolve()),
        "profile_file": str((model_dir / PROFILE_FILE).resolve()),
        "trusted_types": list(sklearn.get("skops_trusted_types") or []),
        "out_dir": str((request.out_dir or paths.root / BUNDLES_DIR).resolve()),
        "key": str(request.key.resolve()) if request.key else None,
        "unsigned": request.unsigned,
        "tolerance": _tolerance(request, params),
        "threshold": params.evaluate.threshold,
        "positive_label": card["positive_label"],
        "categorical": list(schema.categorical),
        "manifest": {
            "model_hash": model_hash,
            "model_kind": card.get("model_kind", ""),
            "data_version": card.get("data_version", prepared.meta.data_hash),
            "git_commit": git_state(paths.root).commit,
        },
        "rows": {
            "test": table_columns(schema, prepared.test),
            "edge": edge_cases(schema, prepared.train),
        },
    }


def _tolerance(request: ExportRequest, params: Params) -> float:
    """--tolerance, else the gate's: one limit for the pull request and the release."""
    return params.gates.edge.tolerance if request.tolerance is None else request.tolerance

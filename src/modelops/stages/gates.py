"""Stage `gates`: collect every gate's result into `reports/gates.json`, with the verdict.

It never fails on a verdict: gates produce, CI enforces (`modelops verdict` exits non-zero when an
enforced gate failed). The verdict, each gate's status and the judged model's hash also become
tags of the evaluate stage's MLflow run, so the run and the pull request agree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from modelops import tracking
from modelops.errors import ModelopsError
from modelops.gates.registry import GATE_NAMES
from modelops.gates.results import (
    GateResult,
    GatesRecord,
    Verdict,
    gates_document,
    read_record,
    verdict,
)
from modelops.io import bytes_writer, commit, json_bytes


def run(
    *, gate_dir: Path, out_file: Path, run_file: Path, root: Path
) -> tuple[Verdict, tuple[GateResult, ...]]:
    """Merge `gate_dir/<gate>.json` for every gate into `out_file`; tag the MLflow run."""
    missing = [name for name in GATE_NAMES if not (gate_dir / f"{name}.json").is_file()]
    if missing:
        raise ModelopsError(
            f"{gate_dir}: no result for gate(s) {', '.join(missing)}; run `dvc repro` first"
        )
    gates = tuple(
        GateResult.from_dict(json.loads((gate_dir / f"{name}.json").read_text(encoding="utf-8")))
        for name in GATE_NAMES
    )
    document = gates_document(gates)
    if run_file.is_file():
        run_id = str(json.loads(run_file.read_text(encoding="utf-8"))["run_id"])
        tracking.tag_run(run_id, run_tags(read_record(document), gates), root=root)
    commit({out_file: bytes_writer(json_bytes(document))})
    return verdict(gates), gates


def run_tags(record: GatesRecord, gates: Sequence[GateResult]) -> dict[str, str]:
    """`gates.verdict`, `gates.<gate>` (each gate's status) and `gates.judged_model`."""
    tags: dict[str, str] = {"gates.verdict": record.verdict.status}
    tags.update({f"gates.{gate.name}": gate.status for gate in gates})
    if record.judged is not None:
        tags["gates.judged_model"] = record.judged.model_hash
    return tags

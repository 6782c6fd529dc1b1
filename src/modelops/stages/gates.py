"""Stage `gates`: collect every gate's result into `reports/gates.json`, with the verdict.

It never fails: gates produce, CI enforces (`modelops verdict` exits non-zero when an enforced
gate failed).
"""

from __future__ import annotations

import json
from pathlib import Path

from modelops.errors import ModelopsError
from modelops.gates.results import GATE_ORDER, GateResult, Verdict, gates_document, verdict
from modelops.io import bytes_writer, commit, json_bytes


def run(*, gate_dir: Path, out_file: Path) -> tuple[Verdict, tuple[GateResult, ...]]:
    """Merge `gate_dir/<gate>.json` for every gate into `out_file`."""
    missing = [name for name in GATE_ORDER if not (gate_dir / f"{name}.json").is_file()]
    if missing:
        raise ModelopsError(
            f"{gate_dir}: no result for gate(s) {', '.join(missing)}; run `dvc repro` first"
        )
    gates = tuple(
        GateResult.from_dict(json.loads((gate_dir / f"{name}.json").read_text(encoding="utf-8")))
        for name in GATE_ORDER
    )
    commit({out_file: bytes_writer(json_bytes(gates_document(gates)))})
    return verdict(gates), gates

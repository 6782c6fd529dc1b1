"""Stage `champion`: record which model the champion gate compares with.

The champion lives outside the workspace (what production serves on `main`, or `main`'s model),
so no dependency of `gate_model` changes when it moves. This stage always runs (cheap: git reads,
no model), and writes `reports/champion.json` only with the champion's identity: DVC reruns the
champion gate exactly when that identity changes, never when nothing moved.
"""

from __future__ import annotations

from pathlib import Path

from modelops.gates.champion_source import champion_identity
from modelops.io import bytes_writer, commit, json_bytes
from modelops.params import ChampionGateParams


def run(params: ChampionGateParams, *, root: Path, out_file: Path) -> dict[str, str]:
    """Write the champion's identity to `out_file` and return it."""
    identity = champion_identity(root, params)
    commit({out_file: bytes_writer(json_bytes(identity))})
    return identity

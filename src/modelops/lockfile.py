"""Reading `dvc.lock`: which version (md5) of each output a commit recorded."""

from __future__ import annotations

import hashlib
import json

import yaml

MODEL_PATH = "models/model"
DATA_PATH = "data/prepared"


def output_versions(lock_text: str | None) -> dict[str, str]:
    """Output path -> md5 for every stage output a `dvc.lock` records (empty when none)."""
    if not lock_text:
        return {}
    stages = (yaml.safe_load(lock_text) or {}).get("stages", {})
    return {
        out["path"]: out.get("md5", "unknown")
        for stage in stages.values()
        for out in stage.get("outs", [])
    }


def stage_inputs(lock_text: str | None, stage: str) -> str | None:
    """A fingerprint of what a stage ran on: its dependencies' md5s and its params.

    Two runs of the stage on the same inputs share it even when their outputs' bytes differ
    (a retrained model carries new timestamps). None when `dvc.lock` has no such stage.
    """
    if not lock_text:
        return None
    entry = ((yaml.safe_load(lock_text) or {}).get("stages") or {}).get(stage)
    if not entry:
        return None
    inputs = {
        "cmd": entry.get("cmd"),
        "deps": sorted((dep["path"], dep.get("md5")) for dep in entry.get("deps", [])),
        "params": entry.get("params", {}),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()

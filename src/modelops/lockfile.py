"""Reading `dvc.lock`: which version (md5) of each output a commit recorded."""

from __future__ import annotations

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

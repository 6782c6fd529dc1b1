"""Reading `dvc.lock`: which version (md5) of each output a commit recorded, and what made it."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelops.io import JSONObject

TRAIN_STAGE = "train"


def output_versions(lock_text: str | None) -> dict[str, str]:
    """Output path -> md5 for every stage output a `dvc.lock` records (empty when none)."""
    return {
        out["path"]: out.get("md5", "unknown")
        for stage in _stages(lock_text).values()
        for out in stage.get("outs", [])
    }


def stage_inputs(lock_text: str | None, stage: str = TRAIN_STAGE) -> str | None:
    """A fingerprint of everything a stage's outputs come from, through earlier stages.

    Each dependency that another stage produced (the prepared data, for `train`) stands for that
    stage's own inputs, recursively, so the fingerprint names code, params and raw data only,
    never the bytes of an intermediate output. Two runs on the same inputs share it even when
    their outputs differ (a retrained model carries new timestamps), and so do two machines
    whose prepared files differ in metadata. None when `dvc.lock` has no such stage.
    """
    stages = _stages(lock_text)
    if stage not in stages:
        return None
    producers = {
        out["path"]: name for name, entry in stages.items() for out in entry.get("outs", [])
    }
    digest = hashlib.sha256(
        json.dumps(_inputs(stage, stages, producers, ()), sort_keys=True).encode()
    )
    return digest.hexdigest()


def _inputs(
    stage: str,
    stages: JSONObject,
    producers: dict[str, str],
    seen: tuple[str, ...],
) -> dict[str, object]:
    entry = stages[stage]
    deps = []
    for dep in sorted(entry.get("deps", []), key=lambda dep: str(dep["path"])):
        producer = producers.get(dep["path"])
        if producer is not None and producer != stage and producer not in seen:
            upstream = _inputs(producer, stages, producers, (*seen, stage))
            deps.append((dep["path"], upstream))
        else:
            deps.append((dep["path"], dep.get("md5")))
    return {"cmd": entry.get("cmd"), "deps": deps, "params": entry.get("params", {})}


def _stages(lock_text: str | None) -> JSONObject:
    if not lock_text:
        return {}
    import yaml  # here, not at import: `modelops --help` reaches this module

    from modelops import yamltext

    # DVC writes dvc.lock, so it parses: libyaml's parser reads it for every stage that does.
    stages: JSONObject = (yaml.load(lock_text, Loader=yamltext.LOADER) or {}).get("stages") or {}
    return stages

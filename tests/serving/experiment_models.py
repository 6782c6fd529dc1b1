"""The two models of the experiment tests, and each one's scores alone (no server).

The shared trained model is `stable`; the candidate `b` is that model with its trees' starting
log-odds raised by `SHIFT` (no training: every score differs, the inputs are the same). Used by
test_experiment_server.py (Seldon's protocol) and test_v2_protocol.py (the V2 protocol).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io
from modelops_contract import Experiment, Variant
from modelops_serving.artifact import content_hash, read_artifact
from modelops_serving.skops_types import REVIEWED_SKOPS_TYPES

UNIT, COVARIATE = "customer_id", "spend_before"
SHIFT = 1.0
"""How much `b` raises every row's log-odds."""


def with_candidate(model_dir: Path, base: Path) -> Path:
    """`base` (the replicas' model_uri), holding `b/`: the model with its baseline shifted."""
    candidate = Path(shutil.copytree(model_dir, base / "b"))
    pipeline = skops.io.load(candidate / "model.skops", trusted=sorted(REVIEWED_SKOPS_TYPES))
    classifier = pipeline.named_steps["classifier"]
    classifier._baseline_prediction = classifier._baseline_prediction + SHIFT
    (candidate / "model.skops").write_bytes(skops.io.dumps(pipeline))
    return base


def half_and_half(model_dir: Path, models: Path) -> Experiment:
    """stable (the model at `model_dir`, absolutely) and b (`models/b`, relatively), 50/50."""
    return Experiment(
        name="churn-offer",
        salt="churn-offer-1",
        unit=UNIT,
        covariate=COVARIATE,
        variants=(
            Variant("stable", "v-stable", content_hash(model_dir), str(model_dir), 50),
            Variant("b", "v-b", content_hash(models / "b"), "b", 50),
        ),
    )


def alone(model: Path, names: list[str], table: list[list[Any]]) -> np.ndarray:
    """Class probabilities of `model` on rows, by the pipeline itself, no server."""
    pipeline = skops.io.load(model / "model.skops", trusted=sorted(REVIEWED_SKOPS_TYPES))
    frame = pd.DataFrame(table, columns=names)
    for column in read_artifact(model).columns:
        if column.kind == "number":
            frame[column.name] = frame[column.name].astype("float64")
    return np.asarray(pipeline.predict_proba(frame))

"""Stage `train`: fit the preprocessing + classifier pipeline and save it as an MLflow model.

Writes `models/model/` (an MLflow model directory: skops file, signature, input example, plus
`modelops.json`: what the server reports about the model), swapped in whole once saving
succeeded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from modelops import data, tracking
from modelops.io import json_bytes, staged_dir
from modelops.metric_registry import EXPECTED
from modelops.metrics import classification_metrics
from modelops.model import Classifier, build_pipeline, size_warnings
from modelops.params import TrainParams
from modelops.paths import MODEL_CARD
from modelops.prepared import Prepared, load_prepared
from modelops.telemetry.profile import PROFILE_FILE, ReferenceProfile, build_profile


@dataclass(frozen=True)
class TrainResult:
    """What was trained, on how much data, how long fitting took, and what to look at."""

    model_kind: str
    features: int
    train_rows: int
    fit_seconds: float
    iterations: int | None
    warnings: tuple[str, ...] = ()


def run(params: TrainParams, *, threshold: float, data_dir: Path, model_dir: Path) -> TrainResult:
    """Fit on the prepared training set and save the model directory with its profile.

    The reference profile (`telemetry.profile`) is what normal looks like for this model: the
    training features' bins and the test set's scores at the deployment's `threshold`. It is
    written into the model directory, so it is published and served with the model.

    A training set too small for the params gets warnings (in the result) naming the param to
    set; one scikit-learn cannot fit at all is refused before anything is written.
    """
    prepared = load_prepared(data_dir)
    counts = prepared.train[prepared.schema.label].value_counts()
    warnings = size_warnings(
        params.model, class_rows={str(name): int(rows) for name, rows in counts.items()}
    )
    inputs = data.features(prepared.train, prepared.schema)
    pipeline = build_pipeline(prepared.schema, params)
    started = time.perf_counter()
    pipeline.fit(inputs, prepared.train[prepared.schema.label])
    fit_seconds = time.perf_counter() - started
    schema = prepared.schema
    card = {
        "classes": [str(c) for c in pipeline.classes_],
        "data_version": prepared.meta.data_hash,
        "label": schema.label,
        "model_kind": params.model.kind,
        "positive_label": schema.positive_label,
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    profile = _profile(pipeline, prepared, threshold=threshold)
    with staged_dir(model_dir) as staging:
        tracking.save_model(pipeline, staging, training_features=inputs)
        (staging / MODEL_CARD).write_bytes(json_bytes(card))
        (staging / PROFILE_FILE).write_bytes(profile.to_json())
    iterations = getattr(pipeline[-1], "n_iter_", None)
    return TrainResult(
        model_kind=params.model.kind,
        features=inputs.shape[1],
        train_rows=len(inputs),
        fit_seconds=round(fit_seconds, 3),
        iterations=int(np.max(iterations)) if iterations is not None else None,
        warnings=warnings,
    )


def _profile(pipeline: Classifier, prepared: Prepared, *, threshold: float) -> ReferenceProfile:
    """Profile the training features and the test set's scores (and the metrics they give)."""
    schema = prepared.schema
    positive = list(pipeline.classes_).index(schema.positive_label)
    scores = pipeline.predict_proba(data.features(prepared.test, schema))[:, positive]
    truth = (prepared.test[schema.label] == schema.positive_label).to_numpy()
    expected = classification_metrics(
        truth,
        scores,
        classes=(schema.negative_label, schema.positive_label),
        threshold=threshold,
        train_positive_rate=prepared.meta.train_positive_rate,
    )
    return build_profile(
        prepared.train,
        numeric=schema.numeric,
        categorical=schema.categorical,
        test_scores=scores,
        test_positive=truth,
        threshold=threshold,
        expected={name: getattr(expected, name) for name in EXPECTED},
        positive_label=schema.positive_label,
    )

"""The seldon-core Python component serving the pipeline's model.

Run it with `modelops-microservice modelops_serving.server.ModelServer` (seldon-core's
microservice with a bind host and this server's error handlers: `modelops_serving.microservice`),
as `make serve`, the Dockerfile and the tests do. Seldon passes the graph's `parameters` as
keyword arguments: in a cluster `model_uri` is where the model was downloaded (`/mnt/models`)
and `model_hash` the published version's content hash, which the directory must match.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from seldon_core.flask_utils import SeldonMicroserviceException
from seldon_core.metrics import SeldonMetrics

from modelops_serving import errors
from modelops_serving.artifact import Artifact, load_pipeline, read_artifact
from modelops_serving.metrics import batch_metrics
from modelops_serving.scoring import Scoring, scoring
from modelops_serving.skops_types import REVIEWED_SKOPS_TYPES
from modelops_serving.validation import Batch, to_batch

logger = logging.getLogger(__name__)

DEFAULT_MODEL_URI = "/mnt/models"
DEFAULT_MAX_BATCH_ROWS = 1000
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024


class ModelLoadError(RuntimeError):
    """The model cannot be served. Not an AttributeError: seldon-core swallows those in load()."""


class ModelServer:
    """Validates each request against the model's signature and returns class probabilities.

    The model directory is read, and its content hash checked against `model_hash`, when the
    class is built: in seldon-core's first process, before any server starts, so a directory
    that is not the published version stops the microservice before it ever becomes ready.
    """

    def __init__(
        self,
        model_uri: str = "",
        max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        threshold: float = 0.5,
        model_version: str = "",
        metrics_flush_seconds: float = 1.0,
        model_hash: str = "",
    ) -> None:
        self.model_uri = model_uri or os.environ.get("MODEL_URI", DEFAULT_MODEL_URI)
        self.max_batch_rows = int(max_batch_rows)
        self.threshold = float(threshold)
        self._version_override = model_version or os.environ.get("MODEL_VERSION", "")
        self._pipeline: Any = None
        self._scoring: Scoring | None = None
        self._pending = _Pending()
        self._pending_lock = threading.Lock()
        self._flush_every = float(metrics_flush_seconds)
        self._flushed_at = 0.0
        self.model_error_handler = errors.blueprint(int(max_body_bytes))
        self.artifact = _verified_artifact(
            Path(self.model_uri), model_hash or os.environ.get("MODEL_HASH", "")
        )
        _skip_empty_metric_updates()

    def load(self) -> None:
        """Load the model from the verified bytes (once per gunicorn worker, after the fork)."""
        artifact = self.artifact
        unreviewed = sorted(set(artifact.declared_types) - REVIEWED_SKOPS_TYPES)
        if unreviewed:
            logger.warning(
                "%s: MLmodel lists skops types this server does not trust: %s",
                artifact.path,
                ", ".join(unreviewed),
            )
        try:
            self._pipeline = load_pipeline(artifact)
        except Exception as exc:
            raise ModelLoadError(str(exc)) from exc
        missing = set(artifact.classes) - {str(c) for c in self._pipeline.classes_}
        if missing:
            raise ModelLoadError(f"{artifact.path}: the model does not predict {sorted(missing)}")
        self._scoring = scoring(self._pipeline, artifact.names, probe=self._example().columns)
        logger.info(
            "loaded %s (%s), scoring path: %s", artifact.path, self.tags(), self._scoring.path
        )

    def predict_raw(self, request: Any) -> dict[str, Any]:
        """Answer a Seldon JSON request; a bad one raises RequestError (a 4xx naming the field)."""
        artifact = self.artifact
        batch = to_batch(request, artifact.columns, max_rows=self.max_batch_rows)
        assert self._scoring is not None, "load() runs before the first request"
        proba = self._scoring.predict_proba(batch.columns)
        order = [str(c) for c in self._pipeline.classes_]
        ordered = proba[:, [order.index(name) for name in artifact.classes]]
        self._record(ordered[:, artifact.classes.index(artifact.positive_label)], batch)
        meta: dict[str, Any] = {"tags": self.tags()}
        metrics = self.metrics()
        if metrics:
            meta["metrics"] = metrics
        return {
            "data": {"names": list(artifact.classes), "ndarray": ordered.tolist()},
            "meta": meta,
        }

    def tags(self) -> dict[str, str]:
        """Which model and which data answered: added to every response's `meta.tags`."""
        artifact = self.artifact
        return {
            "model_version": self._version_override or artifact.content_hash[:12],
            "model_hash": artifact.content_hash,
            "data_version": artifact.data_version,
            "model_kind": artifact.model_kind,
        }

    def metrics(self) -> list[dict[str, Any]]:
        """Custom metrics since the last hand-over, at most once per `metrics_flush_seconds`.

        seldon-core stores custom metrics in a multiprocessing manager shared by the workers:
        every hand-over costs six inter-process calls, so they are aggregated here first.
        """
        with self._pending_lock:
            now = time.monotonic()
            if now - self._flushed_at < self._flush_every or not self._pending.scores:
                return []
            pending, self._pending, self._flushed_at = self._pending, _Pending(), now
        artifact = self.artifact
        negative = next(c for c in artifact.classes if c != artifact.positive_label)
        scores = np.array(pending.scores)
        predicted = np.where(scores >= self.threshold, artifact.positive_label, negative)
        return batch_metrics(
            predicted.tolist(), scores, rows_with_missing=pending.rows_with_missing
        )

    def _record(self, positive_scores: Any, batch: Any) -> None:
        with self._pending_lock:
            self._pending.scores.extend(positive_scores.tolist())
            self._pending.rows_with_missing += batch.rows_with_missing

    def health_status(self) -> dict[str, Any]:
        """Ready only when the loaded model answers the training input example."""
        if self._scoring is None:
            raise SeldonMicroserviceException(
                "the model is not loaded", status_code=503, reason="MICROSERVICE_NOT_READY"
            )
        proba = self._scoring.predict_proba(self._example().columns)
        return {"status": "ok", "checked_rows": int(proba.shape[0]), **self.tags()}

    def _example(self) -> Batch:
        """The training input example, validated like any request."""
        artifact = self.artifact
        rows = [list(row) for row in artifact.example_rows]
        request = {"data": {"names": list(artifact.names), "ndarray": rows}}
        return to_batch(request, artifact.columns, max_rows=len(rows))

    def init_metadata(self) -> dict[str, Any]:
        """Seldon metadata (GET /metadata): inputs, outputs, their types. Needs no loaded model."""
        artifact = self.artifact
        return {
            "name": "modelops-classifier",
            "versions": [self._version_override or artifact.content_hash[:12]],
            "platform": "scikit-learn",
            "inputs": [
                {
                    "messagetype": "ndarray",
                    "schema": {"names": list(artifact.names), "shape": [len(artifact.columns)]},
                }
            ],
            "outputs": [
                {
                    "messagetype": "ndarray",
                    "schema": {"names": list(artifact.classes), "shape": [len(artifact.classes)]},
                }
            ],
            "custom": {
                "input_types": json.dumps({c.name: c.kind for c in artifact.columns}),
                "positive_label": artifact.positive_label,
                "data_version": artifact.data_version,
                "max_batch_rows": str(self.max_batch_rows),
            },
        }


def _verified_artifact(path: Path, expected_hash: str) -> Artifact:
    """The model directory, read once and checked against `expected_hash` when there is one."""
    try:
        artifact = read_artifact(path, expected_hash=expected_hash)
    except Exception as exc:
        raise ModelLoadError(str(exc)) from exc
    if expected_hash:
        logger.info("%s: content hash verified (%s)", path, artifact.content_hash)
    else:
        logger.warning(
            "%s: content hash NOT verified (no model_hash parameter, no MODEL_HASH); it is %s",
            path,
            artifact.content_hash,
        )
    return artifact


def _skip_empty_metric_updates() -> None:
    """Make seldon-core skip metric updates that carry no metrics.

    seldon-core 1.17 calls `SeldonMetrics.update` after every prediction, even with nothing to
    record, and each call makes six round trips to the multiprocessing manager that all
    workers share. Skipping the empty ones (this server hands metrics over once a second) took
    single-row throughput from about 870 to about 1,900 requests/s on two cores
    (benchmarks/results/serving.md). An empty update changes nothing, so nothing is lost.
    Installed once, in the master process, before gunicorn forks the workers.
    """
    update = SeldonMetrics.update
    if getattr(update, "skips_empty", False):
        return

    def update_unless_empty(self: SeldonMetrics, custom_metrics: list[Any], method: str) -> None:
        if custom_metrics:
            update(self, custom_metrics, method)

    update_unless_empty.skips_empty = True  # type: ignore[attr-defined]
    SeldonMetrics.update = update_unless_empty


@dataclass
class _Pending:
    """Scores and missing-value rows not yet handed to seldon-core."""

    scores: list[float] = field(default_factory=list)
    rows_with_missing: int = 0

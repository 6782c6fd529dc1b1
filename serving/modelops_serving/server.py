"""The seldon-core Python component serving the pipeline's model.

Run it with `modelops-microservice modelops_serving.server.ModelServer` (seldon-core's
microservice with a bind host and this server's error handlers: `modelops_serving.microservice`),
as `make serve`, the Dockerfile and the tests do. Seldon passes the graph's `parameters` as
keyword arguments: in a cluster `model_uri` is where the model was downloaded (`/mnt/models`)
and `model_hash` the published version's content hash, which the directory must match.

Telemetry (`modelops_serving.telemetry`) counts every prediction and feedback on the reference
profile's bins; feedback (`POST /api/v1.0/feedback`) scores the request again with the served
model and counts the confusion matrix at `threshold` against the client's truth, once the
answer's signed prediction id proves that this deployment gave it (`prediction_ids`).

With the `experiment` parameter (an A/B experiment's JSON, `modelops_contract.experiment`) it
serves every variant's model and scores each row with its unit's variant
(`modelops_serving.experiment`); without it, nothing of that runs.

The Open Inference Protocol (`/v2/...`, `modelops_serving.v2_http`) reaches the same checks,
scoring, telemetry and prediction ids: `infer` turns its tensors into the Seldon request that
`predict_raw` answers (`modelops_serving.v2`), and the answer back into tensors.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# Here, in the process that forks gunicorn's workers, which then share it (1.6 s of CPU each).
import skops.io  # noqa: F401
from flask import g, has_request_context
from google.protobuf import json_format
from modelops_contract import CONTROL, FEEDBACK_KEY_ENV, PREDICTION_ID_TAG, Experiment
from seldon_core.flask_utils import SeldonMicroserviceException
from seldon_core.metrics import SeldonMetrics
from seldon_core.proto import prediction_pb2

from modelops_serving import errors, quote, telemetry, v2
from modelops_serving.artifact import Artifact, read_artifact
from modelops_serving.assignment import Rows, extra_fields
from modelops_serving.body import body_limit
from modelops_serving.experiment import ExperimentSetupError, Served, read_experiment
from modelops_serving.faults import INJECT_ENV, Faults
from modelops_serving.loaded import LoadedModel, example_batch, load_model
from modelops_serving.model_telemetry import model_telemetry
from modelops_serving.prediction_ids import (
    DEFAULT_MAX_AGE_DAYS,
    RecentIds,
    answer_digest,
    rows_digest,
    signer,
)
from modelops_serving.request_log import from_settings
from modelops_serving.skops_types import REVIEWED_SKOPS_TYPES
from modelops_serving.telemetry import BUSINESS_VALUE_ENV, TELEMETRY_ENV
from modelops_serving.validation import SELDON, Batch, Fields, RequestError, to_batch

logger = logging.getLogger(__name__)

DEFAULT_MODEL_URI = "/mnt/models"
DEFAULT_MAX_BATCH_ROWS = 1000
DEFAULT_MODEL_NAME = "modelops-classifier"
MODEL_NAME_ENV = "MODELOPS_MODEL_NAME"
TRUTH_FORM = '{"truth": {"data": {"ndarray": [[<class>], ...]}}}'
FEEDBACK_FORM = (
    '{"request": {"data": {"names": [...], "ndarray": [...]}}, "response": <the prediction\'s '
    'whole answer>, "truth": {...}}'
)
FEEDBACK_FIELDS = ("request", "response", "truth", "reward")
"""Seldon's Feedback message, as JSON."""


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
        threshold: float = 0.5,
        model_version: str = "",
        model_hash: str = "",
        telemetry: str = "",
        business_value: str = "",
        inject_server_errors: float = 0.0,
        request_log: str = "",
        request_log_sample_rate: float | str = "",
        feedback_max_age_days: float | str = DEFAULT_MAX_AGE_DAYS,
        experiment: str = "",
        model_name: str = "",
    ) -> None:
        self.model_uri = model_uri or os.environ.get("MODEL_URI", DEFAULT_MODEL_URI)
        # What metadata calls the model, and what the V2 paths must name (/v2/models/<name>).
        self.model_name = model_name or os.environ.get(MODEL_NAME_ENV) or DEFAULT_MODEL_NAME
        if not v2.valid_name(self.model_name):
            raise ModelLoadError(
                f"model_name (or ${MODEL_NAME_ENV}) must be letters, digits, '.', '_' or '-', "
                f"starting with a letter or digit (one URL path segment), got {self.model_name!r}"
            )
        self.max_batch_rows = int(max_batch_rows)
        self.threshold = float(threshold)
        self._version_override = model_version or os.environ.get("MODEL_VERSION", "")
        self._model: LoadedModel | None = None
        self.served: Served | None = None
        expected_hash = model_hash or os.environ.get("MODEL_HASH", "")
        running: Experiment | None = None
        artifacts: tuple[Artifact, ...] = ()
        extra = 0
        if experiment:
            try:
                running, artifacts = read_experiment(
                    experiment,
                    base=Path(self.model_uri),
                    model_hash=expected_hash,
                    model_version=self._version_override,
                )
            except ExperimentSetupError as exc:
                raise ModelLoadError(str(exc)) from None
            self._version_override = running.control.model_version
            self.artifact = artifacts[running.position(CONTROL)]
            # Room for the fields besides the inputs, and the two tags listing each row's variant.
            extra = extra_fields(running, frozenset(self.artifact.names)) + 2
        else:
            self.artifact = _verified_artifact(Path(self.model_uri), expected_hash)
        self.v2_kinds: dict[str, str] = {c.name: c.kind for c in self.artifact.columns}
        if running is not None:  # a unit or covariate that is also an input stays one
            self.v2_kinds = {running.unit: v2.UNIT, **self.v2_kinds}
            if running.covariate is not None:
                self.v2_kinds.setdefault(running.covariate, "number")
        self.max_body_bytes = body_limit(
            self.max_batch_rows,
            inputs=len(self.artifact.columns) + extra,
            classes=len(self.artifact.classes),
        )
        self.model_error_handler = errors.blueprint(
            self.max_body_bytes, max_rows=self.max_batch_rows
        )
        telemetry_of = functools.partial(
            model_telemetry,
            threshold=self.threshold,
            setting=telemetry or os.environ.get(TELEMETRY_ENV, ""),
            business_value=business_value or os.environ.get(BUSINESS_VALUE_ENV, ""),
        )
        try:
            self.telemetry = telemetry_of(self.artifact, model_version=self.tags()["model_version"])
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from None
        try:
            self.faults = Faults(inject_server_errors or os.environ.get(INJECT_ENV, "") or 0.0)
            self.request_log = from_settings(
                request_log, request_log_sample_rate, model_version=self.tags()["model_version"]
            )
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from None
        try:
            max_age_days = float(feedback_max_age_days)
        except ValueError:
            raise ModelLoadError(
                f"feedback_max_age_days must be a number of days, got {feedback_max_age_days!r}"
            ) from None
        try:
            self.signer = signer(os.environ.get(FEEDBACK_KEY_ENV, ""), max_age_days=max_age_days)
        except ValueError as exc:
            raise ModelLoadError(str(exc)) from None
        if running is not None:  # each other variant counts, and logs, under its own version
            self.served = Served.build(
                running,
                artifacts,
                control=(self.telemetry, self.request_log),
                telemetry_of=lambda artifact, version: telemetry_of(
                    artifact, model_version=version
                ),
                log_of=lambda log, version: from_settings(
                    request_log, log.rate, model_version=version
                ),
            )
        # Made before gunicorn forks: every worker of the pod shares it.
        self.recent_ids = RecentIds()
        _skip_empty_metric_updates()

    def load(self) -> None:
        """Load the model from the verified bytes (once per gunicorn worker, after the fork)."""
        if self.served is not None:
            self.served.load(_loaded)
            self._model = self.served.arms[self.served.experiment.position(CONTROL)].model
            running = self.served.experiment
            logger.info("loaded the experiment %s: %s", running.name, running.split)
            return
        artifact = self.artifact
        self._model = _loaded(artifact)
        logger.info(
            "loaded %s (%s), scoring path: %s", artifact.path, self.tags(), self._model.scoring.path
        )
        if self.telemetry is not None:
            tags = self.tags()
            self.telemetry.model_info(
                model_hash=tags["model_hash"],
                data_version=tags["data_version"],
                trained_at=artifact.trained_at,
            )

    def predict_raw(self, request: Any) -> dict[str, Any]:
        """Answer a Seldon JSON request; a bad one raises RequestError (a 4xx naming the field)."""
        return self.predict_request(request, SELDON)

    def infer(self, payload: Any) -> dict[str, Any]:
        """Answer an Open Inference Protocol request by `predict_raw`'s path (`v2.parse`)."""
        inference = v2.parse(
            payload,
            kinds=self.v2_kinds,
            available=v2.outputs_of(experiment=self.served is not None),
            max_rows=self.max_batch_rows,
        )
        return v2.answer(
            self.predict_request(inference.request, v2.FIELDS),
            model_name=self.model_name,
            inference=inference,
            positive_label=self.artifact.positive_label,
            threshold=self.threshold,
        )

    def predict_request(self, request: Any, fields: Fields) -> dict[str, Any]:
        """Score a Seldon request and count it; `fields` names its parts in refusals."""
        artifact = self.artifact
        _note_rows(request)
        if self.served is not None:
            return self._predict_experiment(request, self.served, fields)
        batch = to_batch(request, artifact.columns, max_rows=self.max_batch_rows, fields=fields)
        self.faults.maybe_fail()
        ordered = self._proba(batch)
        positive = ordered[:, artifact.classes.index(artifact.positive_label)]
        if self.telemetry is not None:
            self.telemetry.predictions(batch.columns, positive)
        if self.request_log is not None:
            self.request_log.rows(batch.columns, positive.tolist())
        classes = list(artifact.classes)
        prediction_id = self.signer.issue(
            rows_digest(batch.columns), answer_digest(classes, ordered), now=time.time()
        )
        return {
            "data": {"names": classes, "ndarray": ordered.tolist()},
            "meta": {"tags": {**self.tags(), PREDICTION_ID_TAG: prediction_id}},
        }

    def _predict_experiment(self, request: Any, served: Served, fields: Fields) -> dict[str, Any]:
        """`predict_raw` in an experiment: each row scored by its variant's model; the answer
        lists each row's variant, and its id covers each row's unit."""
        limit = self.max_batch_rows
        model_request, extras = served.split(request, max_rows=limit, fields=fields)
        batch = to_batch(model_request, self.artifact.columns, max_rows=limit, fields=fields)
        rows = served.assign(extras, rows=_row_count(batch), fields=fields)
        self.faults.maybe_fail()
        ordered = served.proba(batch, rows)
        served.predicted(batch, rows, ordered)
        classes = list(self.artifact.classes)
        prediction_id = self.signer.issue(
            rows_digest(rows.signed(batch.columns)),
            answer_digest(classes, ordered),
            now=time.time(),
        )
        tags = {**self.tags(), PREDICTION_ID_TAG: prediction_id, **served.tags(rows)}
        return {"data": {"names": classes, "ndarray": ordered.tolist()}, "meta": {"tags": tags}}

    def feedback(self, message: Any) -> dict[str, Any]:
        """Count a client's truth for rows this deployment scored; the answer's JSON body.

        `message` is Seldon's Feedback as JSON: `request` (the prediction's request), `response`
        (its whole answer), `truth` (one class per row) and an optional `reward`. Everything is
        checked before anything is counted, in this order: the message's form, `request` (as a
        prediction is), `truth`, then the answer's signed prediction id (it must prove that
        this deployment gave `response` for `request`, not too long ago) and that this pod has
        not counted that prediction's truth yet. A refusal (a 4xx naming the field) adds
        nothing but itself. The request is scored again by the served model, so the confusion
        counts are at this deployment's `threshold` whatever scores `response` holds. In an
        experiment each row is scored, and counted, by the variant its unit is assigned to.
        """
        if not isinstance(message, dict):
            raise RequestError(
                f"the feedback must be a JSON object: send {FEEDBACK_FORM}",
                reason="invalid_message",
            )
        unknown = [key for key in message if key not in FEEDBACK_FIELDS]
        reward = message.get("reward", 0)
        if unknown or not _finite_number(reward):
            what = f"unknown {_shown(unknown[0])}" if unknown else f"'reward' is {_shown(reward)}"
            raise RequestError(
                f"the feedback is not Seldon's Feedback message ({what}): it has 'request', "
                "'response', 'truth' and a finite number 'reward'",
                reason="invalid_message",
            )
        request = message.get("request")
        if not isinstance(request, dict):
            raise RequestError(
                "the feedback needs 'request', the Seldon request the truth is about: send "
                f"{FEEDBACK_FORM}",
                reason="no_request",
            )
        _note_rows(request)
        served, assigned = self.served, None
        try:
            if served is not None:
                request, extras = served.split(request, max_rows=self.max_batch_rows)
            batch = to_batch(request, self.artifact.columns, max_rows=self.max_batch_rows)
            rows = _row_count(batch)
            if served is not None:
                assigned = served.assign(extras, rows=rows)
        except RequestError as exc:
            raise RequestError(
                f"in the feedback's 'request': {exc.message}", status=exc.status, reason=exc.reason
            ) from None
        actual = self._truth(message.get("truth"), rows=rows)
        signed = batch.columns if assigned is None else assigned.signed(batch.columns)
        answered, prediction = self._verified_answer(message.get("response"), signed)
        positive = self._positive_scores(batch, assigned)
        if not self.recent_ids.first_time(prediction):
            raise RequestError(
                "this prediction's truth was counted already: each prediction's truth counts once",
                status=409,
                reason="duplicate_feedback",
            )
        if served is not None and assigned is not None:
            served.fed_back(actual, positive, answered, assigned)
        elif self.telemetry is not None:
            self.telemetry.feedback(actual, positive)
            if answered is not None:
                self.telemetry.answers(positive, answered)
        return {"meta": {"tags": self.tags()}}

    def send_feedback_raw(self, feedback: Any) -> Any:
        """Feedback over gRPC, where seldon-core hands over a parsed protobuf: as `feedback`.

        REST feedback never comes here: `modelops-microservice` routes it to `feedback` with the
        body as JSON, so protobuf never parses a REST body (`modelops_serving.microservice`).
        """
        answer = self.feedback(json_format.MessageToDict(feedback))
        return json_format.ParseDict(answer, prediction_pb2.SeldonMessage())

    def _truth(self, truth: Any, *, rows: int) -> list[str]:
        """The true class of each row, checked against the classes the model predicts."""
        classes = self.artifact.classes
        allowed = ", ".join(classes)
        values = _field(truth, "data", "ndarray")
        if not isinstance(values, list):
            raise RequestError(
                f"the feedback needs 'truth' as {TRUTH_FORM}: the true class of each row of "
                f"'request', one of {allowed}",
                reason="no_truth",
            )
        if len(values) != rows:
            raise RequestError(
                f"'truth.data.ndarray' has {len(values)} rows and 'request' has {rows}: send one "
                "true class per row of the request",
                reason="truth_rows_mismatch",
            )
        labels = []
        for index, value in enumerate(values):
            label = _class_of(value[0] if isinstance(value, list) and len(value) == 1 else value)
            if label not in classes:
                raise RequestError(
                    f"'truth.data.ndarray[{index}]' is {_shown(value)}: a truth is the true class, "
                    f"one of {allowed} (a string, or the same number)",
                    reason="truth_not_a_class",
                )
            labels.append(label)
        return labels

    def _verified_answer(
        self, response: Any, columns: Mapping[str, Any]
    ) -> tuple[npt.NDArray[np.float64] | None, bytes]:
        """The positive-class scores of the answer in `response` (None when its classes lack
        this model's positive one: the truth is counted all the same), and the MAC that
        identifies its prediction, once its prediction id proves that this deployment gave it
        for the rows of `columns`."""
        prediction_id = _field(response, "meta", "tags", PREDICTION_ID_TAG)
        if not isinstance(prediction_id, str):
            raise RequestError(
                "the feedback needs 'response', the whole answer of the prediction, with its "
                f"'meta.tags.{PREDICTION_ID_TAG}': send back what the prediction answered",
                reason="no_prediction_id",
            )
        classes, scores = _answer(response)
        answer = answer_digest(classes, scores) if scores is not None else b""
        prediction = self.signer.verify(
            prediction_id, rows_digest(columns), answer, now=time.time()
        )
        positive = self.artifact.positive_label
        if scores is None or positive not in classes:
            return None, prediction
        return scores[:, classes.index(positive)], prediction

    def _positive_scores(self, batch: Batch, rows: Rows | None) -> npt.NDArray[np.float64]:
        """Each row's positive-class score, from its variant's model in an experiment."""
        artifact = self.artifact
        positive = artifact.classes.index(artifact.positive_label)
        if self.served is not None and rows is not None:
            return self.served.proba(batch, rows)[:, positive]
        return self._proba(batch)[:, positive]

    def _proba(self, batch: Batch) -> npt.NDArray[np.float64]:
        """Class probabilities, columns in `artifact.classes` order."""
        assert self._model is not None, "load() runs before the first request"
        return self._model.proba(batch.columns)

    def tags(self) -> dict[str, str]:
        """Which model and which data answered: added to every response's `meta.tags`."""
        artifact = self.artifact
        return {
            "model_version": self._version_override or artifact.content_hash[:12],
            "model_hash": artifact.content_hash,
            "data_version": artifact.data_version,
            "model_kind": artifact.model_kind,
        }

    def health_status(self) -> dict[str, Any]:
        """Ready only when the loaded model answers the training input example."""
        if self._model is None:
            raise SeldonMicroserviceException(
                "the model is not loaded", status_code=503, reason="MICROSERVICE_NOT_READY"
            )
        example = example_batch(self.artifact).columns
        if self.served is not None:  # every variant's model answers
            return {"status": "ok", "checked_rows": self.served.health(example), **self.tags()}
        proba = self._model.proba(example)
        return {"status": "ok", "checked_rows": int(proba.shape[0]), **self.tags()}

    def init_metadata(self) -> dict[str, Any]:
        """Seldon metadata (GET /metadata): inputs, outputs, their types. Needs no loaded model."""
        artifact = self.artifact
        versions = [self.tags()["model_version"]]
        served = self.served
        if served is not None:
            versions += [v.model_version for v in served.experiment.variants if v.name != CONTROL]
        return {
            "name": self.model_name,
            "versions": versions,
            "platform": v2.PLATFORM,
            # One entry per input, in the order of a row's values, with its type: "FP64" takes
            # numbers, "BYTES" strings (both take null). seldon-core's `custom` takes strings
            # only, so the types cannot go there without being a JSON string inside the JSON.
            "inputs": v2.input_metadata([(c.name, c.kind) for c in artifact.columns]),
            "outputs": [
                {
                    "messagetype": "ndarray",
                    "schema": {"names": list(artifact.classes), "shape": [len(artifact.classes)]},
                }
            ],
            "custom": {
                "request_form": "data.ndarray: rows of values in the order of inputs",
                **self._described(),
            },
        }

    def v2_metadata(self) -> dict[str, Any]:
        """The Open Inference Protocol's model metadata (GET /v2/models/<name>)."""
        artifact = self.artifact
        return v2.model_metadata(
            name=self.model_name,
            version=self.tags()["model_version"],
            kinds=[(c.name, c.kind) for c in artifact.columns],
            classes=artifact.classes,
            experiment=self.served is not None,
            parameters={"threshold": self.threshold, **self._described()},
        )

    def _described(self) -> dict[str, str]:
        """What both protocols' metadata say besides inputs and outputs (strings, as Seldon's
        `custom` takes them)."""
        artifact = self.artifact
        return {
            "positive_label": artifact.positive_label,
            "data_version": artifact.data_version,
            "max_batch_rows": str(self.max_batch_rows),
            "max_body_bytes": str(self.max_body_bytes),
            **({} if self.served is None else self.served.metadata()),
        }


def _loaded(artifact: Artifact) -> LoadedModel:
    """The model of verified bytes, loaded trusting only the reviewed skops types."""
    unreviewed = sorted(set(artifact.declared_types) - REVIEWED_SKOPS_TYPES)
    if unreviewed:
        logger.warning(
            "%s: MLmodel lists skops types this server does not trust: %s",
            artifact.path,
            ", ".join(unreviewed),
        )
    try:
        return load_model(artifact)
    except Exception as exc:
        raise ModelLoadError(str(exc)) from exc


def _row_count(batch: Batch) -> int:
    return len(next(iter(batch.columns.values())))


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


def _field(message: Any, *keys: str) -> Any:
    """`message[k1][k2]...` of a parsed JSON message; None where a level is missing."""
    for key in keys:
        if not isinstance(message, dict):
            return None
        message = message.get(key)
    return message


def _answer(response: Any) -> tuple[list[str], npt.NDArray[np.float64] | None]:
    """An answer's class names and scores (rows x classes), or no scores when it has none."""
    names, values = _field(response, "data", "names"), _field(response, "data", "ndarray")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return [], None
    try:
        scores = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return names, None
    if scores.ndim != 2 or scores.shape[1] != len(names):
        return names, None
    return names, scores


def _note_rows(request: Any) -> None:
    """Leave the request's row count for the request counters, when it has a list of rows."""
    if not has_request_context():
        return
    data = request.get("data") if isinstance(request, dict) else None
    rows = data.get("ndarray") if isinstance(data, dict) else None
    setattr(g, telemetry.ROWS, len(rows) if isinstance(rows, list) else 0)


def _class_of(value: Any) -> str | None:
    """A truth value as a class name: a string as it is, an integral number as its digits."""
    if isinstance(value, str):
        return value
    if _finite_number(value):
        return str(int(value)) if float(value).is_integer() else str(value)
    return None


def _finite_number(value: Any) -> bool:
    """A JSON number (not a boolean), neither NaN nor infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value: Any) -> str:
    return quote.excerpt(value)

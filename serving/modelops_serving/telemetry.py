"""The server's production telemetry: prometheus_client counters in multiprocess mode.

Every gunicorn worker writes its own memory-mapped file in `prometheus_multiproc_dir` (the
launcher, `modelops_serving.microservice`, makes one per start); the metrics server reads them
all on each scrape (`/prometheus` on the metrics port). An increment is a write to shared
memory: no lock shared between workers, no hand-over, nothing that waits on another process.

Each request is aggregated first (counts per bin, per feature), then turned into at most one
increment per non-empty series, whatever the number of rows. Those are added up in the worker
and written to its file every `FLUSH_SECONDS` by a background thread (and when the worker
exits): a file write costs about 1.5 us, twenty per one-row request were about half of
telemetry's cost, about 10% of a one-row request's. A scrape lags the last requests by at
most `FLUSH_SECONDS`; a worker killed outright loses at most that much.

Recording can never fail a request: any exception while recording is logged once per kind,
counted in `TELEMETRY_ERRORS`, and the answer goes out as if nothing happened.

Every series is declared in the telemetry contract (`modelops_contract`): its name, help text,
labels and buckets; this module only builds the metrics from those declarations and counts.
"""

from __future__ import annotations

import atexit
import bisect
import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import modelops_contract as contract
import numpy as np
import numpy.typing as npt
from flask import Flask, Response, g, request
from modelops_contract import (
    CELLS,
    CONCORDANT,
    COST,
    DISCORDANT,
    FALSE,
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    FEEDBACK,
    GAIN,
    LATENCY_BUCKETS,
    OK,
    PREDICT,
    SCORE_GRID,
    SERVER_ERROR,
    SIGNS,
    TELEMETRY_ERRORS,
    TRUE,
    TRUE_NEGATIVE,
    TRUE_POSITIVE,
    CounterSeries,
    GaugeSeries,
    HistogramSeries,
    Series,
    bin_labels,
    flag,
)
from prometheus_client import Counter, Gauge, Histogram, values

from modelops_serving import v2
from modelops_serving.errors import OUTCOME
from modelops_serving.profile import (
    CategoricalBins,
    NumericBins,
    Profile,
    bins_fingerprint,
    score_buckets,
)

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
BUSINESS_KEYS = CELLS
"""The keys of the `business_value` parameter: a value per cell of the confusion matrix."""
TELEMETRY_ENV = "MODELOPS_TELEMETRY"
BUSINESS_VALUE_ENV = "MODELOPS_BUSINESS_VALUE"
_OFF = frozenset({"off", "false", "0", "no"})
_ON = frozenset({"on", "true", "1", "yes", ""})
PREDICT_PATHS = frozenset({"/predict", "/api/v1.0/predictions", "/api/v0.1/predictions"})
FEEDBACK_PATHS = frozenset({"/send-feedback", "/api/v1.0/feedback", "/api/v0.1/feedback"})
ROWS = "modelops_row_count"
"""Where the server leaves a request's row count (on `flask.g`) for the request counters."""
VARIANTS = "modelops_variant_rows"
"""Where a server running an A/B experiment leaves (Telemetry, rows) for each variant a
request's rows went to (on `flask.g`): the request is counted under each of them."""
_STARTED = "modelops_started"
_SMALL = 16
PAIRED_ROWS = 64
"""Rows of a feedback message whose pairs are compared (64 rows: 2,016 pairs at most)."""


def enabled(setting: str) -> bool:
    """Whether telemetry is on for a `telemetry` parameter (or MODELOPS_TELEMETRY) value."""
    value = setting.strip().lower()
    if value in _OFF:
        return False
    if value in _ON:
        return True
    raise ValueError(
        f"telemetry must be 'on' or 'off' (parameter or ${TELEMETRY_ENV}), got {setting!r}"
    )


@dataclass(frozen=True)
class BusinessValue:
    """What one row of feedback is worth, per cell of the confusion matrix (any sign)."""

    true_positive: float
    false_positive: float
    true_negative: float
    false_negative: float

    def split(self, cells: Mapping[str, int]) -> tuple[float, float]:
        """(gain, cost) of counts per cell: the positive and the negative parts, both >= 0."""
        gain = cost = 0.0
        for key, count in cells.items():
            value = getattr(self, key) * count
            if value > 0:
                gain += value
            else:
                cost -= value
        return gain, cost


def parse_business_value(raw: str) -> BusinessValue:
    """Read the `business_value` parameter: a JSON object of the four cells' values.

    Raises:
        ValueError: what is wrong and the expected form.
    """
    expected = (
        'expected a JSON object of numbers, e.g. {"true_positive": 100, "false_positive": -20, '
        '"true_negative": 0, "false_negative": -100}'
    )
    try:
        loaded = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"business_value is not valid JSON ({exc}): {expected}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"business_value must be a JSON object: {expected}")
    unknown = sorted(set(loaded) - set(BUSINESS_KEYS))
    missing = [key for key in BUSINESS_KEYS if key not in loaded]
    if unknown or missing:
        raise ValueError(
            f"business_value has unknown keys {unknown} and lacks {missing}; it needs exactly "
            f"{', '.join(BUSINESS_KEYS)}: {expected}"
        )
    for key in BUSINESS_KEYS:
        value = loaded[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"business_value.{key} must be a finite number, got {value!r}")
    return BusinessValue(**{key: float(loaded[key]) for key in BUSINESS_KEYS})


def trained_timestamp(trained_at: str) -> float | None:
    """Seconds since the epoch of `trained_at` (ISO 8601, `...Z`), or None when there is none."""
    if not trained_at:
        return None
    return datetime.fromisoformat(trained_at.replace("Z", "+00:00")).timestamp()


def multiprocess() -> bool:
    """Whether prometheus_client was imported in multiprocess mode (its value class is chosen
    once, at import, from `prometheus_multiproc_dir`)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


Increment = tuple[Any, float]
"""Something with `.inc(amount)` (a counter child, a histogram's bucket or sum value), and how
much to add to it."""


def histogram_adds(child: Any, buckets: Sequence[tuple[int, int]], total: float) -> list[Increment]:
    """The increments that add many observations to a prometheus_client 0.8 Histogram child.

    0.8's Histogram keeps one non-cumulative value per bucket (`_buckets`, in the order of its
    upper bounds, +Inf last) and `_sum`; `observe(x)` adds 1 to the first bucket whose bound is
    >= x and x to `_sum`. Adding the per-bucket counts and the total directly is the same state
    with one write per non-empty bucket instead of one per row (`tests/serving/
    test_profile_bins.py` proves it equal to `observe`, for values on the bounds too). Pinned
    with seldon-core's prometheus-client<0.9; a newer client must pass that test first.
    """
    adds: list[Increment] = [(child._buckets[index], count) for index, count in buckets]
    adds.append((child._sum, float(total)))
    return adds


def add_to_histogram(child: Any, buckets: Sequence[tuple[int, int]], total: float) -> None:
    """Apply `histogram_adds` now."""
    for target, amount in histogram_adds(child, buckets, total):
        target.inc(amount)


class _Pending:
    """Increments added up in this process, written to its multiprocess file now and then.

    A thread started in each worker (the first time it records: threads do not survive the
    fork) writes them every `every` seconds; `atexit` writes the rest when the worker exits.
    """

    def __init__(self, *, every: float, failed: Any) -> None:
        self._every = every
        self._failed = failed
        self._lock = threading.Lock()
        self._adds: dict[Any, float] = {}
        self._pid = 0

    def add(self, adds: Iterable[Increment]) -> None:
        if self._pid != os.getpid():
            self._start()
        with self._lock:
            pending = self._adds
            for target, amount in adds:
                if amount:
                    pending[target] = pending.get(target, 0.0) + amount

    def flush(self) -> None:
        with self._lock:
            adds, self._adds = self._adds, {}
        for target, amount in adds.items():
            target.inc(amount)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._adds = {}  # what a parent had not written is the parent's
        threading.Thread(target=self._loop, name="modelops-telemetry", daemon=True).start()
        atexit.register(self._flush_safely)

    def _loop(self) -> None:
        while True:
            time.sleep(self._every)
            self._flush_safely()

    def _flush_safely(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # a failed write is counted, never raised
            self._failed(exc)


def metric(series: Series, *, buckets: Sequence[float] = ()) -> Any:
    """The prometheus_client metric of a contract series, in no registry (the multiprocess
    files are what /prometheus reads). A histogram without fixed buckets takes `buckets`."""
    name, labels = series.name, list(series.labels)
    if isinstance(series, CounterSeries):
        return Counter(name, series.help, labels, registry=None)
    if isinstance(series, GaugeSeries):
        # One value per label set whatever the number of workers (no `pid` label), unless the
        # series counts processes: then one sample per process, kept after it exits.
        mode = "all" if series.per_process else "max"
        return Gauge(name, series.help, labels, registry=None, multiprocess_mode=mode)
    if isinstance(series, HistogramSeries):
        bounds = series.buckets if series.buckets is not None else tuple(buckets)
        return Histogram(name, series.help, labels, buckets=bounds, registry=None)
    raise TypeError(f"series {name}: no metric for kind {series.kind!r}")


class Telemetry:
    """The metrics of one served model; every method records and never raises."""

    def __init__(
        self,
        *,
        model_version: str,
        classes: Sequence[str],
        positive_label: str,
        threshold: float,
        profile: Profile | None,
        business_value: BusinessValue | None,
    ) -> None:
        self.model_version = version = model_version
        self.threshold = float(threshold)
        self.positive_label = positive_label
        self.negative_label = next(c for c in classes if c != positive_label)
        self.profile = profile
        self.business_value = business_value
        self._logged: set[str] = set()
        self._pending = _Pending(every=FLUSH_SECONDS, failed=self.failed)
        self._errors = metric(TELEMETRY_ERRORS).labels(version)
        self._requests = metric(contract.REQUESTS)
        self._rows = metric(contract.ROWS)
        duration = metric(contract.REQUEST_DURATION)
        self._duration = {e: duration.labels(version, e) for e in contract.ENDPOINTS}
        self._outcomes: dict[tuple[str, str], tuple[Any, Any]] = {}
        predictions = metric(contract.PREDICTIONS)
        self._predicted = {
            c: predictions.labels(version, c, flag(c == positive_label)) for c in classes
        }
        self._info = metric(contract.MODEL_INFO)
        self._trained = metric(contract.MODEL_TRAINED)
        feedback = metric(contract.FEEDBACK_ROWS)
        self._confusion = {
            (a, p): feedback.labels(version, a, p, self._cell(a, p))
            for a in classes
            for p in classes
        }
        labels = metric(contract.LABELS)
        self._labels = {c: labels.labels(version, c) for c in classes}
        self._business: dict[str, Any] = {}
        if business_value is not None:
            business = metric(contract.BUSINESS_VALUE)
            self._business = {s: business.labels(version, s) for s in SIGNS}
        agreement = metric(contract.ANSWER_AGREEMENT)
        self._agreement = {a: agreement.labels(version, a) for a in (TRUE, FALSE)}
        pairs = metric(contract.ANSWER_PAIRS)
        self._pairs = {o: pairs.labels(version, o) for o in (CONCORDANT, DISCORDANT)}
        self._bins: list[tuple[NumericBins | CategoricalBins, list[Any]]] = []
        self._score: Any = None
        self._feedback_score: dict[str, Any] = {}
        if profile is not None:
            self._profile_series(profile, classes)

    def _profile_series(self, profile: Profile, classes: Sequence[str]) -> None:
        version = self.model_version
        bins = metric(contract.FEATURE_BIN)
        for feature in profile.features:
            children = [bins.labels(version, feature.name, label) for label in feature.labels]
            self._bins.append((feature, children))
        cuts = profile.score_cuts
        fingerprint = metric(contract.REFERENCE_BINS)
        for feature in profile.features:
            fingerprint.labels(version, feature.name, bins_fingerprint(feature)).set(1)
        self._score = metric(contract.SCORE).labels(version)
        score_bins = metric(contract.SCORE_BIN)
        self._score_bins = [score_bins.labels(version, b) for b in bin_labels(len(cuts) + 1)]
        self._reference(profile)
        feedback_score = metric(contract.FEEDBACK_SCORE, buckets=cuts)
        self._feedback_score = {c: feedback_score.labels(version, c) for c in classes}

    def _cell(self, actual: str, predicted: str) -> str:
        return contract.cell(correct=actual == predicted, positive=predicted == self.positive_label)

    def _reference(self, profile: Profile) -> None:
        """Set the gauges of what the profile expects, beside the counts they are judged with."""
        version = self.model_version
        share = metric(contract.REFERENCE_SHARE)
        missing = metric(contract.REFERENCE_MISSING)
        for feature in profile.features:
            for label, value in zip(feature.labels, feature.shares, strict=False):
                share.labels(version, feature.name, label).set(value)
            missing.labels(version, feature.name).set(feature.missing)
        score_share = metric(contract.REFERENCE_SCORE_SHARE)
        labels = bin_labels(len(profile.score_shares))
        for label, value in zip(labels, profile.score_shares, strict=True):
            score_share.labels(version, label).set(value)
        reference = metric(contract.REFERENCE_METRIC)
        for name, value in sorted(profile.expected.items()):
            reference.labels(version, name).set(value)

    def model_info(self, *, model_hash: str, data_version: str, trained_at: str) -> None:
        """Set the model's info gauge (1) and its training time (when known)."""
        with self._guard():
            self._info.labels(self.model_version, model_hash, data_version, trained_at).set(1)
            timestamp = trained_timestamp(trained_at)
            if timestamp is not None:
                self._trained.labels(self.model_version).set(timestamp)

    def request(self, endpoint: str, outcome: str, *, rows: int, seconds: float) -> None:
        """Count one answered request, its rows, and its duration."""
        with self._guard():
            key = (endpoint, outcome)
            children = self._outcomes.get(key)
            if children is None:
                children = (
                    self._requests.labels(self.model_version, endpoint, outcome),
                    self._rows.labels(self.model_version, endpoint, outcome),
                )
                self._outcomes[key] = children
            bucket = bisect.bisect_left(LATENCY_BUCKETS, seconds)  # +Inf past the last
            self._pending.add(
                [
                    (children[0], 1),
                    (children[1], rows),
                    *histogram_adds(self._duration[endpoint], [(bucket, 1)], seconds),
                ]
            )

    def predictions(
        self, columns: Mapping[str, Any], positive_scores: npt.NDArray[np.float64]
    ) -> None:
        """Count a predicted batch: classes at the threshold, score bins, every feature's bins."""
        with self._guard():
            if positive_scores.size == 1:  # most requests
                total = float(positive_scores[0])
                positive = int(total >= self.threshold)
            elif positive_scores.size < _SMALL:  # plain Python: numpy's call overhead dominates
                scores = positive_scores.tolist()
                positive, total = sum(s >= self.threshold for s in scores), sum(scores)
            else:
                positive = int(np.count_nonzero(positive_scores >= self.threshold))
                total = float(positive_scores.sum())
            negative = int(positive_scores.size) - positive
            adds: list[Increment] = [
                (self._predicted[self.positive_label], positive),
                (self._predicted[self.negative_label], negative),
            ]
            if self._score is not None:
                grid = score_buckets(SCORE_GRID, positive_scores)
                adds += histogram_adds(self._score, grid, total)
                buckets = score_buckets(self._score_cuts(), positive_scores)
                score_bins = self._score_bins
                adds += [(score_bins[index], count) for index, count in buckets]
            append = adds.append
            for feature, children in self._bins:
                for index, count in feature.nonzero(columns[feature.name]):
                    append((children[index], count))
            self._pending.add(adds)

    def feedback(self, actual: Sequence[str], positive_scores: npt.NDArray[np.float64]) -> None:
        """Count feedback rows: confusion at the threshold, labels, scores by class, value."""
        with self._guard():
            truth = np.asarray(actual, dtype=object)
            predicted_positive = positive_scores >= self.threshold
            cells: dict[str, int] = {}
            adds: list[Increment] = []
            for label in self._labels:
                of_class = truth == label
                count = int(np.count_nonzero(of_class))
                if not count:
                    continue
                adds.append((self._labels[label], count))
                hits = int(np.count_nonzero(predicted_positive & of_class))
                misses = count - hits
                adds.append((self._confusion[(label, self.positive_label)], hits))
                adds.append((self._confusion[(label, self.negative_label)], misses))
                is_positive = label == self.positive_label
                cells[TRUE_POSITIVE if is_positive else FALSE_POSITIVE] = hits
                cells[FALSE_NEGATIVE if is_positive else TRUE_NEGATIVE] = misses
                if self._feedback_score:
                    scores = positive_scores[of_class]
                    buckets = score_buckets(self._score_cuts(), scores)
                    adds += histogram_adds(
                        self._feedback_score[label], buckets, float(scores.sum())
                    )
            if self.business_value is not None:
                gain, cost = self.business_value.split(cells)
                adds += [(self._business[GAIN], gain), (self._business[COST], cost)]
            self._pending.add(adds)

    def answers(self, own: npt.NDArray[np.float64], answered: npt.NDArray[np.float64]) -> None:
        """Count how this model's scores agree with the scores of the answer a client got for
        the same rows (what a shadow is judged on): the class at the threshold, and the order
        of each pair of rows (the first `PAIRED_ROWS` rows of a message)."""
        with self._guard():
            agree = int(np.count_nonzero((own >= self.threshold) == (answered >= self.threshold)))
            adds = [(self._agreement[TRUE], agree), (self._agreement[FALSE], int(own.size) - agree)]
            if own.size > 1:  # one row has no pairs
                head_own, head_answered = own[:PAIRED_ROWS], answered[:PAIRED_ROWS]
                first, second = np.triu_indices(head_own.size, k=1)
                order = np.sign(head_own[first] - head_own[second]) * np.sign(
                    head_answered[first] - head_answered[second]
                )
                adds += [
                    (self._pairs[CONCORDANT], int(np.count_nonzero(order > 0))),
                    (self._pairs[DISCORDANT], int(np.count_nonzero(order < 0))),
                ]
            self._pending.add(adds)

    def record(self, adds: Iterable[Increment]) -> None:
        """Write increments counted elsewhere (an experiment's series) with this model's."""
        self._pending.add(adds)

    def _score_cuts(self) -> tuple[float, ...]:
        assert self.profile is not None
        return self.profile.score_cuts

    def _guard(self) -> _Guard:
        return _Guard(self)

    def failed(self, error: BaseException) -> None:
        """Log an exception from recording (once per kind per process) and count it."""
        kind = f"{type(error).__module__}.{type(error).__qualname__}"
        if kind not in self._logged:
            self._logged.add(kind)
            logger.error(
                "telemetry failed (%s); the request is answered all the same, further %s "
                "errors are only counted in %s",
                kind,
                kind,
                TELEMETRY_ERRORS.total,
                exc_info=error,
            )
        # The counter itself failing must not fail a request either.
        with contextlib.suppress(Exception):
            self._errors.inc(1)


class _Guard:
    """`with telemetry._guard():` turns any exception inside into `telemetry.failed`."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: Any
    ) -> bool:
        if error is None or not isinstance(error, Exception):
            return False
        self._telemetry.failed(error)
        return True


def endpoint_of(path: str) -> str:
    """The `endpoint` label of a request path: Seldon's and the Open Inference Protocol's
    inference paths are both `predict`; "" for a path that is not counted."""
    if path in PREDICT_PATHS or v2.is_infer(path):
        return PREDICT
    return FEEDBACK if path in FEEDBACK_PATHS else ""


def install(app: Flask, telemetry: Telemetry) -> None:
    """Count every answer of the predict and feedback endpoints, and time it, on `app`.

    The clock starts before any other hook (the body check of `errors.blueprint` may refuse the
    request) and stops when the answer is ready, whatever produced it: the view, a refusal or
    a 500. The outcome is the refusal's reason (`errors.OUTCOME`), `ok` or `server_error`.
    """

    def start() -> None:
        setattr(g, _STARTED, time.perf_counter())

    def count(response: Response) -> Response:
        with telemetry._guard():
            endpoint = endpoint_of(request.path)
            started = g.get(_STARTED)
            if endpoint and started is not None:
                status = response.status_code
                outcome = (
                    OK
                    if status < 400
                    else SERVER_ERROR
                    if status >= 500
                    else str(g.get(OUTCOME) or f"http_{status}")
                )
                seconds = time.perf_counter() - started
                variants = g.get(VARIANTS)
                if variants:  # an experiment's request: under each variant it went to
                    for recorder, rows in variants:
                        recorder.request(endpoint, outcome, rows=rows, seconds=seconds)
                else:
                    rows = int(g.get(ROWS) or 0)
                    telemetry.request(endpoint, outcome, rows=rows, seconds=seconds)
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, start)
    app.after_request(count)

"""Every Prometheus series the model server exposes, and the label values its readers select on.

A series is declared here once: its name, kind, help text, label names and (for a histogram
with fixed buckets) its buckets. The server builds its prometheus_client metrics from these
declarations; the recording rules, the dashboards, the canary judge, the drift monitor and the
rehearsal build their PromQL from the names the declarations give as Prometheus exposes them
(`total`, `bucket`, `sum`, `count`), so a rename is one edit and a typo is an AttributeError.

Names follow prometheus-client 0.8, the version the server pins (seldon-core 1.17 needs <0.9):
a counter declared as `modelops_requests` is exposed as `modelops_requests_total` (its family
name too); in multiprocess mode there is no `_created` sample and every HELP line reads
"Multiprocess metric", so the help text here is what the metric objects carry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RESERVED_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")

# --- label names -----------------------------------------------------------------------------
# Every series carries the served model's version first; the scrape adds `namespace`, `pod` and
# `track` (the PodMonitor's relabelling, or the rehearsal's Prometheus configuration).
MODEL_VERSION = "model_version"
ENDPOINT, OUTCOME, CLASS = "endpoint", "outcome", "class"
POSITIVE = "positive"
MODEL_HASH, DATA_VERSION, TRAINED_AT = "model_hash", "data_version", "trained_at"
ACTUAL, PREDICTED, CELL = "actual", "predicted", "cell"
SIGN, AGREE, ORDER = "sign", "agree", "order"
FEATURE, BIN, BINS, METRIC = "feature", "bin", "bins", "metric"
LE = "le"
"""A histogram bucket's upper bound (prometheus_client adds it; no series declares it)."""
TRACK, NAMESPACE = "track", "namespace"
"""Labels the scrape adds: which predictor a pod serves, and its environment's namespace."""
VARIANT, ASSIGNED = "variant", "assigned"
"""An A/B experiment's variant (`modelops_contract.experiment`), and whether a row had a unit."""
PID = "pid"
"""The label prometheus_client adds to each sample of a per-process gauge (`per_process`)."""

# --- label values readers select on ------------------------------------------------------------
PREDICT, FEEDBACK = "predict", "feedback"
ENDPOINTS = (PREDICT, FEEDBACK)
OK, SERVER_ERROR = "ok", "server_error"
"""Outcomes of an answered request besides a client error's reason (validation's reasons)."""
STABLE, CANARY, SHADOW = "stable", "canary", "shadow"
TRACKS = (STABLE, CANARY, SHADOW)
TRUE, FALSE = "true", "false"
"""How a yes/no label (`positive`, `agree`) is spelled."""
TRUE_POSITIVE, FALSE_POSITIVE = "true_positive", "false_positive"
TRUE_NEGATIVE, FALSE_NEGATIVE = "true_negative", "false_negative"
CELLS = (TRUE_POSITIVE, FALSE_POSITIVE, TRUE_NEGATIVE, FALSE_NEGATIVE)
"""The confusion matrix's cells (`cell` of modelops_feedback_rows), in this order everywhere."""
GAIN, COST = "gain", "cost"
SIGNS = (GAIN, COST)
CONCORDANT, DISCORDANT = "concordant", "discordant"
ORDERS = (CONCORDANT, DISCORDANT)
ABOVE_ZERO, BELOW_ZERO = "positive", "negative"
SIDES = (ABOVE_ZERO, BELOW_ZERO)
"""The `sign` of modelops_experiment_covariate: the sum of the values above zero, and of the
magnitudes below it (a counter cannot go down; the sum is the first minus the second)."""
PREDICTED_POSITIVE_RATE = "predicted_positive_rate"
"""The `metric` of modelops_reference_metric that the server adds to the profile's metrics:
the test set's share predicted positive at the threshold."""


def flag(value: bool) -> str:
    """A yes/no label value, as Prometheus selectors match it."""
    return TRUE if value else FALSE


def cell(*, correct: bool, positive: bool) -> str:
    """The confusion cell of a row: whether its predicted class is right, and is the positive."""
    return f"{flag(correct)}_{'positive' if positive else 'negative'}"


# --- buckets -------------------------------------------------------------------------------------
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the request-duration histogram; a latency objective's threshold
must be one of them (`monitoring.objectives.latency.threshold_seconds`) to be counted exactly."""
SCORE_GRID = (
    0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5,
    0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0,
)  # fmt: skip
"""The score histogram's buckets: the same 20 for every model, so two models (a canary and
stable) compare bucket by bucket; drift against a profile uses its own cuts (modelops_score_bin)."""


# --- series ------------------------------------------------------------------------------------
class ContractError(ValueError):
    """A series or a recording rule declared against Prometheus's naming rules."""


@dataclass(frozen=True)
class Series:
    """One metric family the server exposes: declared `name`, help text, label names."""

    kind: ClassVar[str] = ""
    name: str
    help: str
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name) or self.name.endswith(_RESERVED_SUFFIXES):
            raise ContractError(
                f"series {self.name!r}: a name is [a-zA-Z_:][a-zA-Z0-9_:]* without a suffix "
                f"prometheus_client adds ({', '.join(_RESERVED_SUFFIXES)})"
            )
        bad = [label for label in self.labels if not _LABEL.fullmatch(label) or label == LE]
        if bad or len(set(self.labels)) != len(self.labels):
            raise ContractError(f"series {self.name}: bad or repeated label names {self.labels}")
        if self.labels[:1] != (MODEL_VERSION,):
            raise ContractError(f"series {self.name}: its first label must be {MODEL_VERSION}")

    @property
    def family(self) -> str:
        """The family's name on /prometheus (its `# TYPE` line)."""
        return self.name

    @property
    def samples(self) -> tuple[str, ...]:
        """The names of the samples the family holds on /prometheus."""
        return (self.name,)


@dataclass(frozen=True)
class CounterSeries(Series):
    """A counter: readers take `increase()` or `rate()` of `total`."""

    kind: ClassVar[str] = "counter"

    @property
    def total(self) -> str:
        """The sample name (prometheus_client appends `_total` to a counter's name)."""
        return f"{self.name}_total"

    @property
    def family(self) -> str:
        return self.total

    @property
    def samples(self) -> tuple[str, ...]:
        return (self.total,)


@dataclass(frozen=True)
class GaugeSeries(Series):
    """A gauge: one value per label set (the server merges its workers' values with `max`).

    A `per_process` gauge keeps one sample per server process instead, each with a `PID`
    label (prometheus_client's `all` mode, which keeps a process's sample after it exits, as
    its counts stay in the counters): readers count the processes.
    """

    kind: ClassVar[str] = "gauge"
    per_process: bool = False


@dataclass(frozen=True)
class HistogramSeries(Series):
    """A histogram: cumulative `bucket` counts by `le`, and `sum` and `count`."""

    kind: ClassVar[str] = "histogram"
    buckets: tuple[float, ...] | None = None
    """Upper bounds (+Inf added by the client); None: the served model's own, its profile's
    score cuts."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.buckets is not None and list(self.buckets) != sorted(set(self.buckets)):
            raise ContractError(f"series {self.name}: buckets must increase, got {self.buckets}")

    @property
    def bucket(self) -> str:
        return f"{self.name}_bucket"

    @property
    def sum(self) -> str:
        return f"{self.name}_sum"

    @property
    def count(self) -> str:
        return f"{self.name}_count"

    @property
    def samples(self) -> tuple[str, ...]:
        return (self.bucket, self.sum, self.count)


# Requests and the service.
TELEMETRY_ERRORS = CounterSeries(
    "modelops_telemetry_errors",
    "Exceptions while recording telemetry (the request was answered all the same)",
    (MODEL_VERSION,),
)
REQUESTS = CounterSeries(
    "modelops_requests",
    "Requests by endpoint and outcome (ok, a client error's reason, server_error)",
    (MODEL_VERSION, ENDPOINT, OUTCOME),
)
ROWS = CounterSeries(
    "modelops_rows",
    "Rows in requests by endpoint and outcome",
    (MODEL_VERSION, ENDPOINT, OUTCOME),
)
REQUEST_DURATION = HistogramSeries(
    "modelops_request_duration_seconds",
    "Server-side time from the request's arrival to its answer",
    (MODEL_VERSION, ENDPOINT),
    buckets=LATENCY_BUCKETS,
)
# The model and its predictions.
PREDICTIONS = CounterSeries(
    "modelops_predictions",
    "Rows predicted as each class at the deployment's threshold (positive: whether it "
    "is the positive class)",
    (MODEL_VERSION, CLASS, POSITIVE),
)
MODEL_INFO = GaugeSeries(
    "modelops_model_info",
    "The served model (value 1)",
    (MODEL_VERSION, MODEL_HASH, DATA_VERSION, TRAINED_AT),
)
MODEL_TRAINED = GaugeSeries(
    "modelops_model_trained_timestamp_seconds",
    "When the served model finished training",
    (MODEL_VERSION,),
)
# Feedback (ground truth).
FEEDBACK_ROWS = CounterSeries(
    "modelops_feedback_rows",
    "Feedback rows by true class and predicted class at the threshold, and their cell "
    "of the confusion matrix",
    (MODEL_VERSION, ACTUAL, PREDICTED, CELL),
)
LABELS = CounterSeries(
    "modelops_labels",
    "Feedback rows by true class",
    (MODEL_VERSION, CLASS),
)
BUSINESS_VALUE = CounterSeries(
    "modelops_business_value",
    "Business value of the feedback rows: gain and cost (both >= 0; net = gain - cost)",
    (MODEL_VERSION, SIGN),
)
ANSWER_AGREEMENT = CounterSeries(
    "modelops_answer_agreement_rows",
    "Feedback rows by whether this model's class at the threshold is the class of the "
    "answer the client got (for a shadow: stable's answer)",
    (MODEL_VERSION, AGREE),
)
ANSWER_PAIRS = CounterSeries(
    "modelops_answer_pairs",
    "Pairs of rows within a feedback message ordered alike (concordant) or not "
    "(discordant) by this model's scores and the answer's: Kendall's rank agreement",
    (MODEL_VERSION, ORDER),
)
# On the reference profile (only when the model directory has a profile the server can read).
FEATURE_BIN = CounterSeries(
    "modelops_feature_bin",
    "Rows per feature bin of the reference profile (profile.json)",
    (MODEL_VERSION, FEATURE, BIN),
)
REFERENCE_BINS = GaugeSeries(
    "modelops_reference_bins_info",
    "How the profile bins each feature (value 1; bins: a fingerprint of its cuts or "
    "categories): two models' bin counts compare only where it is the same",
    (MODEL_VERSION, FEATURE, BINS),
)
SCORE = HistogramSeries(
    "modelops_score",
    "The positive-class score on a fixed grid of 20 equal buckets (SCORE_GRID), the "
    "same for every model",
    (MODEL_VERSION,),
    buckets=SCORE_GRID,
)
SCORE_BIN = CounterSeries(
    "modelops_score_bin",
    "Rows per score bin of the reference profile (b00... on its cuts, upper bound "
    "included); the score's drift is judged on these against "
    "modelops_reference_score_share",
    (MODEL_VERSION, BIN),
)
FEEDBACK_SCORE = HistogramSeries(
    "modelops_feedback_score",
    "The positive-class score of feedback rows, by true class (ROC AUC from buckets)",
    (MODEL_VERSION, ACTUAL),
)
REFERENCE_SHARE = GaugeSeries(
    "modelops_reference_share",
    "Training share of each feature bin among rows with a value (profile.json)",
    (MODEL_VERSION, FEATURE, BIN),
)
REFERENCE_MISSING = GaugeSeries(
    "modelops_reference_missing_ratio",
    "Training share of rows without a value, per feature (profile.json)",
    (MODEL_VERSION, FEATURE),
)
REFERENCE_SCORE_SHARE = GaugeSeries(
    "modelops_reference_score_share",
    "Test-set share of each score bin (profile.json)",
    (MODEL_VERSION, BIN),
)
REFERENCE_METRIC = GaugeSeries(
    "modelops_reference_metric",
    "The test set's metrics at the deployment's threshold (profile.json)",
    (MODEL_VERSION, METRIC),
)

# A/B experiments (only when the server runs one: its `experiment` parameter). Every variant's
# rows are also counted in the series above under the variant's own model_version.
EXPERIMENT_ASSIGNMENTS = CounterSeries(
    "modelops_experiment_assignments",
    "Rows of an A/B experiment by endpoint and variant; assigned=false: rows without a unit, "
    "served by stable and outside the comparison",
    (MODEL_VERSION, ENDPOINT, VARIANT, ASSIGNED),
)
EXPERIMENT_UNITS = CounterSeries(
    "modelops_experiment_units",
    "Units predicted by each variant, a unit counted the first time this process sees it: a "
    "process remembers about 1,000,000 units (16-way LRU sets of 8-byte digests), so a unit "
    "seen by several processes, or forgotten, counts again",
    (MODEL_VERSION, VARIANT),
)
EXPERIMENT_PROCESSES = GaugeSeries(
    "modelops_experiment_processes",
    "1 per server process (pid) that has run the A/B experiment since its pod started: how "
    "many processes may each have counted a unit in modelops_experiment_units",
    (MODEL_VERSION,),
    per_process=True,
)
EXPERIMENT_FEEDBACK_ROWS = CounterSeries(
    "modelops_experiment_feedback_rows",
    "Feedback rows with a unit by variant and confusion cell: an A/B experiment's labelled "
    "predictions, rows without a unit left out (the primary KPI and quality guardrails)",
    (MODEL_VERSION, VARIANT, CELL),
)
EXPERIMENT_COVARIATE_ROWS = CounterSeries(
    "modelops_experiment_covariate_rows",
    "Feedback rows with a unit and a covariate value, by variant and confusion cell (CUPED)",
    (MODEL_VERSION, VARIANT, CELL),
)
EXPERIMENT_COVARIATE = CounterSeries(
    "modelops_experiment_covariate",
    "The sum of the covariate over those rows, by variant and confusion cell: sign "
    "positive sums the values above zero, negative the magnitudes below (sum = positive - "
    "negative)",
    (MODEL_VERSION, VARIANT, CELL, SIGN),
)
EXPERIMENT_COVARIATE_SQUARES = CounterSeries(
    "modelops_experiment_covariate_squares",
    "The sum of the covariate's squares over those rows, by variant and confusion cell",
    (MODEL_VERSION, VARIANT, CELL),
)

SERIES: tuple[Series, ...] = (
    TELEMETRY_ERRORS,
    REQUESTS,
    ROWS,
    REQUEST_DURATION,
    PREDICTIONS,
    MODEL_INFO,
    MODEL_TRAINED,
    FEEDBACK_ROWS,
    LABELS,
    BUSINESS_VALUE,
    ANSWER_AGREEMENT,
    ANSWER_PAIRS,
    FEATURE_BIN,
    REFERENCE_BINS,
    SCORE,
    SCORE_BIN,
    FEEDBACK_SCORE,
    REFERENCE_SHARE,
    REFERENCE_MISSING,
    REFERENCE_SCORE_SHARE,
    REFERENCE_METRIC,
    EXPERIMENT_ASSIGNMENTS,
    EXPERIMENT_UNITS,
    EXPERIMENT_PROCESSES,
    EXPERIMENT_FEEDBACK_ROWS,
    EXPERIMENT_COVARIATE_ROWS,
    EXPERIMENT_COVARIATE,
    EXPERIMENT_COVARIATE_SQUARES,
)
"""Every series, each once."""
PROFILE_SERIES: tuple[Series, ...] = (
    FEATURE_BIN,
    REFERENCE_BINS,
    SCORE,
    SCORE_BIN,
    FEEDBACK_SCORE,
    REFERENCE_SHARE,
    REFERENCE_MISSING,
    REFERENCE_SCORE_SHARE,
    REFERENCE_METRIC,
)
"""The series a server has only with a profile it can bin with."""
EXPERIMENT_SERIES: tuple[Series, ...] = (
    EXPERIMENT_ASSIGNMENTS,
    EXPERIMENT_UNITS,
    EXPERIMENT_PROCESSES,
    EXPERIMENT_FEEDBACK_ROWS,
    EXPERIMENT_COVARIATE_ROWS,
    EXPERIMENT_COVARIATE,
    EXPERIMENT_COVARIATE_SQUARES,
)
"""The series a server has only while it runs an A/B experiment (the covariate's, only when
the experiment names one)."""


def _unique(series: tuple[Series, ...]) -> None:
    names = [s.name for s in series]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ContractError(f"series declared twice: {repeated}")


_unique(SERIES)

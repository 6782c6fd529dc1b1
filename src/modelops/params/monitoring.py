"""Section `monitoring`: telemetry, objectives and alerts, labels, and when drift retrains."""

from __future__ import annotations

import datetime as dt
import typing
from typing import Literal, Self, TypeAlias

from modelops_contract import LATENCY_BUCKETS
from pydantic import Field, field_validator, model_validator

from modelops.params.base import Duration, Frozen, duration_seconds


class BusinessValueParams(Frozen):
    """What one prediction is worth once its truth is known, per outcome at the threshold.

    Positive numbers are gains, negative ones costs, in any one unit (e.g. revenue kept per
    churner caught, minus the offer each flagged customer gets). The server counts the gains and
    the costs of every labelled row, so the KPI the model exists for is a time series.
    """

    true_positive: float = Field(description="Value of a positive the model caught.")
    false_positive: float = Field(description="Value of a negative the model flagged.")
    true_negative: float = Field(0.0, description="Value of a negative the model let pass.")
    false_negative: float = Field(0.0, description="Value of a positive the model missed.")

    @model_validator(mode="after")
    def _not_all_zero(self) -> Self:
        if not any(self.server_value().values()):
            raise ValueError(
                "every value is 0: give what a caught positive and a false alarm are worth "
                "(e.g. true_positive: 120, false_positive: -15), or set business: null"
            )
        return self

    def server_value(self) -> dict[str, float]:
        """The model server's `business_value` parameter, as a mapping."""
        return {
            "false_negative": self.false_negative,
            "false_positive": self.false_positive,
            "true_negative": self.true_negative,
            "true_positive": self.true_positive,
        }


# The server's latency histogram bounds (the telemetry contract's): a latency objective is
# counted exactly only at one of them.
LATENCY_BOUNDS = LATENCY_BUCKETS


class ServiceObjective(Frozen):
    """A service level objective: the share of good predict requests over `window`."""

    target: float = Field(
        gt=0.5, lt=1.0, description="Share of good requests promised, e.g. 0.999 (three nines)."
    )
    window: Duration = Field("28d", description="The SLO window the error budget is counted over.")
    min_requests: int = Field(
        100,
        ge=1,
        description="Requests a burn-rate alert's long window needs before it can fire, so a "
        "handful of requests at night cannot page anyone.",
    )

    @field_validator("window")
    @classmethod
    def _window_holds_the_alerts(cls, value: str) -> str:
        if duration_seconds(value) < 3 * 86_400:
            raise ValueError(
                f"window {value} is shorter than the slowest burn-rate alert's 3d: use 3d or "
                "more (28d is usual)"
            )
        return value


class LatencyObjective(ServiceObjective):
    """The share of predict requests answered within `threshold_seconds`."""

    target: float = Field(
        0.99, gt=0.5, lt=1.0, description="Share of requests faster than the threshold."
    )
    threshold_seconds: float = Field(
        0.1,
        description=f"The latency bound; one of the server's histogram bounds {LATENCY_BOUNDS}.",
    )

    @field_validator("threshold_seconds")
    @classmethod
    def _a_histogram_bound(cls, value: float) -> float:
        if value not in LATENCY_BOUNDS:
            nearest = min(LATENCY_BOUNDS, key=lambda bound: abs(bound - value))
            raise ValueError(
                f"{value} s is not a bound of the server's latency histogram, so the share under "
                f"it cannot be counted exactly: use one of {LATENCY_BOUNDS} (nearest: {nearest})"
            )
        return value


class AvailabilityObjective(ServiceObjective):
    """The share of predict requests answered without a server error (5xx)."""

    target: float = Field(0.999, gt=0.5, lt=1.0, description="Share of requests without a 5xx.")
    min_requests: int = Field(
        1000,
        ge=1,
        description="Requests a burn-rate alert's long window needs before it can fire: at "
        "1,000 and three nines a page needs at least 7 server errors, never a single one.",
    )


class DriftObjective(Frozen):
    """Population stability (PSI) of a distribution against the reference profile."""

    max_psi: float = Field(
        0.2, gt=0, le=5, description="PSI above this is drift (0.1 moderate, 0.25 large)."
    )
    window: Duration = Field("1h", description="Rows of this window are compared.")
    min_rows: int = Field(
        1000,
        ge=100,
        description="Rows the window needs before PSI is judged: identical distributions give a "
        "PSI of about (bins - 1) / rows by chance (runbooks/slo.md).",
    )


class RateObjective(Frozen):
    """A per-feature rate of missing or unseen values over a window, with a minimum of rows."""

    window: Duration = Field("1h", description="Rows of this window are counted.")
    min_rows: int = Field(1000, ge=30, description="Rows the window needs before it is judged.")


class MissingObjective(RateObjective):
    """Missing values per feature, against the reference profile's missing rate."""

    max_increase: float = Field(
        0.05, gt=0, lt=1, description="Allowed rise of the missing share over the training one."
    )


class UnseenObjective(RateObjective):
    """Categories never seen in training, per categorical feature."""

    max_rate: float = Field(0.01, gt=0, lt=1, description="Allowed share of unseen categories.")


class QualityObjective(Frozen):
    """Realized recall or precision from feedback, against the profile's expected value."""

    max_drop: float = Field(
        0.1, gt=0, lt=1, description="Allowed drop below the test set's value (profile.json)."
    )
    window: Duration = Field("7d", description="Feedback of this window is counted.")
    min_labels: int = Field(
        200, ge=30, description="Labelled rows the window needs before quality is judged."
    )


class BusinessObjective(Frozen):
    """Net business value per labelled prediction (monitoring.business)."""

    min_per_label: float = Field(0.0, description="Alert when the value per label is below this.")
    window: Duration = Field("7d", description="Feedback of this window is counted.")
    min_labels: int = Field(
        200, ge=30, description="Labelled rows the window needs before value is judged."
    )


class FreshnessObjective(Frozen):
    """How old the served model may get (days since its training ended)."""

    max_age_days: float = Field(90, gt=0, description="Alert when the model is older than this.")


class ObjectivesParams(Frozen):
    """What a deployed model promises; rendered as recording rules and alerts (runbooks/slo.md)."""

    availability: AvailabilityObjective = AvailabilityObjective()
    latency: LatencyObjective = LatencyObjective()
    score_drift: DriftObjective = DriftObjective()
    feature_drift: DriftObjective = DriftObjective()
    missing_values: MissingObjective = MissingObjective()
    unseen_categories: UnseenObjective = UnseenObjective()
    recall: QualityObjective = QualityObjective()
    precision: QualityObjective = QualityObjective()
    business_value: BusinessObjective = BusinessObjective()
    freshness: FreshnessObjective = FreshnessObjective()


class LabelsParams(Frozen):
    """Ground truth sent back through the feedback API."""

    expected: bool = Field(
        True,
        description="Whether truth is sent back; false turns off the quality, business-value "
        "and no-feedback alerts.",
    )
    delay: Duration = Field(
        "1d", description="How long truth takes to arrive; no feedback for longer alerts."
    )


class AlertsParams(Frozen):
    """How alerts are worded and when silence is an alert."""

    no_traffic_for: Duration = Field(
        "30m", description="No predict request for this long alerts (ModelopsNoTraffic)."
    )
    runbook_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="Base URL of runbooks/alerts.md; null: deploy.repo_url's file on "
        "deploy.revision.",
    )


RetrainCriterion: TypeAlias = Literal[
    "feature_drift",
    "score_drift",
    "missing_values",
    "unseen_categories",
    "recall",
    "precision",
    "concept_drift",
]
RETRAIN_CRITERIA: tuple[RetrainCriterion, ...] = typing.get_args(RetrainCriterion)


class DismissalParams(Frozen):
    """A reviewed false alarm: a criterion (on one subject, or all) does not count until a date."""

    criterion: RetrainCriterion
    subject: str | None = Field(
        None, description="The feature (or score, recall...) it covers; null: every subject."
    )
    until: dt.date = Field(description="The last day it holds (YYYY-MM-DD); then it counts again.")
    reason: str = Field(min_length=3, description="Why it is a false alarm (kept in the log).")


class RetrainParams(Frozen):
    """When production drift retrains the model (runbooks/drift-and-retraining.md)."""

    window: str = Field(
        "1d",
        pattern=r"^[1-9][0-9]*(s|m|h|d|w)$",
        description="The length of one judged window, a Prometheus duration (1d; 30s for tries).",
    )
    windows: int = Field(7, ge=1, le=60, description="M: the last M windows are judged.")
    breaches: int = Field(
        3,
        ge=1,
        description="N: a criterion retrains when it breaches in N of the M windows, "
        "the latest included.",
    )
    max_age_days: int = Field(
        90, ge=1, description="Retrain on schedule when the served model is older, drift or not."
    )
    max_calibration_gap: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Concept drift: the labelled rows' positive share may differ this much from "
        "what the calibration expects of their scores.",
    )
    retrain_on: tuple[RetrainCriterion, ...] = Field(
        RETRAIN_CRITERIA,
        description="Criteria that may retrain; the others are reported (and open issues) only.",
    )
    refresh_command: str | None = Field(
        None,
        min_length=1,
        description="Shell command that refreshes a source nothing else refreshes (e.g. an "
        "export script); imported sources (dvc import-url) are refreshed with dvc update.",
    )
    dismissed: tuple[DismissalParams, ...] = Field(
        (),
        description="Reviewed false alarms, each until a date (runbooks/drift-and-retraining.md).",
    )

    @model_validator(mode="after")
    def _n_of_m(self) -> Self:
        if self.breaches > self.windows:
            raise ValueError(
                f"breaches {self.breaches} is more than windows {self.windows}: a criterion "
                "could never retrain; make breaches at most windows"
            )
        return self


class RequestLogParams(Frozen):
    """The server's sampled request log, for `modelops monitor --rows` (serving/README.md)."""

    sample_rate: float = Field(
        0.0, ge=0, le=1, description="Share of predict requests whose rows are logged; 0: off."
    )
    path: str = Field(
        "stdout",
        min_length=1,
        description="stdout (one JSON line per row, for a log collector) or a file path in "
        "the server's container.",
    )


class MonitoringParams(Frozen):
    """Production telemetry: how Prometheus scrapes the servers, and what a prediction is worth."""

    scrape_interval: str = Field(
        "15s",
        pattern=r"^[1-9][0-9]*(ms|s|m)$",
        description="How often Prometheus scrapes each container (the PodMonitor's interval).",
    )
    business: BusinessValueParams | None = Field(
        None,
        description="Value per true/false positive/negative for the business-value series; "
        "null: none.",
    )
    labels: LabelsParams = LabelsParams()
    objectives: ObjectivesParams = ObjectivesParams()
    alerts: AlertsParams = AlertsParams()
    retrain: RetrainParams = RetrainParams()
    request_log: RequestLogParams = RequestLogParams()
    prometheus_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="The Prometheus that scrapes the servers, for `modelops canary` and the "
        "deploy's error-budget check; null: give --prometheus (or $MODELOPS_PROMETHEUS_URL).",
    )
    pushgateway_url: str | None = Field(
        "http://prometheus-pushgateway.monitoring.svc:9091",
        pattern=r"^https?://\S+$",
        description="The Prometheus Pushgateway a batch environment's runs push their figures "
        "to (Prometheus scrapes it with honor_labels); null: runs push nothing, and no batch "
        "alert is rendered.",
    )

    @model_validator(mode="after")
    def _quality_windows_outlast_the_label_delay(self) -> Self:
        if not self.labels.expected:
            return self
        delay = duration_seconds(self.labels.delay)
        for name in ("recall", "precision", "business_value"):
            window = getattr(self.objectives, name).window
            if duration_seconds(window) <= delay:
                raise ValueError(
                    f"objectives.{name}.window {window} is not longer than labels.delay "
                    f"{self.labels.delay}: the window would hold no truth yet; make it longer "
                    "(several times the delay)"
                )
        return self

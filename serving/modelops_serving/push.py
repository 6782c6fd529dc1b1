"""A batch run's figures, pushed to a Prometheus Pushgateway under the contract's names.

A scheduled run has no /prometheus for Prometheus to scrape: it pushes instead, once, when it
ends (`modelops-score --pushgateway`). A run that succeeds replaces its whole group (PUT): rows,
duration, positive rate, model, the rows in each reference bin and the reference shares they
are judged against, and its finish time. A run that fails adds only its failure time (POST), so
the last good run's figures, and its success time, stay for the rules: the rendered alerts fire
when the last failure is newer than the last success, when no run has succeeded for longer than
the schedule allows, and when the last run drifted (modelops_contract.batch, runbooks/alerts.md).

A push that cannot reach the gateway is retried, then reported; it never fails the run, whose
scores are already in place (the missed-run alert then says the figures never arrived).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelops_contract import REFERENCE_MISSING, REFERENCE_SCORE_SHARE, REFERENCE_SHARE, bin_labels
from modelops_contract import batch as contract
from modelops_contract.series import Series
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, pushadd_to_gateway

from modelops_serving.profile import Profile

ATTEMPTS = 3
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Gateway:
    """Where a run's figures go, and the group they replace there."""

    url: str
    """The Pushgateway's address, e.g. http://prometheus-pushgateway.monitoring.svc:9091."""
    job: str
    """The group's `job`: the batch environment's CronJob (or ScheduledSparkApplication) name."""
    labels: Mapping[str, str]
    """The rest of the grouping key, e.g. {"namespace": "churn-batch"}."""
    model_version: str
    """Every series' `model_version`: the release's version, else the model hash's start."""


class _Gauges:
    """Gauges of contract series in one registry (a push holds only what it sets)."""

    def __init__(self, model_version: str) -> None:
        self.registry = CollectorRegistry()
        self.version = model_version
        self._gauges: dict[str, Gauge] = {}

    def set(self, series: Series, value: float, *labels: str) -> None:
        if series.name not in self._gauges:
            self._gauges[series.name] = Gauge(
                series.name, series.help, list(series.labels), registry=self.registry
            )
        self._gauges[series.name].labels(self.version, *labels).set(value)


def success_registry(
    record: Mapping[str, Any], profile: Profile, *, model_version: str, finished: float
) -> CollectorRegistry:
    """What a successful run pushes: its record's figures and the profile's reference (pure)."""
    gauges = _Gauges(model_version)
    rows = record["rows"]
    for outcome, key in (
        (contract.ROWS_IN, "in"),
        (contract.ROWS_SCORED, "scored"),
        (contract.ROWS_REFUSED, "refused"),
    ):
        gauges.set(contract.ROWS, float(rows[key]), outcome)
    gauges.set(contract.DURATION, float(record["seconds"]["total"]))
    if record.get("positive_rate") is not None:
        gauges.set(contract.POSITIVE_RATE, float(record["positive_rate"]))
    gauges.set(contract.MODEL_INFO, 1.0, str(record["model"]["hash"]))
    for feature, counts in record["bins"].items():
        for label, count in counts.items():
            gauges.set(contract.FEATURE_BIN_ROWS, float(count), feature, label)
    for label, count in record["score_bins"].items():
        gauges.set(contract.SCORE_BIN_ROWS, float(count), label)
    for binned in profile.features:
        for label, share in zip(binned.labels, binned.shares, strict=False):
            gauges.set(REFERENCE_SHARE, share, binned.name, label)
        gauges.set(REFERENCE_MISSING, binned.missing, binned.name)
    for label, share in zip(
        bin_labels(len(profile.score_shares)), profile.score_shares, strict=True
    ):
        gauges.set(REFERENCE_SCORE_SHARE, share, label)
    gauges.set(contract.LAST_SUCCESS, finished)
    return gauges.registry


def failure_registry(*, model_version: str, stopped: float) -> CollectorRegistry:
    """What a failed run pushes: when it stopped (pure)."""
    gauges = _Gauges(model_version)
    gauges.set(contract.LAST_FAILURE, stopped)
    return gauges.registry


def push_success(
    gateway: Gateway, record: Mapping[str, Any], profile: Profile, *, finished: float
) -> str | None:
    """Replace the run's group with its figures; None, or why the push failed."""
    registry = success_registry(
        record, profile, model_version=gateway.model_version, finished=finished
    )
    return _push(push_to_gateway, gateway, registry)


def push_failure(gateway: Gateway, *, stopped: float) -> str | None:
    """Add the failure time to the run's group; None, or why the push failed."""
    registry = failure_registry(model_version=gateway.model_version, stopped=stopped)
    return _push(pushadd_to_gateway, gateway, registry)


def _push(
    send: Callable[..., None],
    gateway: Gateway,
    registry: CollectorRegistry,
    *,
    pause: Callable[[float], None] = time.sleep,
) -> str | None:
    problem = ""
    for attempt in range(ATTEMPTS):
        try:
            send(
                gateway.url,
                job=gateway.job,
                registry=registry,
                grouping_key=dict(gateway.labels),
                timeout=TIMEOUT_SECONDS,
            )
            return None
        except OSError as exc:  # URLError and HTTPError are OSErrors
            problem = f"{type(exc).__name__}: {exc}"
            if attempt + 1 < ATTEMPTS:
                pause(2.0**attempt)
    return f"could not push to {gateway.url} after {ATTEMPTS} attempts ({problem})"

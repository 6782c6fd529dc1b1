"""The recording rules: every SLI, drift, rate and quality series the alerts and dashboards read.

Pure functions of `monitoring` params and a `Target`. Each rule's name is the telemetry
contract's (`modelops_contract.records`), for the window it is computed over; each expression
reads the server's series by the contract's declarations. `rules.py` puts these groups before
the alerts (`alerts.py`) that read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypedDict, final

from modelops_contract import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    FEATURE_BIN,
    FEEDBACK_ROWS,
    MISSING,
    MODEL_TRAINED,
    PREDICT,
    PREDICTIONS,
    REFERENCE_SCORE_SHARE,
    REFERENCE_SHARE,
    REQUEST_DURATION,
    REQUESTS,
    SCORE_BIN,
    SERVER_ERROR,
    SHADOW,
    TRUE,
    TRUE_POSITIVE,
    UNSEEN,
    records,
)
from modelops_contract.records import DriftRules

from modelops.params import MonitoringParams, duration_seconds

CLAMP = 1e-4
"""The least share a PSI term uses, so an empty bin is a large term, not an infinite one."""
BY = "namespace, track, model_version"
"""What every ML series is kept by: a canary is judged apart from stable."""
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
SERVICE_WINDOW = "5m"
"""The window of the dashboards' request rate and latency quantiles (their names hold it)."""


@final  # final: `"alert" in rule` tells an alerting rule from a recording one
class RecordingRule(TypedDict):
    """A recording rule as a Prometheus rules file holds it."""

    record: str
    expr: str
    labels: NotRequired[dict[str, str]]


@dataclass(frozen=True)
class Target:
    """Where the rules apply: one environment's namespace, and where its runbook lives."""

    environment: str
    namespace: str
    runbook: str
    """URL of runbooks/alerts.md; an alert links `<runbook>#<alert name, lowercased>`."""
    time_scale: float = 1.0
    """Windows and `for` durations are divided by this (the rehearsal's compressed time)."""


def scaled(duration: str, scale: float, *, least: int = 1) -> str:
    """`duration` divided by `scale`, in whole seconds (at least `least`)."""
    if scale == 1.0:
        return duration
    return f"{max(round(duration_seconds(duration) / scale), least)}s"


class Records:
    """The recording rules of one target, by group (SLO, ML, service)."""

    def __init__(self, monitoring: MonitoringParams, target: Target) -> None:
        self.m = monitoring
        self.o = monitoring.objectives
        self.t = target
        self.ns = f'namespace="{target.namespace}"'

    def w(self, duration: str) -> str:
        return scaled(duration, self.t.time_scale)

    def slo_records(self) -> list[RecordingRule]:
        rules: list[RecordingRule] = []
        # A shadow answers mirrored copies no user sees: its errors spend no user's budget.
        predict = f'{self.ns}, track!="{SHADOW}", endpoint="{PREDICT}"'
        bound = repr(float(self.o.latency.threshold_seconds))
        requests = REQUESTS.total
        for slo, objective in (("availability", self.o.availability), ("latency", self.o.latency)):
            windows = list(dict.fromkeys([*SLO_WINDOWS, objective.window]))
            for window in windows:
                w = self.w(window)
                total = f"sum by (namespace) (rate({requests}{{{predict}}}[{w}]))"
                if slo == "availability":
                    bad = (
                        f"(sum by (namespace) (rate({requests}{{{predict}, "
                        f'outcome="{SERVER_ERROR}"}}[{w}])) or 0 * {total})'
                    )
                    ratio = f"{bad} / {total}"
                else:
                    count = f"sum by (namespace) (rate({REQUEST_DURATION.count}{{{predict}}}[{w}]))"
                    fast = (
                        f"sum by (namespace) (rate({REQUEST_DURATION.bucket}"
                        f'{{{predict}, le="{bound}"}}[{w}]))'
                    )
                    ratio = f"({count} - {fast}) / {count}"
                labels = {"slo": slo}
                rules.append(record(records.SLI_ERROR.at(window), ratio, labels))
                events = f"sum by (namespace) (increase({requests}{{{predict}}}[{w}]))"
                rules.append(record(records.SLI_EVENTS.at(window), events, labels))
            budget = 1 - objective.target
            rules.append(
                record(
                    records.SLO_ERROR_BUDGET_REMAINING,
                    f'1 - {records.SLI_ERROR.at(objective.window)}{{slo="{slo}", '
                    f"{self.ns}}} / {budget:g}",
                    {"slo": slo},
                )
            )
        return rules

    def ml_records(self) -> list[RecordingRule]:
        o, ns = self.o, self.ns
        rules: list[RecordingRule] = []
        drift, score = o.feature_drift.window, o.score_drift.window
        bins = FEATURE_BIN.total
        rules += self._psi(
            records.FEATURE_DRIFT,
            bins,
            REFERENCE_SHARE.name,
            drift,
            by=f"{BY}, feature",
            exclude=f'bin!="{MISSING}"',
        )
        rules += self._psi(
            records.SCORE_DRIFT,
            SCORE_BIN.total,
            REFERENCE_SCORE_SHARE.name,
            score,
            by=BY,
            exclude="",
        )
        for window in dict.fromkeys([o.missing_values.window, o.unseen_categories.window]):
            w = self.w(window)
            all_rows = records.FEATURE_ALL_ROWS.at(window)
            rules.append(
                record(all_rows, f"sum by ({BY}, feature) (increase({bins}{{{ns}}}[{w}]))")
            )
            missing = f'sum by ({BY}, feature) (increase({bins}{{{ns}, bin="{MISSING}"}}[{w}]))'
            rules.append(record(records.FEATURE_MISSING.at(window), f"{missing} / {all_rows}"))
            unseen = f'sum by ({BY}, feature) (increase({bins}{{{ns}, bin="{UNSEEN}"}}[{w}]))'
            present = f'sum by ({BY}, feature) (increase({bins}{{{ns}, bin!="{MISSING}"}}[{w}]))'
            rules.append(
                record(
                    records.FEATURE_UNSEEN.at(window), f"{unseen} / on ({BY}, feature) {present}"
                )
            )
        w = self.w(drift)
        predictions = PREDICTIONS.total
        positive = f'sum by ({BY}) (increase({predictions}{{{ns}, positive="{TRUE}"}}[{w}]))'
        predicted = f"sum by ({BY}) (increase({predictions}{{{ns}}}[{w}]))"
        rules.append(record(records.POSITIVE_RATE.at(drift), f"{positive} / {predicted}"))
        quality = dict.fromkeys([o.recall.window, o.precision.window, o.business_value.window])
        for window in quality:
            cells = records.FEEDBACK_CELLS.at(window)
            rules.append(
                record(
                    cells,
                    f"sum by ({BY}, cell) (increase("
                    f"{FEEDBACK_ROWS.total}{{{ns}}}[{self.w(window)}]))",
                )
            )
            tp = f'sum by ({BY}) ({cells}{{cell="{TRUE_POSITIVE}"}})'
            positives = f'sum by ({BY}) ({cells}{{cell=~"{TRUE_POSITIVE}|{FALSE_NEGATIVE}"}})'
            flagged = f'sum by ({BY}) ({cells}{{cell=~"{TRUE_POSITIVE}|{FALSE_POSITIVE}"}})'
            rules += [
                record(records.LABELS.at(window), f"sum by ({BY}) ({cells})"),
                record(records.RECALL.rows.at(window), positives),
                record(records.RECALL.ratio.at(window), f"{tp} / {positives}"),
                record(records.PRECISION.rows.at(window), flagged),
                record(records.PRECISION.ratio.at(window), f"{tp} / {flagged}"),
            ]
            if self.m.business is not None:
                rules += self._business(window, cells)
        rules.append(
            record(
                records.MODEL_AGE,
                f"(time() - max by ({BY}) ({MODEL_TRAINED.name}{{{ns}}})) / 86400",
            )
        )
        return rules

    def _psi(
        self, names: DriftRules, counter: str, reference: str, window: str, *, by: str, exclude: str
    ) -> list[RecordingRule]:
        w = self.w(window)
        selector = ", ".join(part for part in (self.ns, exclude) if part)
        rows_bin = names.bin_rows.at(window)
        rows = names.rows.at(window)
        share = names.bin_share.at(window)
        expected = f"clamp_min(max by ({by}, bin) ({reference}{{{self.ns}}}), {CLAMP})"
        psi = psi_of(share, expected, by=by)
        return [
            record(rows_bin, f"sum by ({by}, bin) (increase({counter}{{{selector}}}[{w}]))"),
            record(rows, f"sum by ({by}) ({rows_bin})"),
            record(share, f"clamp_min({rows_bin} / ignoring (bin) group_left {rows}, {CLAMP})"),
            record(names.psi.at(window), psi),
        ]

    def _business(self, window: str, cells: str) -> list[RecordingRule]:
        assert self.m.business is not None
        values = self.m.business.server_value()
        n = records.LABELS.at(window)
        count = {cell: f'sum by ({BY}) ({cells}{{cell="{cell}"}})' for cell in values}
        mean = " + ".join(f"{value:g} * {count[cell]}" for cell, value in values.items() if value)
        square = " + ".join(
            f"{value * value:g} * {count[cell]}" for cell, value in values.items() if value
        )
        mean_rule = records.BUSINESS_VALUE_PER_LABEL.at(window)
        return [
            record(mean_rule, f"({mean}) / {n}"),
            record(
                records.BUSINESS_VALUE_PER_LABEL_VARIANCE.at(window),
                f"clamp_min(({square}) / {n} - {mean_rule} ^ 2, 0)",
            ),
        ]

    def service_records(self) -> list[RecordingRule]:
        ns, w = self.ns, self.w(SERVICE_WINDOW)
        rate = f"rate({REQUESTS.total}{{{ns}}}[{w}])"
        by = "namespace, track, endpoint, outcome"
        rules = [record(records.REQUESTS_RATE.at(SERVICE_WINDOW), f"sum by ({by}) ({rate})")]
        buckets = (
            f"sum by (namespace, track, le) (rate({REQUEST_DURATION.bucket}"
            f'{{{ns}, endpoint="{PREDICT}"}}[{w}]))'
        )
        for quantile, family in records.REQUEST_DURATION_QUANTILES.items():
            rules.append(
                record(family.at(SERVICE_WINDOW), f"histogram_quantile(0.{quantile}, {buckets})")
            )
        return rules


def psi_of(share: str, expected: str, *, by: str) -> str:
    """PromQL of the PSI between bin shares and expected shares (both by `by` and `bin`)."""
    on = f"on ({by}, bin)"
    return f"sum by ({by}) (({share} - {on} {expected}) * {on} ln({share} / {on} {expected}))"


def record(name: str, expr: str, labels: dict[str, str] | None = None) -> RecordingRule:
    """A recording rule: `name` records `expr` (with `labels`, when given)."""
    rule: RecordingRule = {"record": name, "expr": expr}
    if labels:
        rule["labels"] = labels
    return rule

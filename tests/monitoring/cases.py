"""`promtool test rules` cases, generated for every alert from the params it was rendered with.

Each alert gets series that breach it (it must fire, with its labels), healthy series (it must
stay silent, not even pending) and, when it has a minimum-event guard, breaching series with
too few events (silent too). The numbers are derived from the objective's own target, window
and minimum, so a change of params is tested as rendered. Alerts are read from the `ALERTS`
series, so annotations (checked by `promtool check rules` and the end-to-end test) do not have
to be copied here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelops.params import MonitoringParams, duration_seconds

TRACK = {"track": "stable", "model_version": "v1", "pod": "churn-stable-0", "job": "modelops"}


@dataclass(frozen=True)
class Case:
    """Series, when to look, and whether the alert fires then."""

    name: str
    fires: bool
    series: list[tuple[str, dict[str, str], str]]
    """(metric, labels, promtool values notation) per input series."""
    eval_minutes: int
    interval_minutes: int = 1
    labels: dict[str, str] = field(default_factory=dict)
    """Labels the firing alert must have (beyond those of the rule)."""
    pending_ok: bool = False
    """A silent case where the alert may be pending (its `for` not yet over), only not firing."""


def _minutes(duration: str) -> int:
    return duration_seconds(duration) // 60


def _counter(per_minute: float, interval: int, steps: int) -> str:
    """A counter rising by `per_minute` each minute, sampled every `interval` minutes."""
    step = per_minute * interval
    return f"0+{step:.6g}x{steps}"


def _gauge(value: float, steps: int) -> str:
    return f"{value:.6g}x{steps}"


class Builder:
    """Cases for one environment's rules, rendered from `monitoring`."""

    def __init__(self, monitoring: MonitoringParams, namespace: str) -> None:
        self.m = monitoring
        self.o = monitoring.objectives
        self.ns = namespace

    def labels(self, **extra: str) -> dict[str, str]:
        return {"namespace": self.ns, **TRACK, **extra}

    def cases(self) -> dict[str, list[Case]]:
        """Cases by alert name, for every alert these params render."""
        builders: dict[str, Callable[[], list[Case]]] = {
            "ModelopsAvailabilityFastBurn": lambda: self._burn("availability", fast=True),
            "ModelopsAvailabilitySlowBurn": lambda: self._burn("availability", fast=False),
            "ModelopsLatencyFastBurn": lambda: self._burn("latency", fast=True),
            "ModelopsLatencySlowBurn": lambda: self._burn("latency", fast=False),
            "ModelopsTargetDown": self._target_down,
            "ModelopsNoTraffic": self._no_traffic,
            "ModelopsNoFeedback": self._no_feedback,
            "ModelopsFeatureDrift": lambda: self._drift("feature"),
            "ModelopsScoreDrift": lambda: self._drift("score"),
            "ModelopsMissingValues": self._missing,
            "ModelopsUnseenCategories": self._unseen,
            "ModelopsRecallLow": lambda: self._quality("recall"),
            "ModelopsPrecisionLow": lambda: self._quality("precision"),
            "ModelopsBusinessValueLow": self._business,
            "ModelopsModelStale": self._stale,
            "ModelopsTelemetryErrors": self._telemetry,
        }
        return {name: build() for name, build in builders.items()}

    # --- service level objectives ---------------------------------------------------------

    def _burn(self, slo: str, *, fast: bool) -> list[Case]:
        objective = getattr(self.o, slo)
        budget = 1 - objective.target
        minimum = objective.min_requests
        if fast:  # 14.4x over 1h and 5m: look after 70 minutes at 1-minute samples
            eval_minutes, interval, longest = 70, 1, 6 * 60
            bad, good = min(0.5, 20 * budget), 0.5 * budget
        else:  # 3x over 1d and 2h, below the fast burn's 6x: look after 26 hours
            eval_minutes, interval, longest = 26 * 60, 4, 3 * 24 * 60
            bad, good = 4.5 * budget, 0.5 * budget
        enough = max(10.0, 3 * minimum / 60)  # requests per minute: the 1h window has 3x minimum
        few = 0.3 * minimum / longest  # even the longest window has less than the minimum
        steps = eval_minutes // interval + 1

        def series(per_minute: float, share_bad: float) -> list[tuple[str, dict[str, str], str]]:
            ok = per_minute * (1 - share_bad)
            requests = "modelops_requests_total"
            out = [
                (
                    requests,
                    self.labels(endpoint="predict", outcome="ok"),
                    _counter(ok if slo == "availability" else per_minute, interval, steps),
                ),
            ]
            if slo == "availability":
                out.append(
                    (
                        requests,
                        self.labels(endpoint="predict", outcome="server_error"),
                        _counter(per_minute * share_bad, interval, steps),
                    )
                )
            else:
                bound = repr(float(self.o.latency.threshold_seconds))
                duration = "modelops_request_duration_seconds"
                out += [
                    (
                        f"{duration}_bucket",
                        self.labels(endpoint="predict", le=bound),
                        _counter(ok, interval, steps),
                    ),
                    (
                        f"{duration}_bucket",
                        self.labels(endpoint="predict", le="+Inf"),
                        _counter(per_minute, interval, steps),
                    ),
                    (
                        f"{duration}_count",
                        self.labels(endpoint="predict"),
                        _counter(per_minute, interval, steps),
                    ),
                ]
            return out

        def case(name: str, fires: bool, per_minute: float, share: float) -> Case:
            return Case(
                name, fires, series(per_minute, share), eval_minutes, interval, {"slo": slo}
            )

        shadow = [
            (name, {**labels, "track": "shadow", "pod": "churn-shadow-0"}, values)
            for name, labels, values in series(enough, 1.0)
        ]
        mirrored = Case(
            "a shadow failing every mirrored request",
            False,
            series(enough, good) + shadow,
            eval_minutes,
            interval,
            {"slo": slo},
        )
        return [
            case("breaching", True, enough, bad),
            case("healthy", False, enough, good),
            case("below the minimum of requests", False, few, bad),
            mirrored,
        ]

    # --- no data ------------------------------------------------------------------------

    def _target_down(self) -> list[Case]:
        return [
            Case("breaching", True, [("up", self.labels(), _gauge(0, 20))], 15),
            Case("healthy", False, [("up", self.labels(), _gauge(1, 20))], 15),
        ]

    def _no_traffic(self) -> list[Case]:
        quiet = _minutes(self.m.alerts.no_traffic_for)
        eval_minutes = 2 * quiet + 15
        steps = eval_minutes + 1
        labels = self.labels(endpoint="predict", outcome="ok")
        flat = f"0+10x{quiet}" + f" {10 * quiet}+0x{steps - quiet}"
        return [
            Case("breaching", True, [("modelops_requests_total", labels, flat)], eval_minutes),
            Case(
                "healthy",
                False,
                [("modelops_requests_total", labels, _counter(10, 1, steps))],
                eval_minutes,
            ),
        ]

    def _no_feedback(self) -> list[Case]:
        delay = _minutes(self.m.labels.delay)
        interval = min(4, max(1, delay // 96))
        eval_minutes = 2 * delay + 45
        steps = eval_minutes // interval + 1
        requests = (
            "modelops_requests_total",
            self.labels(endpoint="predict", outcome="ok"),
            _counter(10, interval, steps),
        )
        label = self.labels()
        label["class"] = "yes"
        return [
            Case(
                "breaching",
                True,
                [requests, ("modelops_labels_total", label, _gauge(0, steps))],
                eval_minutes,
                interval,
            ),
            Case(
                "healthy",
                False,
                [requests, ("modelops_labels_total", label, _counter(5, interval, steps))],
                eval_minutes,
                interval,
            ),
        ]

    # --- inputs and predictions ---------------------------------------------------------

    def _drift(self, what: str) -> list[Case]:
        objective = self.o.feature_drift if what == "feature" else self.o.score_drift
        window = _minutes(objective.window)
        eval_minutes = window + 30
        steps = eval_minutes + 1
        enough, few = 3 * objective.min_rows / window, 0.3 * objective.min_rows / window

        def series(per_minute: float, shares: tuple[float, float]) -> list[Any]:
            extra = {"feature": "tenure"} if what == "feature" else {}
            counter = (
                "modelops_feature_bin_total" if what == "feature" else ("modelops_score_bin_total")
            )
            reference = (
                "modelops_reference_share"
                if what == "feature"
                else ("modelops_reference_score_share")
            )
            out = []
            for index, share in enumerate(shares):
                bin_labels = self.labels(**extra, bin=f"b{index:02d}")
                out.append((counter, bin_labels, _counter(per_minute * share, 1, steps)))
                out.append((reference, bin_labels, _gauge(0.5, steps)))
            if what == "feature":
                out.append((counter, self.labels(**extra, bin="__missing__"), _gauge(0, steps)))
            return out

        labels = {"feature": "tenure"} if what == "feature" else {}
        return [
            Case("breaching", True, series(enough, (0.95, 0.05)), eval_minutes, labels=labels),
            Case("healthy", False, series(enough, (0.5, 0.5)), eval_minutes),
            Case("below the minimum of rows", False, series(few, (0.95, 0.05)), eval_minutes),
        ]

    def _missing(self) -> list[Case]:
        objective = self.o.missing_values
        reference = 0.01
        bad = min(0.95, reference + objective.max_increase + 0.25)
        return self._rate_cases(
            objective.window,
            objective.min_rows,
            ("b00", "__missing__"),
            bad,
            reference,
            extra=[("modelops_reference_missing_ratio", {"feature": "tenure"}, reference)],
        )

    def _unseen(self) -> list[Case]:
        objective = self.o.unseen_categories
        bad = min(0.95, objective.max_rate + 0.25)
        return self._rate_cases(
            objective.window,
            objective.min_rows,
            ("month-to-month", "__unseen__"),
            bad,
            0.0,
            extra=[],
        )

    def _rate_cases(
        self,
        window_text: str,
        minimum: int,
        bins: tuple[str, str],
        bad: float,
        good: float,
        *,
        extra: list[tuple[str, dict[str, str], float]],
    ) -> list[Case]:
        window = _minutes(window_text)
        eval_minutes = window + 30
        steps = eval_minutes + 1
        enough, few = 3 * minimum / window, 0.3 * minimum / window

        def series(per_minute: float, share: float) -> list[Any]:
            common, counted = bins
            out: list[Any] = [
                (
                    "modelops_feature_bin_total",
                    self.labels(feature="tenure", bin=common),
                    _counter(per_minute * (1 - share), 1, steps),
                ),
                (
                    "modelops_feature_bin_total",
                    self.labels(feature="tenure", bin=counted),
                    _counter(per_minute * share, 1, steps),
                ),
            ]
            if counted == "__unseen__":
                out.append(
                    (
                        "modelops_feature_bin_total",
                        self.labels(feature="tenure", bin="__missing__"),
                        _gauge(0, steps),
                    )
                )
            out += [
                (name, self.labels(**labels), _gauge(value, steps)) for name, labels, value in extra
            ]
            return out

        return [
            Case(
                "breaching", True, series(enough, bad), eval_minutes, labels={"feature": "tenure"}
            ),
            Case("healthy", False, series(enough, good), eval_minutes),
            Case("below the minimum of rows", False, series(few, bad), eval_minutes),
        ]

    # --- quality from feedback -----------------------------------------------------------

    def _cells(
        self, per_hour: float, shares: dict[str, float], interval: int, steps: int
    ) -> list[Any]:
        return [
            (
                "modelops_feedback_rows_total",
                self.labels(cell=cell),
                _counter(per_hour * share / 60, interval, steps),
            )
            for cell, share in shares.items()
        ]

    def _quality(self, metric: str) -> list[Case]:
        objective = getattr(self.o, metric)
        window = _minutes(objective.window)
        interval = min(4, max(1, window // 168))  # within the 5m lookback: gauges stay visible
        eval_minutes = window + 3 * 60
        steps = eval_minutes // interval + 1
        expected = 0.8
        limit = expected - objective.max_drop
        enough = 3 * objective.min_labels / (window / 60)
        few = 0.3 * objective.min_labels / (window / 60)

        def shares(value: float) -> dict[str, float]:
            # Half the labels are positives (recall) or flagged (precision).
            other = "false_negative" if metric == "recall" else "false_positive"
            rest = "false_positive" if metric == "recall" else "false_negative"
            return {
                "true_positive": 0.5 * value,
                other: 0.5 * (1 - value),
                rest: 0.1,
                "true_negative": 0.4,
            }

        def case(name: str, fires: bool, per_hour: float, value: float) -> Case:
            series = self._cells(per_hour, shares(value), interval, steps)
            series.append(
                ("modelops_reference_metric", self.labels(metric=metric), _gauge(expected, steps))
            )
            return Case(name, fires, series, eval_minutes, interval)

        bad = max(0.0, limit - 0.3)
        return [
            case("breaching", True, enough, bad),
            case("healthy", False, enough, min(1.0, expected + 0.05)),
            case("below the minimum of labels", False, few, bad),
        ]

    def _business(self) -> list[Case]:
        assert self.m.business is not None
        objective = self.o.business_value
        values = self.m.business.server_value()
        worst, best = min(values, key=values.__getitem__), max(values, key=values.__getitem__)
        window = _minutes(objective.window)
        interval = min(4, max(1, window // 168))  # within the 5m lookback: gauges stay visible
        eval_minutes = window + 3 * 60
        steps = eval_minutes // interval + 1
        enough = 3 * objective.min_labels / (window / 60)
        few = 0.3 * objective.min_labels / (window / 60)

        def mix(cell: str) -> dict[str, float]:
            return {c: (0.97 if c == cell else 0.01) for c in values}

        return [
            Case(
                "breaching",
                True,
                self._cells(enough, mix(worst), interval, steps),
                eval_minutes,
                interval,
            ),
            Case(
                "healthy",
                False,
                self._cells(enough, mix(best), interval, steps),
                eval_minutes,
                interval,
            ),
            Case(
                "below the minimum of labels",
                False,
                self._cells(few, mix(worst), interval, steps),
                eval_minutes,
                interval,
            ),
        ]

    # --- freshness and the telemetry itself ---------------------------------------------

    def _stale(self) -> list[Case]:
        old = -(self.o.freshness.max_age_days + 10) * 86_400
        metric = "modelops_model_trained_timestamp_seconds"
        return [
            Case("breaching", True, [(metric, self.labels(), _gauge(old, 30))], 120, 5),
            Case("healthy", False, [(metric, self.labels(), _gauge(0, 30))], 120, 5),
        ]

    def _telemetry(self) -> list[Case]:
        metric = "modelops_telemetry_errors_total"
        return [
            Case("breaching", True, [(metric, self.labels(), _counter(1, 1, 40))], 30),
            Case("healthy", False, [(metric, self.labels(), _gauge(0, 40))], 30),
        ]


def promtool_tests(
    rule_file: str, alert: str, rule_labels: dict[str, str], cases: list[Case]
) -> dict[str, Any]:
    """The `promtool test rules` document for one alert's cases."""
    tests = []
    for case in cases:
        series = [
            {"series": _series(metric, labels), "values": values}
            for metric, labels, values in case.series
        ]
        if case.fires:
            keep = {"alertname": alert, **rule_labels, **case.labels}
            by = ", ".join(sorted({"alertname", *rule_labels, *case.labels}))
            expr = f'count by ({by}) (ALERTS{{alertname="{alert}", alertstate="firing"}})'
            expected = [{"labels": _series("", keep), "value": 1}]
        else:
            state = ', alertstate="firing"' if case.pending_ok else ""
            expr = f'ALERTS{{alertname="{alert}"{state}}}'
            expected = []
        tests.append(
            {
                "name": f"{alert}: {case.name}",
                "interval": f"{case.interval_minutes}m",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": expr, "eval_time": f"{case.eval_minutes}m", "exp_samples": expected}
                ],
            }
        )
    interval = min(case.interval_minutes for case in cases)
    return {"rule_files": [rule_file], "evaluation_interval": f"{interval}m", "tests": tests}


def _series(metric: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return f"{metric}{{{inner}}}"

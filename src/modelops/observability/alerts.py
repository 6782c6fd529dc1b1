"""The alerts: SLO burn rates, missing data, drift, rates and quality, each linking its runbook.

Pure functions of `monitoring` params and a `Target`. The alerts read the recording rules of
`recording.py` by the contract's names (`modelops_contract.records`) and the server's series by
its declarations; every alert carries a severity (page or ticket), a category and the runbook
section named after it. The statistics are said once, in `rules.py`'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from modelops_contract import (
    LABELS,
    OK,
    PREDICT,
    REFERENCE_METRIC,
    REFERENCE_MISSING,
    REQUESTS,
    TELEMETRY_ERRORS,
    records,
)

from modelops.observability.recording import BY, Target, scaled
from modelops.params import MonitoringParams

Z = 3.09
"""Normal quantile of a one-sided 99.9 % bound."""
PAGE, TICKET = "page", "ticket"
SERVICE, NODATA, ML = "service", "nodata", "ml"


AlertingRule = TypedDict(
    "AlertingRule",
    {
        "alert": str,
        "expr": str,
        "for": str,
        "labels": dict[str, str],
        "annotations": dict[str, str],
    },
)
"""An alerting rule as a Prometheus rules file holds it (`for` is a keyword: the call syntax)."""


@dataclass(frozen=True)
class BurnRate:
    """One branch of a multiwindow burn-rate alert."""

    factor: float
    long: str
    short: str


BURN_RATES = {
    PAGE: (BurnRate(14.4, "1h", "5m"), BurnRate(6.0, "6h", "30m")),
    TICKET: (BurnRate(3.0, "1d", "2h"), BurnRate(1.0, "3d", "6h")),
}
FOR = {PAGE: "2m", TICKET: "15m"}
FOR_LEAST_SECONDS = 10
"""The shortest `for` in compressed time (a rehearsal scrapes every second)."""


def wilson(p: str, n: str, *, upper: bool) -> str:
    """PromQL of the Wilson score bound of a share `p` out of `n` (both expressions)."""
    z2 = Z * Z
    sign = "+" if upper else "-"
    return (
        f"(({p}) + {z2 / 2:.4f} / ({n}) {sign} {Z} * sqrt(({p}) * (1 - ({p})) / ({n}) "
        f"+ {z2 / 4:.4f} / (({n}) * ({n})))) / (1 + {z2:.4f} / ({n}))"
    )


class Alerts:
    """The alerts of one target, in the order the rule group lists them."""

    def __init__(self, monitoring: MonitoringParams, target: Target) -> None:
        self.m = monitoring
        self.o = monitoring.objectives
        self.t = target
        self.ns = f'namespace="{target.namespace}"'

    def w(self, duration: str) -> str:
        return scaled(duration, self.t.time_scale)

    def alerts(self) -> list[AlertingRule]:
        return [
            *self._burn("availability", "Availability", self.o.availability.target),
            *self._burn("latency", "Latency", self.o.latency.target),
            *self._nodata(),
            *self._drift(),
            *self._rates(),
            *self._quality(),
            self._alert(
                "ModelopsModelStale",
                TICKET,
                ML,
                f"{records.MODEL_AGE}{{{self.ns}}} > {self.o.freshness.max_age_days:g}",
                "1h",
                "The model {{ $labels.model_version }} in {{ $labels.namespace }} is "
                '{{ $value | printf "%.0f" }} days old',
                'It finished training {{ $value | printf "%.1f" }} days ago, more than '
                f"monitoring.objectives.freshness.max_age_days ({self.o.freshness.max_age_days:g})"
                ". Retrain on recent data.",
            ),
            self._alert(
                "ModelopsTelemetryErrors",
                TICKET,
                SERVICE,
                f"sum by (namespace, track) (increase({TELEMETRY_ERRORS.total}"
                f"{{{self.ns}}}[{self.w('15m')}])) > 0",
                "5m",
                "The {{ $labels.track }} server in {{ $labels.namespace }} fails to record "
                "telemetry",
                '{{ $value | printf "%.0f" }} recording errors in 15 minutes: requests are '
                "answered, but the series that alerts and dashboards read are incomplete.",
            ),
        ]

    def _burn(self, slo: str, title: str, target: float) -> list[AlertingRule]:
        budget = 1 - target
        objective = getattr(self.o, slo)
        error, events = records.SLI_ERROR, records.SLI_EVENTS
        alerts = []
        for severity, speed in ((PAGE, "Fast"), (TICKET, "Slow")):
            branches = []
            for rate in BURN_RATES[severity]:
                limit = f"{rate.factor * budget:.6g}"
                sel = f'{{slo="{slo}", {self.ns}}}'
                branches.append(
                    f"({error.at(rate.long)}{sel} > {limit}"
                    f" and on (namespace) {error.at(rate.short)}{sel} > {limit}"
                    f" and on (namespace) {events.at(rate.long)}{sel}"
                    f" >= {objective.min_requests})"
                )
            windows = " or ".join(
                f"{r.factor:g}x over {r.long} and {r.short}" for r in BURN_RATES[severity]
            )
            what = (
                "server errors"
                if slo == "availability"
                else (f"requests slower than {objective.threshold_seconds:g} s")
            )
            alerts.append(
                self._alert(
                    f"Modelops{title}{speed}Burn",
                    severity,
                    SERVICE,
                    " or ".join(branches),
                    FOR[severity],
                    f"{title} error budget of {{{{ $labels.namespace }}}} burns "
                    f"{'fast' if severity == PAGE else 'slowly'}",
                    f"{{{{ $value | humanizePercentage }}}} of predict requests are {what} "
                    f"(burn rate above {windows}; the objective allows "
                    f"{budget:.4%} over {objective.window}, "
                    f"at least {objective.min_requests} requests per window).",
                    {"slo": slo},
                )
            )
        return alerts

    def _nodata(self) -> list[AlertingRule]:
        ns, requests = self.ns, REQUESTS.total
        up = f'up{{{ns}, track=~".+"}}'
        alerts = [
            self._alert(
                "ModelopsTargetDown",
                PAGE,
                NODATA,
                f"sum by (namespace, track) ({up}) == 0 or absent({up})",
                "5m",
                "No {{ $labels.track }} model server of {{ $labels.namespace }} can be scraped",
                "Prometheus has scraped none of the targets (value {{ $value }}) for 5 minutes: "
                "the pods are down, or they no longer match the PodMonitor.",
            ),
            self._alert(
                "ModelopsNoTraffic",
                TICKET,
                NODATA,
                f"sum by (namespace) (increase({requests}{{{ns}, "
                f'endpoint="{PREDICT}"}}[{self.w(self.m.alerts.no_traffic_for)}])) == 0',
                "5m",
                "No predict request reached {{ $labels.namespace }} for "
                f"{self.m.alerts.no_traffic_for}",
                "The servers are up but answered {{ $value }} predictions in "
                f"{self.m.alerts.no_traffic_for} (monitoring.alerts.no_traffic_for): the "
                "clients or the ingress stopped sending.",
            ),
        ]
        if self.m.labels.expected:
            delay = self.w(self.m.labels.delay)
            alerts.append(
                self._alert(
                    "ModelopsNoFeedback",
                    TICKET,
                    NODATA,
                    f"sum by (namespace) (increase({LABELS.total}{{{ns}}}[{delay}])) == 0"
                    f" and on (namespace) sum by (namespace) (increase({requests}"
                    f'{{{ns}, endpoint="{PREDICT}", outcome="{OK}"}}[{delay}] offset {delay}))'
                    " > 0",
                    "30m",
                    "No ground truth reached {{ $labels.namespace }} for "
                    f"{self.m.labels.delay}",
                    "{{ $value }} labels arrived over the last label delay "
                    f"({self.m.labels.delay}, monitoring.labels.delay), though predictions were "
                    "made before it: quality and business value cannot be measured.",
                ),
            )
        return alerts

    def _drift(self) -> list[AlertingRule]:
        alerts = []
        for name, names, objective, by in (
            ("ModelopsFeatureDrift", records.FEATURE_DRIFT, self.o.feature_drift, f"{BY}, feature"),
            ("ModelopsScoreDrift", records.SCORE_DRIFT, self.o.score_drift, BY),
        ):
            window = objective.window
            subject = "{{ $labels.feature }}" if names is records.FEATURE_DRIFT else "The score"
            alerts.append(
                self._alert(
                    name,
                    TICKET,
                    ML,
                    f"{names.psi.at(window)}{{{self.ns}}} > {objective.max_psi:g}"
                    f" and on ({by}) {names.rows.at(window)}{{{self.ns}}}"
                    f" >= {objective.min_rows}",
                    "15m",
                    f"{subject} drifted on {{{{ $labels.track }}}} in {{{{ $labels.namespace }}}}",
                    f'PSI {{{{ $value | printf "%.3f" }}}} over {window} against the training '
                    f"profile of model {{{{ $labels.model_version }}}} (limit {objective.max_psi:g}"
                    f", judged on at least {objective.min_rows} rows).",
                )
            )
        return alerts

    def _rates(self) -> list[AlertingRule]:
        missing, unseen = self.o.missing_values, self.o.unseen_categories
        on = f"on ({BY}, feature)"
        share = f"{records.FEATURE_MISSING.at(missing.window)}{{{self.ns}}}"
        rows = f"{records.FEATURE_ALL_ROWS.at(missing.window)}{{{self.ns}}}"
        reference = (
            f"max by ({BY}, feature) ({REFERENCE_MISSING.name}{{{self.ns}}}) "
            f"+ {missing.max_increase:g}"
        )
        unseen_share = f"{records.FEATURE_UNSEEN.at(unseen.window)}{{{self.ns}}}"
        unseen_rows = f"{records.FEATURE_ALL_ROWS.at(unseen.window)}{{{self.ns}}}"
        return [
            self._alert(
                "ModelopsMissingValues",
                TICKET,
                ML,
                f"{wilson(share, rows, upper=False)} > {on} ({reference})"
                f" and {on} {rows} >= {missing.min_rows}",
                "15m",
                "{{ $labels.feature }} is missing more often on {{ $labels.track }} in "
                "{{ $labels.namespace }}",
                "At least {{ $value | humanizePercentage }} of rows lack it over "
                f"{missing.window} (99.9% lower bound), more than the training share plus "
                f"{missing.max_increase:g}; judged on at least {missing.min_rows} rows.",
            ),
            self._alert(
                "ModelopsUnseenCategories",
                TICKET,
                ML,
                f"{wilson(unseen_share, unseen_rows, upper=False)} > {unseen.max_rate:g}"
                f" and {on} {unseen_rows} >= {unseen.min_rows}",
                "15m",
                "{{ $labels.feature }} gets categories never seen in training on "
                "{{ $labels.track }} in {{ $labels.namespace }}",
                "At least {{ $value | humanizePercentage }} of its values over "
                f"{unseen.window} are unseen (99.9% lower bound; limit {unseen.max_rate:g}, "
                f"judged on at least {unseen.min_rows} rows).",
            ),
        ]

    def _quality(self) -> list[AlertingRule]:
        if not self.m.labels.expected:
            return []
        alerts = []
        for name, metric, objective in (
            ("ModelopsRecallLow", "recall", self.o.recall),
            ("ModelopsPrecisionLow", "precision", self.o.precision),
        ):
            window, ns = objective.window, self.ns
            names = records.QUALITY[metric]
            share = f"{names.ratio.at(window)}{{{ns}}}"
            n = f"{names.rows.at(window)}{{{ns}}}"
            expected = (
                f'max by ({BY}) ({REFERENCE_METRIC.name}{{{ns}, metric="{metric}"}}) '
                f"- {objective.max_drop:g}"
            )
            alerts.append(
                self._alert(
                    name,
                    TICKET,
                    ML,
                    f"{wilson(share, n, upper=True)} < on ({BY}) ({expected})"
                    f" and on ({BY}) {records.LABELS.at(window)}{{{ns}}}"
                    f" >= {objective.min_labels}",
                    "1h",
                    f"Realized {metric} of model {{{{ $labels.model_version }}}} fell on "
                    "{{ $labels.track }} in {{ $labels.namespace }}",
                    f"At most {{{{ $value | humanizePercentage }}}} {metric} over {window} of "
                    "feedback (99.9% upper bound), below the test set's value minus "
                    f"{objective.max_drop:g}; judged on at least {objective.min_labels} labels.",
                )
            )
        business = self.o.business_value
        if self.m.business is not None:
            window, ns = business.window, self.ns
            mean = f"{records.BUSINESS_VALUE_PER_LABEL.at(window)}{{{ns}}}"
            variance = f"{records.BUSINESS_VALUE_PER_LABEL_VARIANCE.at(window)}{{{ns}}}"
            n = f"{records.LABELS.at(window)}{{{ns}}}"
            upper = f"{mean} + on ({BY}) {Z} * sqrt({variance} / on ({BY}) {n})"
            alerts.append(
                self._alert(
                    "ModelopsBusinessValueLow",
                    TICKET,
                    ML,
                    f"({upper}) < {business.min_per_label:g}"
                    f" and on ({BY}) {n} >= {business.min_labels}",
                    "1h",
                    "Model {{ $labels.model_version }} earns too little per prediction on "
                    "{{ $labels.track }} in {{ $labels.namespace }}",
                    'At most {{ $value | printf "%.2f" }} per labelled prediction over '
                    f"{window} (99.9% upper bound, values of monitoring.business), below "
                    f"{business.min_per_label:g}; judged on at least {business.min_labels} labels.",
                )
            )
        return alerts

    def _alert(
        self,
        name: str,
        severity: str,
        category: str,
        expr: str,
        duration: str,
        summary: str,
        description: str,
        labels: dict[str, str] | None = None,
    ) -> AlertingRule:
        return {
            "alert": name,
            "expr": expr,
            # Compressed, a `for` still spans several scrapes: one slow scrape is not an alert.
            "for": scaled(duration, self.t.time_scale, least=FOR_LEAST_SECONDS),
            "labels": {
                "severity": severity,
                "category": category,
                "environment": self.t.environment,
                **(labels or {}),
            },
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": f"{self.t.runbook}#{name.lower()}",
            },
        }

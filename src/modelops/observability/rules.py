"""Prometheus rules from `monitoring.objectives`: recording rules for every SLI, and the alerts.

Pure functions: params and an environment in, rule groups (plain dicts) out. The same groups
become a PrometheusRule in `manifests/rendered/<env>/` and a plain rules file for any
Prometheus (`manifests/prometheus/<env>.rules.yaml`); `make up` loads them with every window
divided by a time scale, so a rehearsal fires in minutes what production fires in hours.

The statistics, said once (runbooks/slo.md explains them):
- SLOs: multiwindow, multi-burn-rate alerts (page 14.4x over 1h and 5m or 6x over 6h and 30m;
  ticket 3x over 1d and 2h or 1x over 3d and 6h), each branch guarded by a minimum of requests
  in its long window.
- Drift: PSI of the window's rows against the profile's shares, bins clamped at 1e-4, judged
  only with at least `min_rows` rows.
- Rates (missing, unseen, recall, precision): the Wilson score interval at z = 3.09 (99.9 %,
  one-sided); an alert fires when the whole interval is beyond the limit.
- Business value per label: mean and variance from the confusion cells and the values of
  `monitoring.business`; fires when the upper bound (z = 3.09) is below the minimum.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from modelops.errors import ModelopsError
from modelops.params import DeployParams, MonitoringParams, duration_seconds

Z = 3.09
"""Normal quantile of a one-sided 99.9 % bound."""
CLAMP = 1e-4
"""The least share a PSI term uses, so an empty bin is a large term, not an infinite one."""
BY = "namespace, track, model_version"
"""What every ML series is kept by: a canary is judged apart from stable."""
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
PAGE, TICKET = "page", "ticket"
SERVICE, NODATA, ML = "service", "nodata", "ml"


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


@dataclass(frozen=True)
class Target:
    """Where the rules apply: one environment's namespace, and where its runbook lives."""

    environment: str
    namespace: str
    runbook: str
    """URL of runbooks/alerts.md; an alert links `<runbook>#<alert name, lowercased>`."""
    time_scale: float = 1.0
    """Windows and `for` durations are divided by this (the rehearsal's compressed time)."""


def runbook_base(monitoring: MonitoringParams, *, repo_url: str, revision: str) -> str:
    """The URL of runbooks/alerts.md: `monitoring.alerts.runbook_url`, else the repository's.

    Raises:
        ModelopsError: the repository URL is not one a browser can open and no URL is set.
    """
    if monitoring.alerts.runbook_url:
        return monitoring.alerts.runbook_url.rstrip("/")
    url = repo_url.removesuffix("/").removesuffix(".git")
    ssh = re.fullmatch(r"(?:ssh://)?git@([^:/]+)[:/](.+)", url)
    if ssh:
        url = f"https://{ssh.group(1)}/{ssh.group(2)}"
    if not re.match(r"https?://", url):
        raise ModelopsError(
            f"deploy.repo_url {repo_url!r} is not a web address, so the alerts cannot link "
            "their runbooks: set monitoring.alerts.runbook_url to the URL of runbooks/alerts.md"
        )
    return f"{url}/blob/{revision}/runbooks/alerts.md"


def environment_groups(
    deploy: DeployParams, monitoring: MonitoringParams, environment: str, *, time_scale: float = 1.0
) -> list[dict[str, Any]]:
    """The rule groups of one environment of `deploy`, linking the repository's runbook."""
    namespace = deploy.environments[environment].namespace
    runbook = runbook_base(monitoring, repo_url=deploy.repo_url, revision=deploy.revision)
    return rule_groups(monitoring, Target(environment, namespace, runbook, time_scale))


def rule_groups(monitoring: MonitoringParams, target: Target) -> list[dict[str, Any]]:
    """Every rule group for `target`: recording rules first, then the alerts that read them."""
    rules = _Rules(monitoring, target)
    return [
        {"name": f"modelops-{target.environment}-slo", "rules": rules.slo_records()},
        {"name": f"modelops-{target.environment}-ml", "rules": rules.ml_records()},
        {"name": f"modelops-{target.environment}-service", "rules": rules.service_records()},
        {"name": f"modelops-{target.environment}-alerts", "rules": rules.alerts()},
    ]


def prometheus_rule(
    groups: Sequence[dict[str, Any]], *, name: str, namespace: str
) -> dict[str, Any]:
    """The Prometheus Operator's PrometheusRule holding `groups`."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "modelops"},
        },
        "spec": {"groups": list(groups)},
    }


def to_yaml(document: dict[str, Any], *, header: str) -> str:
    """Deterministic YAML (one line per expression), after a comment saying where it comes from."""
    body = yaml.safe_dump(document, sort_keys=False, width=1_000_000, allow_unicode=True)
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


def alert_names(groups: Sequence[dict[str, Any]]) -> list[str]:
    """The alerts of rule groups, in order."""
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def scaled(duration: str, scale: float, *, least: int = 1) -> str:
    """`duration` divided by `scale`, in whole seconds (at least `least`)."""
    if scale == 1.0:
        return duration
    return f"{max(round(duration_seconds(duration) / scale), least)}s"


def wilson(p: str, n: str, *, upper: bool) -> str:
    """PromQL of the Wilson score bound of a share `p` out of `n` (both expressions)."""
    z2 = Z * Z
    sign = "+" if upper else "-"
    return (
        f"(({p}) + {z2 / 2:.4f} / ({n}) {sign} {Z} * sqrt(({p}) * (1 - ({p})) / ({n}) "
        f"+ {z2 / 4:.4f} / (({n}) * ({n})))) / (1 + {z2:.4f} / ({n}))"
    )


class _Rules:
    def __init__(self, monitoring: MonitoringParams, target: Target) -> None:
        self.m = monitoring
        self.o = monitoring.objectives
        self.t = target
        self.ns = f'namespace="{target.namespace}"'

    def w(self, duration: str) -> str:
        return scaled(duration, self.t.time_scale)

    # --- recording rules ------------------------------------------------------------------

    def slo_records(self) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        # A shadow answers mirrored copies no user sees: its errors spend no user's budget.
        predict = f'{self.ns}, track!="shadow", endpoint="predict"'
        bound = repr(float(self.o.latency.threshold_seconds))
        for slo, objective in (("availability", self.o.availability), ("latency", self.o.latency)):
            windows = list(dict.fromkeys([*SLO_WINDOWS, objective.window]))
            for window in windows:
                w = self.w(window)
                total = f"sum by (namespace) (rate(modelops_requests_total{{{predict}}}[{w}]))"
                if slo == "availability":
                    bad = (
                        f"(sum by (namespace) (rate(modelops_requests_total{{{predict}, "
                        f'outcome="server_error"}}[{w}])) or 0 * {total})'
                    )
                    ratio = f"{bad} / {total}"
                else:
                    count = (
                        f"sum by (namespace) (rate(modelops_request_duration_seconds_count"
                        f"{{{predict}}}[{w}]))"
                    )
                    fast = (
                        f"sum by (namespace) (rate(modelops_request_duration_seconds_bucket"
                        f'{{{predict}, le="{bound}"}}[{w}]))'
                    )
                    ratio = f"({count} - {fast}) / {count}"
                labels = {"slo": slo}
                rules.append(_record(f"modelops:sli_error:ratio_rate{window}", ratio, labels))
                events = f"sum by (namespace) (increase(modelops_requests_total{{{predict}}}[{w}]))"
                rules.append(_record(f"modelops:sli_events:increase{window}", events, labels))
            budget = 1 - objective.target
            rules.append(
                _record(
                    "modelops:slo_error_budget_remaining:ratio",
                    f'1 - modelops:sli_error:ratio_rate{objective.window}{{slo="{slo}", '
                    f"{self.ns}}} / {budget:g}",
                    {"slo": slo},
                )
            )
        return rules

    def ml_records(self) -> list[dict[str, Any]]:
        o, ns = self.o, self.ns
        rules: list[dict[str, Any]] = []
        drift, score = o.feature_drift.window, o.score_drift.window
        rules += self._psi(
            "feature",
            "modelops_feature_bin_total",
            "modelops_reference_share",
            drift,
            by=f"{BY}, feature",
            exclude='bin!="__missing__"',
        )
        rules += self._psi(
            "score",
            "modelops_score_bin_total",
            "modelops_reference_score_share",
            score,
            by=BY,
            exclude="",
        )
        for window in dict.fromkeys([o.missing_values.window, o.unseen_categories.window]):
            w = self.w(window)
            bins = f"increase(modelops_feature_bin_total{{{ns}}}[{w}])"
            rules.append(
                _record(
                    f"modelops:feature_all_rows:increase{window}",
                    f"sum by ({BY}, feature) ({bins})",
                )
            )
            missing = (
                f"sum by ({BY}, feature) (increase(modelops_feature_bin_total{{{ns}, "
                f'bin="__missing__"}}[{w}]))'
            )
            rules.append(
                _record(
                    f"modelops:feature_missing:ratio_{window}",
                    f"{missing} / modelops:feature_all_rows:increase{window}",
                )
            )
            unseen = (
                f"sum by ({BY}, feature) (increase(modelops_feature_bin_total{{{ns}, "
                f'bin="__unseen__"}}[{w}]))'
            )
            present = (
                f"sum by ({BY}, feature) (increase(modelops_feature_bin_total{{{ns}, "
                f'bin!="__missing__"}}[{w}]))'
            )
            rules.append(
                _record(
                    f"modelops:feature_unseen:ratio_{window}",
                    f"{unseen} / on ({BY}, feature) {present}",
                )
            )
        w = self.w(drift)
        positive = (
            f'sum by ({BY}) (increase(modelops_predictions_total{{{ns}, positive="true"}}[{w}]))'
        )
        predicted = f"sum by ({BY}) (increase(modelops_predictions_total{{{ns}}}[{w}]))"
        rules.append(_record(f"modelops:positive_rate:ratio_{drift}", f"{positive} / {predicted}"))
        quality = dict.fromkeys([o.recall.window, o.precision.window, o.business_value.window])
        for window in quality:
            cells = f"modelops:feedback_cells:increase{window}"
            rules.append(
                _record(
                    cells,
                    f"sum by ({BY}, cell) (increase("
                    f"modelops_feedback_rows_total{{{ns}}}[{self.w(window)}]))",
                )
            )
            tp = f'sum by ({BY}) ({cells}{{cell="true_positive"}})'
            positives = f'sum by ({BY}) ({cells}{{cell=~"true_positive|false_negative"}})'
            flagged = f'sum by ({BY}) ({cells}{{cell=~"true_positive|false_positive"}})'
            rules += [
                _record(f"modelops:labels:increase{window}", f"sum by ({BY}) ({cells})"),
                _record(f"modelops:recall_rows:increase{window}", positives),
                _record(f"modelops:recall:ratio_{window}", f"{tp} / {positives}"),
                _record(f"modelops:precision_rows:increase{window}", flagged),
                _record(f"modelops:precision:ratio_{window}", f"{tp} / {flagged}"),
            ]
            if self.m.business is not None:
                rules += self._business(window, cells)
        rules.append(
            _record(
                "modelops:model_age:days",
                f"(time() - max by ({BY}) "
                f"(modelops_model_trained_timestamp_seconds{{{ns}}})) / 86400",
            )
        )
        return rules

    def _psi(
        self, what: str, counter: str, reference: str, window: str, *, by: str, exclude: str
    ) -> list[dict[str, Any]]:
        w = self.w(window)
        selector = ", ".join(part for part in (self.ns, exclude) if part)
        rows_bin = f"modelops:{what}_bin_rows:increase{window}"
        rows = f"modelops:{what}_rows:increase{window}"
        share = f"modelops:{what}_bin_share:{window}"
        expected = f"clamp_min(max by ({by}, bin) ({reference}{{{self.ns}}}), {CLAMP})"
        on = f"on ({by}, bin)"
        psi = f"sum by ({by}) (({share} - {on} {expected}) * {on} ln({share} / {on} {expected}))"
        return [
            _record(rows_bin, f"sum by ({by}, bin) (increase({counter}{{{selector}}}[{w}]))"),
            _record(rows, f"sum by ({by}) ({rows_bin})"),
            _record(share, f"clamp_min({rows_bin} / ignoring (bin) group_left {rows}, {CLAMP})"),
            _record(f"modelops:{what}_psi:{window}", psi),
        ]

    def _business(self, window: str, cells: str) -> list[dict[str, Any]]:
        assert self.m.business is not None
        values = self.m.business.server_value()
        n = f"modelops:labels:increase{window}"
        count = {cell: f'sum by ({BY}) ({cells}{{cell="{cell}"}})' for cell in values}
        mean = " + ".join(f"{value:g} * {count[cell]}" for cell, value in values.items() if value)
        square = " + ".join(
            f"{value * value:g} * {count[cell]}" for cell, value in values.items() if value
        )
        mean_rule = f"modelops:business_value_per_label:{window}"
        return [
            _record(mean_rule, f"({mean}) / {n}"),
            _record(
                f"modelops:business_value_per_label_variance:{window}",
                f"clamp_min(({square}) / {n} - {mean_rule} ^ 2, 0)",
            ),
        ]

    def service_records(self) -> list[dict[str, Any]]:
        ns = self.ns
        rules = [
            _record(
                "modelops:requests:rate5m",
                f"sum by (namespace, track, endpoint, outcome) "
                f"(rate(modelops_requests_total{{{ns}}}[{self.w('5m')}]))",
            )
        ]
        buckets = (
            f"sum by (namespace, track, le) (rate(modelops_request_duration_seconds_bucket"
            f'{{{ns}, endpoint="predict"}}[{self.w("5m")}]))'
        )
        for quantile in ("50", "95", "99"):
            rules.append(
                _record(
                    f"modelops:request_duration_seconds:p{quantile}_5m",
                    f"histogram_quantile(0.{quantile}, {buckets})",
                )
            )
        return rules

    # --- alerts ---------------------------------------------------------------------------

    def alerts(self) -> list[dict[str, Any]]:
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
                f"modelops:model_age:days{{{self.ns}}} > {self.o.freshness.max_age_days:g}",
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
                f"sum by (namespace, track) (increase(modelops_telemetry_errors_total"
                f"{{{self.ns}}}[{self.w('15m')}])) > 0",
                "5m",
                "The {{ $labels.track }} server in {{ $labels.namespace }} fails to record "
                "telemetry",
                '{{ $value | printf "%.0f" }} recording errors in 15 minutes: requests are '
                "answered, but the series that alerts and dashboards read are incomplete.",
            ),
        ]

    def _burn(self, slo: str, title: str, target: float) -> list[dict[str, Any]]:
        budget = 1 - target
        objective = getattr(self.o, slo)
        alerts = []
        for severity, speed in ((PAGE, "Fast"), (TICKET, "Slow")):
            branches = []
            for rate in BURN_RATES[severity]:
                limit = f"{rate.factor * budget:.6g}"
                sel = f'{{slo="{slo}", {self.ns}}}'
                branches.append(
                    f"(modelops:sli_error:ratio_rate{rate.long}{sel} > {limit}"
                    f" and on (namespace) modelops:sli_error:ratio_rate{rate.short}{sel} > {limit}"
                    f" and on (namespace) modelops:sli_events:increase{rate.long}{sel}"
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

    def _nodata(self) -> list[dict[str, Any]]:
        ns = self.ns
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
                f"sum by (namespace) (increase(modelops_requests_total{{{ns}, "
                f'endpoint="predict"}}[{self.w(self.m.alerts.no_traffic_for)}])) == 0',
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
                    f"sum by (namespace) (increase(modelops_labels_total{{{ns}}}[{delay}])) == 0"
                    f" and on (namespace) sum by (namespace) (increase(modelops_requests_total"
                    f'{{{ns}, endpoint="predict", outcome="ok"}}[{delay}] offset {delay})) > 0',
                    "30m",
                    "No ground truth reached {{ $labels.namespace }} for "
                    f"{self.m.labels.delay}",
                    "{{ $value }} labels arrived over the last label delay "
                    f"({self.m.labels.delay}, monitoring.labels.delay), though predictions were "
                    "made before it: quality and business value cannot be measured.",
                ),
            )
        return alerts

    def _drift(self) -> list[dict[str, Any]]:
        alerts = []
        for name, what, objective, by in (
            ("ModelopsFeatureDrift", "feature", self.o.feature_drift, f"{BY}, feature"),
            ("ModelopsScoreDrift", "score", self.o.score_drift, BY),
        ):
            window = objective.window
            subject = "{{ $labels.feature }}" if what == "feature" else "The score"
            alerts.append(
                self._alert(
                    name,
                    TICKET,
                    ML,
                    f"modelops:{what}_psi:{window}{{{self.ns}}} > {objective.max_psi:g}"
                    f" and on ({by}) modelops:{what}_rows:increase{window}{{{self.ns}}}"
                    f" >= {objective.min_rows}",
                    "15m",
                    f"{subject} drifted on {{{{ $labels.track }}}} in {{{{ $labels.namespace }}}}",
                    f'PSI {{{{ $value | printf "%.3f" }}}} over {window} against the training '
                    f"profile of model {{{{ $labels.model_version }}}} (limit {objective.max_psi:g}"
                    f", judged on at least {objective.min_rows} rows).",
                )
            )
        return alerts

    def _rates(self) -> list[dict[str, Any]]:
        missing, unseen = self.o.missing_values, self.o.unseen_categories
        on = f"on ({BY}, feature)"
        share = f"modelops:feature_missing:ratio_{missing.window}{{{self.ns}}}"
        rows = f"modelops:feature_all_rows:increase{missing.window}{{{self.ns}}}"
        reference = (
            f"max by ({BY}, feature) (modelops_reference_missing_ratio{{{self.ns}}}) "
            f"+ {missing.max_increase:g}"
        )
        unseen_share = f"modelops:feature_unseen:ratio_{unseen.window}{{{self.ns}}}"
        unseen_rows = f"modelops:feature_all_rows:increase{unseen.window}{{{self.ns}}}"
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

    def _quality(self) -> list[dict[str, Any]]:
        if not self.m.labels.expected:
            return []
        alerts = []
        for name, metric, objective in (
            ("ModelopsRecallLow", "recall", self.o.recall),
            ("ModelopsPrecisionLow", "precision", self.o.precision),
        ):
            window, ns = objective.window, self.ns
            share = f"modelops:{metric}:ratio_{window}{{{ns}}}"
            n = f"modelops:{metric}_rows:increase{window}{{{ns}}}"
            expected = (
                f'max by ({BY}) (modelops_reference_metric{{{ns}, metric="{metric}"}}) '
                f"- {objective.max_drop:g}"
            )
            alerts.append(
                self._alert(
                    name,
                    TICKET,
                    ML,
                    f"{wilson(share, n, upper=True)} < on ({BY}) ({expected})"
                    f" and on ({BY}) modelops:labels:increase{window}{{{ns}}}"
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
            mean = f"modelops:business_value_per_label:{window}{{{ns}}}"
            variance = f"modelops:business_value_per_label_variance:{window}{{{ns}}}"
            n = f"modelops:labels:increase{window}{{{ns}}}"
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
    ) -> dict[str, Any]:
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


def _record(name: str, expr: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"record": name, "expr": expr}
    if labels:
        rule["labels"] = labels
    return rule

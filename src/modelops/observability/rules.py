"""Prometheus rules from `monitoring.objectives`: recording rules for every SLI, and the alerts.

Pure functions: params and an environment in, rule groups (plain dicts) out: the recording
rules of `recording.py` first, then the alerts of `alerts.py` that read them. The same groups
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
- Batch environments (`batch.py`): the same PSI on the last successful run's pushed counts;
  a failed run, and a run missed for longer than the schedule allows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TypedDict

import yaml

from modelops import yamltext
from modelops.errors import ModelopsError
from modelops.observability.alerts import AlertingRule, Alerts, wilson
from modelops.observability.batch import BatchAlerts, BatchTarget, batch_records
from modelops.observability.recording import RecordingRule, Records, Target, scaled
from modelops.params import (
    BatchEnvironmentParams,
    DeployParams,
    MonitoringParams,
    batch_name,
    missed_after_seconds,
    served_by_pods,
)

__all__ = [
    "AlertingRule",
    "BatchTarget",
    "RecordingRule",
    "RuleGroup",
    "Target",
    "alert_names",
    "batch_rule_groups",
    "environment_groups",
    "prometheus_rule",
    "rule_groups",
    "runbook_base",
    "scaled",
    "to_yaml",
    "wilson",
]


class RuleGroup(TypedDict):
    """A rule group as a Prometheus rules file (and a PrometheusRule's spec) holds it."""

    name: str
    rules: Sequence[RecordingRule | AlertingRule]


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
) -> list[RuleGroup]:
    """The rule groups of one environment of `deploy`, linking the repository's runbook (none
    for a batch environment whose runs push nowhere: `monitoring.pushgateway_url` is null)."""
    settings = served_by_pods(
        deploy.environments[environment], name=environment, what="its alerting rules"
    )
    runbook = runbook_base(monitoring, repo_url=deploy.repo_url, revision=deploy.revision)
    target = Target(environment, settings.namespace, runbook, time_scale)
    if isinstance(settings, BatchEnvironmentParams):
        if monitoring.pushgateway_url is None:
            return []
        job = batch_name(deploy.name, environment)
        return batch_rule_groups(
            monitoring, BatchTarget(target, job, missed_after_seconds(settings))
        )
    return rule_groups(monitoring, target)


def rule_groups(monitoring: MonitoringParams, target: Target) -> list[RuleGroup]:
    """Every rule group for `target`: recording rules first, then the alerts that read them."""
    records = Records(monitoring, target)
    return [
        {"name": f"modelops-{target.environment}-slo", "rules": records.slo_records()},
        {"name": f"modelops-{target.environment}-ml", "rules": records.ml_records()},
        {"name": f"modelops-{target.environment}-service", "rules": records.service_records()},
        {
            "name": f"modelops-{target.environment}-alerts",
            "rules": Alerts(monitoring, target).alerts(),
        },
    ]


def batch_rule_groups(monitoring: MonitoringParams, target: BatchTarget) -> list[RuleGroup]:
    """A batch environment's groups: its last run's drift, then the alerts on its runs."""
    name = target.target.environment
    return [
        {"name": f"modelops-{name}-batch", "rules": batch_records(target)},
        {"name": f"modelops-{name}-alerts", "rules": BatchAlerts(monitoring, target).alerts()},
    ]


def prometheus_rule(groups: Sequence[RuleGroup], *, name: str, namespace: str) -> dict[str, object]:
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


def to_yaml(document: Mapping[str, object], *, header: str) -> str:
    """Deterministic YAML (one line per expression), after a comment saying where it comes from."""
    body = yaml.dump(
        document, Dumper=yamltext.DUMPER, sort_keys=False, width=1_000_000, allow_unicode=True
    )
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


def alert_names(groups: Sequence[RuleGroup]) -> list[str]:
    """The alerts of rule groups, in order."""
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]

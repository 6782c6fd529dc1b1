"""The rendered rules, checked by the real promtool: syntax, and every alert's behaviour.

`promtool check rules` reads every rendered rules file; each alert is then run by `promtool test
rules` on generated series (tests/monitoring/cases.py): it fires on a breach with its labels,
stays silent on healthy series and below its minimum-event guard. An alert without cases, or
whose runbook_url names no section of runbooks/alerts.md, fails here.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.deploy.render import monitoring_files
from modelops.observability import rules
from modelops.params import BatchEnvironmentParams, MonitoringParams, Params
from tests.monitoring.cases import Builder, promtool_tests
from tests.support import REPO_ROOT, pod_environment, template_params, tool_or_skip

ALERTS_RUNBOOK = REPO_ROOT / "runbooks" / "alerts.md"


def _params(**monitoring: Any) -> Params:
    raw = template_params()
    raw["monitoring"] = {**raw["monitoring"], **monitoring}
    return Params.model_validate(raw)


def _groups(params: Params, environment: str = "production") -> list[dict[str, Any]]:
    files = monitoring_files(params.deploy, params.monitoring, environment)
    loaded: dict[str, Any] = yaml.safe_load(files[f"prometheus/{environment}.rules.yaml"])
    return list(loaded["groups"])


def _alerts(groups: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


PARAMS = {
    "template": _params(),
    "other objectives": _params(
        objectives={
            "availability": {"target": 0.99, "window": "7d", "min_requests": 500},
            "latency": {"target": 0.95, "threshold_seconds": 0.25, "min_requests": 20},
            "feature_drift": {"max_psi": 0.1, "window": "30m", "min_rows": 300},
            "score_drift": {"max_psi": 0.3, "window": "2h", "min_rows": 5000},
            "missing_values": {"max_increase": 0.2, "window": "2h", "min_rows": 200},
            "unseen_categories": {"max_rate": 0.05, "window": "30m", "min_rows": 100},
            "recall": {"max_drop": 0.05, "window": "3d", "min_labels": 100},
            "precision": {"max_drop": 0.2, "window": "2d", "min_labels": 500},
            "business_value": {"min_per_label": 5, "window": "3d", "min_labels": 50},
            "freshness": {"max_age_days": 30},
        },
        labels={"expected": True, "delay": "6h"},
        alerts={"no_traffic_for": "10m", "runbook_url": None},
    ),
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_promtool_accepts_every_rendered_rules_file(name: str, tmp_path: Path) -> None:
    promtool = tool_or_skip("promtool", install="apt-get install prometheus")
    params = PARAMS[name]
    for environment, settings in params.deploy.environments.items():
        if isinstance(settings, BatchEnvironmentParams):
            continue  # rendered without rules: a batch run serves no requests
        files = monitoring_files(params.deploy, params.monitoring, environment)
        plain = tmp_path / f"{environment}.rules.yaml"
        plain.write_text(files[f"prometheus/{environment}.rules.yaml"])
        crd = yaml.safe_load(files[f"rendered/{environment}/prometheusrule.yaml"])
        spec = tmp_path / f"{environment}.spec.yaml"
        spec.write_text(yaml.safe_dump(crd["spec"]))
        for path in (plain, spec):
            done = subprocess.run(
                [promtool, "check", "rules", str(path)], capture_output=True, text=True
            )
            assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("name", "alert"),
    [(label, alert) for label in sorted(PARAMS) for alert in _alerts(_groups(PARAMS[label]))],
)
def test_each_alert_fires_on_a_breach_only(name: str, alert: str, tmp_path: Path) -> None:
    promtool = tool_or_skip("promtool", install="apt-get install prometheus")
    params = PARAMS[name]
    namespace = pod_environment(params, "production").namespace
    built = Builder(params.monitoring, namespace).cases()
    assert alert in built, f"{alert} has no promtool cases in tests/monitoring/cases.py"
    groups = _groups(params)
    rule = _alerts(groups)[alert]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": _needed_by(groups, alert)}, sort_keys=False))
    document = promtool_tests(str(rules_file), alert, rule["labels"], built[alert])
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump(document, sort_keys=False))
    done = subprocess.run(
        [promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{alert}:\n{done.stdout}{done.stderr}"
    kinds = {case.fires for case in built[alert]}
    assert kinds == {True, False}, f"{alert} needs a breaching and a silent case"


def _needed_by(groups: list[dict[str, Any]], alert: str) -> list[dict[str, Any]]:
    """Only the rules `alert` reads (recording rules, transitively): the same results, and
    promtool evaluates a few rules per step instead of all of them."""
    exprs = {r["record"]: r["expr"] for g in groups for r in g["rules"] if "record" in r}
    wanted, todo = set(), [_alerts(groups)[alert]["expr"]]
    while todo:
        for name in re.findall(r"modelops:[a-z0-9_:]+", todo.pop()):
            if name not in wanted and name in exprs:
                wanted.add(name)
                todo.append(exprs[name])
    kept = []
    for group in groups:
        chosen = [r for r in group["rules"] if r.get("record") in wanted or r.get("alert") == alert]
        if chosen:
            kept.append({"name": group["name"], "rules": chosen})
    return kept


def test_every_alert_has_cases_and_no_case_is_for_an_unknown_alert() -> None:
    for params in PARAMS.values():
        namespace = pod_environment(params, "production").namespace
        rendered = set(_alerts(_groups(params)))
        built = set(Builder(params.monitoring, namespace).cases())
        assert rendered <= built, f"alerts without cases: {sorted(rendered - built)}"
        assert built - rendered <= {
            "ModelopsBusinessValueLow",
            "ModelopsNoFeedback",
            "ModelopsRecallLow",
            "ModelopsPrecisionLow",
        }


def test_guarded_alerts_have_a_below_the_minimum_case() -> None:
    params = PARAMS["template"]
    namespace = pod_environment(params, "production").namespace
    for alert, rule in _alerts(_groups(params)).items():
        guarded = re.search(r">= \d+", rule["expr"]) is not None
        names = [case.name for case in Builder(params.monitoring, namespace).cases()[alert]]
        assert guarded == any(n.startswith("below the minimum") for n in names), (alert, names)


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a document's headings."""
    anchors = set()
    for line in markdown.splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_every_alert_is_complete_and_links_a_runbook_section_that_exists() -> None:
    anchors = _anchors(ALERTS_RUNBOOK.read_text(encoding="utf-8"))
    for params in PARAMS.values():
        base = rules.runbook_base(
            params.monitoring, repo_url=params.deploy.repo_url, revision=params.deploy.revision
        )
        for alert, rule in _alerts(_groups(params)).items():
            assert rule["labels"]["severity"] in ("page", "ticket"), alert
            assert rule["labels"]["category"] in ("service", "nodata", "ml"), alert
            annotations = rule["annotations"]
            assert annotations["summary"], alert
            assert annotations["description"], alert
            assert "$value" in annotations["description"], f"{alert}: no value in description"
            url = annotations["runbook_url"]
            assert url.startswith(base + "#"), url
            assert url.split("#", 1)[1] in anchors, f"{alert}: {url} names no section"


def test_runbook_urls_come_from_the_repository_or_the_param() -> None:
    monitoring = MonitoringParams()
    assert (
        rules.runbook_base(
            monitoring, repo_url="https://github.com/acme/churn.git", revision="main"
        )
        == "https://github.com/acme/churn/blob/main/runbooks/alerts.md"
    )
    assert (
        rules.runbook_base(monitoring, repo_url="git@github.com:acme/churn.git", revision="prod")
        == "https://github.com/acme/churn/blob/prod/runbooks/alerts.md"
    )
    with pytest.raises(Exception, match=r"monitoring\.alerts\.runbook_url"):
        rules.runbook_base(monitoring, repo_url="/srv/git/churn", revision="main")
    custom = MonitoringParams.model_validate(
        {"alerts": {"runbook_url": "https://wiki.example.com/alerts/"}}
    )
    assert rules.runbook_base(custom, repo_url="/srv/x", revision="main") == (
        "https://wiki.example.com/alerts"
    )


def test_without_labels_or_business_value_their_alerts_are_not_rendered() -> None:
    params = _params(labels={"expected": False, "delay": "1d"}, business=None)
    alerts = set(_alerts(_groups(params)))
    assert not alerts & {
        "ModelopsNoFeedback",
        "ModelopsRecallLow",
        "ModelopsPrecisionLow",
        "ModelopsBusinessValueLow",
    }
    assert "ModelopsFeatureDrift" in alerts


def test_time_scale_divides_every_window_and_for() -> None:
    params = PARAMS["template"]
    target = rules.Target("production", "churn-production", "https://x/alerts.md", time_scale=60)
    groups = rules.rule_groups(params.monitoring, target)
    text = yaml.safe_dump(groups)
    assert "[1h]" not in text, "1h becomes 60s"
    assert "[60s]" in text
    fast = _alerts(groups)["ModelopsAvailabilityFastBurn"]
    assert fast["for"] == "10s", "2m / 60, raised to the least `for` of a rehearsal"
    drift = _alerts(groups)["ModelopsFeatureDrift"]
    assert drift["for"] == "15s"
    # The names stay: dashboards and alerts read the same recording rules in a rehearsal.
    assert "modelops:sli_error:ratio_rate1h" in fast["expr"]

"""A batch environment's rendered rules, run by the real promtool on what a run pushes.

Each batch alert fires on a breach with its labels and stays silent when healthy (and below its
minimum rows); the numbers come from the params the rules were rendered with, for the template's
nightly CronJob (daily, engine local) and an hourly Spark schedule with other objectives. The
pushed series are those of `modelops_contract.batch`, with the labels a run pushes them under.
The end-to-end path (a real run, a real Pushgateway and Prometheus) is
tests/serving/test_batch_push.py.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelops_contract import REFERENCE_SCORE_SHARE, REFERENCE_SHARE
from modelops_contract import batch as contract

from modelops.deploy.render import monitoring_files
from modelops.observability import rules
from modelops.params import (
    BatchEnvironmentParams,
    Params,
    batch_name,
    longest_gap_seconds,
    missed_after_seconds,
)
from tests.monitoring.cases import Case, promtool_tests
from tests.support import REPO_ROOT, template_params, tool_or_skip

ALERTS = ("ModelopsBatchRunFailed", "ModelopsBatchRunMissed")
DRIFT_ALERTS = ("ModelopsBatchFeatureDrift", "ModelopsBatchScoreDrift")


def _params(name: str) -> Params:
    raw = template_params()
    if name == "hourly spark":
        raw["deploy"]["environments"]["nightly"] |= {
            "schedule": "15 * * * *",
            "engine": "spark",
            "spark": {"image": "registry.example.com/modelops-spark:1"},
        }
        raw["deploy"]["environments"]["nightly"].pop("resources", None)
        raw["deploy"]["environments"]["nightly"].pop("timeout", None)
        raw["monitoring"]["objectives"] |= {
            "feature_drift": {"max_psi": 0.1, "window": "30m", "min_rows": 300},
            "score_drift": {"max_psi": 0.3, "window": "2h", "min_rows": 5000},
        }
    return Params.model_validate(raw)


PARAMS = {name: _params(name) for name in ("template", "hourly spark")}


def _environment(params: Params) -> BatchEnvironmentParams:
    nightly = params.deploy.environments["nightly"]
    assert isinstance(nightly, BatchEnvironmentParams)
    return nightly


def _groups(params: Params) -> list[dict[str, Any]]:
    files = monitoring_files(params.deploy, params.monitoring, "nightly")
    return list(yaml.safe_load(files["prometheus/nightly.rules.yaml"])["groups"])


def _alerts(params: Params) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in _groups(params) for r in g["rules"] if "alert" in r}


class BatchCases:
    """Cases for one batch environment's alerts, from the params they were rendered with."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self.environment = _environment(params)
        self.run = {
            "namespace": self.environment.namespace,
            "job": batch_name(params.deploy.name, "nightly"),
        }
        self.labels = {**self.run, "model_version": "v7", "instance": ""}

    def cases(self, alert: str) -> list[Case]:
        return {
            "ModelopsBatchRunFailed": self._failed,
            "ModelopsBatchRunMissed": self._missed,
            "ModelopsBatchFeatureDrift": lambda: self._drift(feature=True),
            "ModelopsBatchScoreDrift": lambda: self._drift(feature=False),
        }[alert]()

    def _failed(self) -> list[Case]:
        success, failure = contract.LAST_SUCCESS.name, contract.LAST_FAILURE.name

        def series(*pairs: tuple[str, float]) -> list[tuple[str, dict[str, str], str]]:
            return [(name, self.labels, f"{value:g}x20") for name, value in pairs]

        return [
            Case("failed after the last success", True, series((success, 1e3), (failure, 2e3)),
                 10, labels=self.run),
            Case("never succeeded", True, series((failure, 2e3)), 10, labels=self.run),
            Case("succeeded after the failure (a retry)", False,
                 series((success, 3e3), (failure, 2e3)), 10),
            Case("only successes", False, series((success, 3e3)), 10),
        ]  # fmt: skip

    def _missed(self) -> list[Case]:
        # Samples and evaluations every 4 minutes, as the other cases: within Prometheus's
        # 5-minute lookback, so every look finds the last ALERTS and series written.
        every = 4
        deadline = missed_after_seconds(self.environment) // 60
        steps = (deadline + 20) // every + 2
        success = contract.LAST_SUCCESS.name
        nothing = [("up", {"job": "other"}, f"1x{steps}")]
        recent = f"0+{every * 60}x{steps}"  # a success at every sample
        return [
            Case("the last success is older than the deadline", True,
                 [(success, self.labels, f"0x{steps}")], deadline + 20, every, labels=self.run),
            Case("no success pushed for as long as the deadline", True, nothing,
                 deadline + 20, every, labels=self.run),
            Case("a success every few minutes", False,
                 [(success, self.labels, recent)], deadline + 20, every),
            Case("deployed, no run due yet", False, nothing, deadline - 12, every,
                 pending_ok=True),
        ]  # fmt: skip

    def _drift(self, *, feature: bool) -> list[Case]:
        objectives = self.params.monitoring.objectives
        objective = objectives.feature_drift if feature else objectives.score_drift
        if feature:
            rows, reference = contract.FEATURE_BIN_ROWS.name, REFERENCE_SHARE.name
            extra = {"feature": "age"}
        else:
            rows, reference = contract.SCORE_BIN_ROWS.name, REFERENCE_SCORE_SHARE.name
            extra = {}

        def series(total: int, shares: tuple[float, float]) -> list[Any]:
            pushed = [
                (rows, {**self.labels, **extra, "bin": b}, f"{share * total:g}x20")
                for b, share in zip(("b00", "b01"), shares, strict=True)
            ]
            if feature:  # missing values are not a bin of the PSI: many of them change nothing
                pushed.append((rows, {**self.labels, **extra, "bin": "__missing__"}, "5000x20"))
            return pushed + [
                (reference, {**self.labels, **extra, "bin": b}, "0.5x20") for b in ("b00", "b01")
            ]

        # PSI of (0.9, 0.1) against (0.5, 0.5): 0.4 ln 1.8 + 0.4 ln 5 = 0.879, over each limit.
        assert 0.4 * math.log(1.8) + 0.4 * math.log(5) > objective.max_psi
        keep = {**self.run, "model_version": "v7", **extra}
        return [
            Case("breaching", True, series(objective.min_rows, (0.9, 0.1)), 10, labels=keep),
            Case("below the minimum rows", False,
                 series(objective.min_rows // 2, (0.9, 0.1)), 10),
            Case("healthy", False, series(objective.min_rows * 4, (0.5, 0.5)), 10),
        ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "alert"), [(name, alert) for name in PARAMS for alert in (*ALERTS, *DRIFT_ALERTS)]
)
def test_each_batch_alert_fires_on_a_breach_only(name: str, alert: str, tmp_path: Path) -> None:
    promtool = tool_or_skip("promtool", install="apt-get install prometheus")
    params = PARAMS[name]
    rule = _alerts(params)[alert]
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": _groups(params)}, sort_keys=False))
    cases = BatchCases(params).cases(alert)
    document = promtool_tests(str(rules_file), alert, rule["labels"], cases)
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump(document, sort_keys=False))
    done = subprocess.run(
        [promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{alert}:\n{done.stdout}{done.stderr}"
    assert {case.fires for case in cases} == {True, False}


def test_every_batch_alert_links_a_runbook_section_and_says_its_value() -> None:
    anchors = {
        line.removeprefix("## ").strip().lower()
        for line in (REPO_ROOT / "runbooks" / "alerts.md").read_text().splitlines()
        if line.startswith("## ")
    }
    for params in PARAMS.values():
        alerts = _alerts(params)
        assert sorted(alerts) == sorted((*ALERTS, *DRIFT_ALERTS))
        for alert, rule in alerts.items():
            assert rule["labels"]["environment"] == "nightly"
            assert "$value" in rule["annotations"]["description"], alert
            assert rule["annotations"]["runbook_url"].endswith(f"#{alert.lower()}")
            assert alert.lower() in anchors, f"runbooks/alerts.md has no section {alert}"


def test_the_missed_run_deadline_follows_the_schedule_and_the_run_time() -> None:
    template, spark = (_environment(PARAMS[name]) for name in ("template", "hourly spark"))
    assert template.schedule == "0 2 * * *"
    assert template.timeout == "6h"
    assert missed_after_seconds(template) == 24 * 3600 + 6 * 3600
    assert missed_after_seconds(spark) == 3600 + 6 * 3600, "spark: an hour plus 6 h of grace"
    missed = [
        rule
        for group in _groups(PARAMS["template"])
        for rule in group["rules"]
        if rule.get("alert") == "ModelopsBatchRunMissed"
    ]
    assert [(rule["expr"].split(" > ")[-1], rule["for"]) for rule in missed] == [
        ("108000", "5m"),  # the last success is too old
        (missed[1]["expr"], "30h"),  # none at all, for as long
    ]


@pytest.mark.parametrize(
    ("schedule", "hours"),
    [
        ("@hourly", 1),
        ("*/15 * * * *", 0.25),
        ("0 9 * * mon-fri", 72),  # Friday 09:00 to Monday 09:00
        ("0 0 1 * *", 31 * 24),  # the longest month
        ("30 6 1,15 * *", 17 * 24),  # the 15th to the 1st of a 31-day month
        ("0 0 13 * 5", 7 * 24),  # the 13th or any Friday: never more than a week
        ("5/20 1-3 * * *", 21 + 20 / 60),  # 03:45 to 01:05 the next day
        ("0 0 29 2 *", 1461 * 24),  # leap days, four years apart
    ],
)
def test_the_longest_gap_of_a_schedule(schedule: str, hours: float) -> None:
    assert longest_gap_seconds(schedule) == round(hours * 3600)


def test_a_schedule_that_never_runs_is_refused() -> None:
    raw = template_params()
    raw["deploy"]["environments"]["nightly"]["schedule"] = "0 0 30 2 *"
    with pytest.raises(Exception, match="runs less than twice in eight years"):
        Params.model_validate(raw)


def test_without_a_pushgateway_no_batch_rule_is_rendered() -> None:
    raw = template_params()
    raw["monitoring"]["pushgateway_url"] = None
    params = Params.model_validate(raw)
    assert monitoring_files(params.deploy, params.monitoring, "nightly") == {}
    with_one = PARAMS["template"]
    groups = rules.environment_groups(with_one.deploy, with_one.monitoring, "nightly")
    assert [group["name"] for group in groups] == [
        "modelops-nightly-batch",
        "modelops-nightly-alerts",
    ]

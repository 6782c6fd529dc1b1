"""The rehearsal's plan and traffic, without processes: config, limits, requests, feedback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from modelops.errors import RehearsalError
from modelops.rehearsal.plan import (
    SHIFTED_CATEGORY,
    ServerPlan,
    Shift,
    TrafficPlan,
    alertmanager_config,
    prometheus_config,
    queries,
    server_parameters,
)
from modelops.rehearsal.traffic import SeldonRequest, feedback_body, requests_from, shifted
from tests.support import REPO_ROOT

STABLE = ServerPlan("stable", Path("/m/a"), "aaaaaaaaaaaa", "a" * 64, 9000, 6000)
CANARY = ServerPlan("canary", Path("/m/b"), "bbbbbbbbbbbb", "b" * 64, 9001, 6001)


def test_prometheus_scrapes_each_server_at_slash_prometheus_labelled_with_its_track() -> None:
    config = yaml.safe_load(prometheus_config([STABLE, CANARY]))
    (job,) = config["scrape_configs"]
    assert "rule_files" not in config
    assert "alerting" not in config
    assert job["metrics_path"] == "/prometheus"
    assert [(c["targets"], c["labels"]["track"]) for c in job["static_configs"]] == [
        (["127.0.0.1:6000"], "stable"),
        (["127.0.0.1:6001"], "canary"),
    ]
    assert config["global"]["scrape_interval"] == "1000ms"


def test_the_servers_get_the_graph_parameters_a_pod_gets() -> None:
    parameters = {
        p["name"]: p for p in server_parameters(STABLE, threshold=0.4, business_value=None)
    }
    assert parameters["model_hash"]["value"] == "a" * 64
    assert parameters["threshold"] == {"name": "threshold", "type": "FLOAT", "value": "0.4"}
    assert "business_value" not in parameters
    valued = server_parameters(STABLE, threshold=0.4, business_value={"true_positive": 1.0})
    assert valued[-1]["value"] == '{"true_positive": 1.0}'


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seconds", 0, "--minutes must be above 0"),
        ("requests_per_second", 5000, "--rate must be from above 0 to 1000"),
        ("rows_per_request", 0, "--rows must be from 1 to 1000"),
        ("canary_percent", 101, "--canary-percent must be from 0 to 100"),
        ("label_delay_seconds", 999, "--label-delay must be from 0 to the run's length"),
    ],
)
def test_impossible_traffic_is_refused_with_the_limit(
    field: str, value: float, message: str
) -> None:
    good: dict[str, Any] = {
        "seconds": 60.0,
        "requests_per_second": 5.0,
        "rows_per_request": 1,
        "canary_percent": 10,
        "label_delay_seconds": 5.0,
    }
    with pytest.raises(RehearsalError, match=message):
        TrafficPlan(**{**good, field: value})


def test_requests_replay_the_rows_in_seldon_form_and_cycle() -> None:
    rows = pd.DataFrame(
        {"plan": ["a", None, "c"], "age": [1.0, np.nan, 3.0], "churned": ["1", "0", "1"]}
    )
    stream = requests_from(rows, ["plan", "age"], "churned", per_request=2, seed=0)
    batches = [next(stream) for _ in range(3)]
    for request, truths in batches:
        assert request["data"]["names"] == ["plan", "age"]
        assert len(request["data"]["ndarray"]) == len(truths) == 2
    sent = [row for request, _ in batches for row in request["data"]["ndarray"]]
    assert [None, None] in sent, "missing values go as null"
    assert {tuple(map(str, r)) for r in sent} == {("a", "1.0"), ("None", "None"), ("c", "3.0")}


def test_feedback_carries_the_request_the_answer_and_one_truth_per_row() -> None:
    body = feedback_body(
        {"data": {"names": [], "ndarray": []}}, {"data": {"ndarray": [[0.2, 0.8]]}}, [["1"]]
    )
    assert body["truth"] == {"data": {"ndarray": [["1"]]}}
    assert set(body) == {"request", "response", "truth"}


def test_the_printed_queries_name_the_positive_class_and_a_real_feature() -> None:
    printed = "\n".join(query for _, query in queries(feature="age", positive_label="yes"))
    assert 'feature="age"' in printed
    assert 'class="yes"' in printed
    assert 'actual="yes",predicted="yes"' in printed


def test_with_rules_prometheus_labels_the_namespace_loads_them_and_alerts_alertmanager() -> None:
    config = yaml.safe_load(
        prometheus_config(
            [STABLE],
            namespace="churn-production",
            rule_files=["/state/rules.yaml"],
            alertmanager="127.0.0.1:9093",
            itself="127.0.0.1:9090",
        )
    )
    models, itself = config["scrape_configs"]
    assert models["static_configs"][0]["labels"]["namespace"] == "churn-production"
    assert itself["static_configs"] == [{"targets": ["127.0.0.1:9090"]}]
    assert config["rule_files"] == ["/state/rules.yaml"]
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["127.0.0.1:9093"]


def test_the_rehearsal_alertmanager_keeps_the_routes_and_notifies_nobody() -> None:
    example = (REPO_ROOT / "manifests" / "alertmanager" / "alertmanager.yml").read_text()
    original, rehearsed = yaml.safe_load(example), yaml.safe_load(alertmanager_config(example))
    assert rehearsed["route"] == original["route"]
    assert rehearsed["inhibit_rules"] == original["inhibit_rules"]
    assert rehearsed["receivers"] == [{"name": r["name"]} for r in original["receivers"]]


def test_a_shift_drifts_one_feature_and_leaves_the_rest() -> None:
    request: SeldonRequest = {
        "data": {"names": ["a", "b", "c"], "ndarray": [[1.5, "x", None], [2, "y", 3]]}
    }
    assert shifted(request, {"feature": "a", "factor": 3})["data"]["ndarray"] == [
        [4.5, "x", None],
        [6, "y", 3],
    ]
    assert shifted(request, {"feature": "b", "factor": 3})["data"]["ndarray"] == [
        [1.5, SHIFTED_CATEGORY, None],
        [2, SHIFTED_CATEGORY, 3],
    ]
    assert shifted(request, {"feature": "c", "factor": 2})["data"]["ndarray"][0][2] is None
    assert request["data"]["ndarray"][0][0] == 1.5, "the original request is left as it was"


def test_a_shift_must_end_within_the_run() -> None:
    with pytest.raises(RehearsalError, match="must end within the run"):
        TrafficPlan(60, 5, 1, 10, 5, shift=Shift("a", 3, 30, 40))
    TrafficPlan(60, 5, 1, 10, 5, shift=Shift("a", 3, 20, 40))

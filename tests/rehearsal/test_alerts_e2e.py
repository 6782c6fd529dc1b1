"""See it fire: `modelops up` with the rendered rules and Alertmanager, and traffic that drifts.

The real servers, Prometheus and Alertmanager, on free loopback ports, in compressed time
(`--time-scale 120`: the drift window of an hour is 30 s, a `for` of 15 minutes 7.5 s). Healthy
traffic first: no model or no-data alert fires. Then one numeric feature is tripled for 45 s:
ModelopsFeatureDrift must fire for it, reach Alertmanager with its labels and runbook, and
resolve once the shift is over. While the traffic runs, every dashboard panel's query must
return data from this Prometheus, and the rule groups' evaluation time is read from
Prometheus' own series.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from modelops.cli import main
from modelops.observability import dashboards
from modelops.params import Params, load_params
from modelops.prepared import load_meta
from modelops.rehearsal import processes
from tests.support import pod_environment

SHIFT_AT, SHIFT_FOR, SCALE = 30, 45, 120
DRIFT = "ModelopsFeatureDrift"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def _query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    answer = _get(url)
    assert answer["status"] == "success", (promql, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _firing(port: int) -> list[dict[str, str]]:
    return [r["metric"] for r in _query(port, 'ALERTS{alertstate="firing"}')]


def _in_alertmanager(port: int) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = _get(f"http://127.0.0.1:{port}/api/v2/alerts?active=true")
    return alerts


def _panel_queries(params: Params, environment: str) -> list[tuple[str, str, str]]:
    namespace = pod_environment(params, environment).namespace
    objectives = params.monitoring.objectives
    boards = dashboards.dashboards(
        environment=environment,
        namespace=namespace,
        deploy_name=params.deploy.name,
        slo_targets={
            "availability": objectives.availability.target,
            "latency": objectives.latency.target,
        },
        windows=dashboards.DashboardWindows.from_objectives(objectives),
    )
    return [
        (board["title"], title, dashboards.concrete(expr))
        for board in boards
        for title, expr in dashboards.panel_queries(board)
    ]


@pytest.fixture(scope="module")
def rehearsal(project: Path) -> Any:
    names = ("prometheus", "alertmanager", "stable", "canary", "stable-metrics", "canary-metrics")
    ports = dict(zip(names, processes.free_ports(len(names)), strict=True))
    feature = load_meta(project / "data" / "prepared").schema.numeric[0]
    # 200 rows/s: the 30 s drift window holds several times its 1,000-row minimum even when
    # a busy machine slows the traffic down.
    args = ["up", "--minutes", "2.5", "--rate", "20", "--rows", "10", "--label-delay", "5"]
    args += ["--time-scale", str(SCALE), "--shift", f"{feature}=3"]
    args += ["--shift-at", str(SHIFT_AT), "--shift-for", str(SHIFT_FOR)]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        assert main(args) == 0
    started = time.monotonic()
    try:
        yield ports, feature, started
    finally:
        processes.down(project)


def test_drifted_traffic_fires_the_drift_alert_through_alertmanager_and_it_resolves(
    rehearsal: Any,
) -> None:
    ports, feature, started = rehearsal
    prometheus, alertmanager = ports["prometheus"], ports["alertmanager"]
    fired_at = None
    while time.monotonic() - started < SHIFT_AT:
        # Healthy traffic: no model or no-data alert fires (drift, missing, unseen, quality,
        # freshness, target down, no traffic or feedback). Service alerts are left out here:
        # latency on a machine that runs other tests at once is not the model's.
        firing = [a for a in _firing(prometheus) if a.get("category") != "service"]
        assert firing == [], "an alert fired on healthy traffic"
        time.sleep(2)
    deadline = started + SHIFT_AT + SHIFT_FOR + 20
    while time.monotonic() < deadline and fired_at is None:
        drift = [a for a in _in_alertmanager(alertmanager) if a["labels"]["alertname"] == DRIFT]
        if drift:
            fired_at = time.monotonic() - started
            labels, annotations = drift[0]["labels"], drift[0]["annotations"]
        time.sleep(1)
    assert fired_at is not None, f"{DRIFT} did not reach Alertmanager during the shift"
    assert labels["feature"] == feature
    assert labels["severity"] == "ticket"
    assert labels["category"] == "ml"
    assert labels["namespace"] == "churn-production"
    assert annotations["runbook_url"].endswith("runbooks/alerts.md#modelopsfeaturedrift")
    assert "PSI" in annotations["description"]
    deadline = started + SHIFT_AT + SHIFT_FOR + 60
    while time.monotonic() < deadline:
        firing = [a for a in _firing(prometheus) if a["alertname"] == DRIFT]
        active = [a for a in _in_alertmanager(alertmanager) if a["labels"]["alertname"] == DRIFT]
        if not firing and not active:
            break
        time.sleep(1)
    assert not firing, f"{DRIFT} still fires {time.monotonic() - started:.0f} s in"
    assert not active, "Alertmanager still holds the drift alert after it resolved"


def test_every_dashboard_panel_query_returns_data_from_the_rehearsal(
    rehearsal: Any, project: Path
) -> None:
    ports, _, _ = rehearsal
    params = load_params(project / "params.yaml")
    # A client's mistake, so the refusals panel has something to show.
    refused = urllib.request.Request(
        f"http://127.0.0.1:{ports['stable']}/api/v1.0/predictions",
        data=b'{"data": {"names": ["nope"], "ndarray": [[1]]}}',
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(refused, timeout=5)
    assert error.value.code == 400
    # The refusal shows once the server has flushed it, Prometheus scraped it and evaluated the
    # recording rules: seconds, more on a busy machine (a fixed 4 s wait once fell short).
    deadline = time.monotonic() + 30
    while True:
        empty = [
            f"{board} / {title}: {expr}"
            for board, title, expr in _panel_queries(params, "production")
            if not _query(ports["prometheus"], expr)
        ]
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_rule_evaluation_cost_is_read_from_prometheus(rehearsal: Any) -> None:
    ports, _, _ = rehearsal
    deadline = time.monotonic() + 30  # Prometheus' own series come with its next self-scrapes
    while True:
        costs = {
            r["metric"]["rule_group"].rsplit(";", 1)[-1]: float(r["value"][1])
            for r in _query(ports["prometheus"], "prometheus_rule_group_last_duration_seconds")
        }
        if len(costs) == 4 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(costs) == {
        "modelops-production-slo",
        "modelops-production-ml",
        "modelops-production-service",
        "modelops-production-alerts",
    }
    # One evaluation a second in the rehearsal: each group must take well under it.
    assert all(0 < seconds < 0.5 for seconds in costs.values()), costs

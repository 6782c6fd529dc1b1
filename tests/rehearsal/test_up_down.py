"""`modelops up` and `modelops down` for real: Prometheus, two model servers, traffic, on loopback.

A small trained project; every process is started by `up` on free loopback ports and stopped
by `down` by the PIDs `up` recorded (a finalizer stops them too if a test fails midway).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from modelops.cli import main
from modelops.rehearsal import processes
from tests.rehearsal.support import down_leaves_nothing


def _ports() -> dict[str, int]:
    names = ("prometheus", "alertmanager", "stable", "canary", "stable-metrics", "canary-metrics")
    return dict(zip(names, processes.free_ports(len(names)), strict=True))


def _up(root: Path, ports: dict[str, int], *extra: str) -> tuple[int, str]:
    args = ["up", "--minutes", "0.1", "--rate", "20", "--label-delay", "2"]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    printed = []
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setattr("builtins.print", lambda *a, **k: printed.append(" ".join(map(str, a))))
        code = main([*args, *extra])
    return code, "\n".join(printed)


def _query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as answer:
        result: list[dict[str, Any]] = json.loads(answer.read())["data"]["result"]
    return result


def _by_track(port: int, promql: str) -> dict[str, float]:
    return {r["metric"]["track"]: float(r["value"][1]) for r in _query(port, promql)}


def test_up_runs_prometheus_both_servers_and_traffic_and_down_stops_exactly_that(
    project: Path,
) -> None:
    ports = _ports()
    code, printed = _up(project, ports)
    assert code == 0, printed
    started = processes.running(project)
    assert [p.name for p in started] == [
        "alertmanager",
        "stable",
        "canary",
        "prometheus",
        "traffic",
    ]
    assert f"Prometheus  http://127.0.0.1:{ports['prometheus']}" in printed
    assert "sum by (track, outcome) (rate(modelops_requests_total[1m]))" in printed
    assert "make down" in printed

    # Both tracks are scraped, labelled as the PodMonitor labels them in a cluster.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        up = _by_track(ports["prometheus"], 'up{job="modelops"}')
        served = _by_track(ports["prometheus"], "sum by (track) (modelops_predictions_total)")
        if up == {"stable": 1.0, "canary": 1.0} and set(served) == {"stable", "canary"}:
            break
        time.sleep(1)
    assert up == {"stable": 1.0, "canary": 1.0}
    assert set(served) == {"stable", "canary"}, "both tracks got traffic and were scraped"

    code, printed = _up(project, _ports())
    assert code == 1, "a second rehearsal is refused while one runs"

    # The traffic ends by itself (6 s, then the last truths); the servers keep serving.
    traffic = next(p for p in started if p.name == "traffic")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and processes._alive(traffic.pid):
        time.sleep(0.5)
    assert not processes._alive(traffic.pid), "bounded: the traffic stopped on its own"
    lines = (project / ".rehearsal" / "traffic.jsonl").read_text().splitlines()
    ledger = [json.loads(line) for line in lines]
    sent = [c for c in ledger if c["kind"] == "predict"]
    fed_back = [c for c in ledger if c["kind"] == "feedback"]
    assert 80 <= len(sent) <= 130, "about 20 requests/s for 6 s"
    assert all(c["status"] == 200 for c in ledger)
    assert len(fed_back) == len(sent), "every answered request got its truth back"
    canary_share = sum(c["track"] == "canary" for c in sent) / len(sent)
    assert 0.03 < canary_share < 0.2, "about the canary's 10%"

    down_leaves_nothing(project, started, ports)


def test_without_prometheus_up_says_how_to_install_it_and_starts_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(project))  # no prometheus there
    monkeypatch.delenv("PROMETHEUS", raising=False)
    monkeypatch.chdir(project)
    assert main(["up"]) == 1
    error = capsys.readouterr().err
    assert "no `prometheus` on PATH" in error
    assert "apt-get install prometheus" in error
    assert "brew install prometheus" in error
    assert processes.running(project) == []


def test_down_with_nothing_running_says_so(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    assert main(["down"]) == 0
    assert "nothing of a rehearsal was running" in capsys.readouterr().out

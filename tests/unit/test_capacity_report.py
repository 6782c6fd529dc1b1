"""The capacity report: its JSON keeps the fields tools read, `read_capacity` gives back the
proposal, and a file that is not a report is refused by name (modelops.capacity.report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelops.capacity.document import to_markdown
from modelops.capacity.policy import Objective, Step, Traffic, Usage, propose
from modelops.capacity.report import (
    Capacity,
    Curve,
    Setup,
    read_capacity,
    report_file,
    to_json,
)
from modelops.errors import CapacityError, ExitCode
from modelops.paths import ProjectPaths


def _step(rate: float, verdict: str) -> Step:
    return Step(
        rate=rate,
        seconds=10,
        requests=int(rate * 10),
        errors=0,
        slow=0 if verdict == "pass" else 500,
        p50_ms=2.0,
        p95_ms=5.0,
        p99_ms=9.0 if verdict == "pass" else 400.0,
        achieved_rps=rate,
        send_lag_p99_ms=1.0,
        usage=Usage(server_cpu_cores=0.6, server_memory_mib=310.5, generator_cpu_cores=0.2),
        verdict=verdict,  # type: ignore[arg-type]
        reason="why",
    )


def capacity(*, knee_found: bool = True) -> Capacity:
    traffic = Traffic(300.0, 100.0, "given on the command line")
    steps = (_step(100, "pass" if knee_found else "fail"), _step(200, "fail"))
    return Capacity(
        environment="production",
        measured_at="2026-12-06T20:00:00Z",
        objective=Objective(quantile=0.99, threshold_seconds=0.1),
        curves=(Curve(1, steps, "objective"),),
        traffic=traffic,
        proposal=propose(100.0, 1, traffic, headroom=0.3) if knee_found else None,
        current={"min_replicas": 2, "max_replicas": 6, "target_cpu_utilization": 70},
        setup=Setup(
            model="the model in models/model",
            model_hash="",
            url="http://127.0.0.1:9000",
            started_here=True,
            workers=2,
            threads=1,
            server_cpus=(0,),
            generator_cpus=(1,),
            resources={"cpu": "250m", "memory": "512Mi", "cpu_limit": "1", "memory_limit": "1Gi"},
            machine="x86_64, 2 cores",
            load_before="0.10 0.20 0.30",
            load_after="0.90 0.40 0.30",
            seconds=42.0,
            budget_seconds=600.0,
        ),
    )


def test_the_json_holds_the_curve_the_knee_and_the_proposal_and_reads_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "production.json"
    path.write_bytes(to_json(capacity()))
    document = json.loads(path.read_text())
    (curve,) = document["curves"]
    assert (curve["rows"], curve["knee_rps"], curve["upper_rps"]) == (1, 100, 200)
    assert (curve["knee_cpu_cores"], curve["knee_memory_mib"]) == (0.6, 310.5)
    assert [s["p99_ms"] for s in curve["steps"]] == [9.0, 400.0]
    assert document["proposal"] == {
        "min_replicas": 3,
        "max_replicas": 6,
        "target_rps_per_replica": 70.0,
        "headroom": 0.3,
        "knee_rps": 100.0,
        "rows_per_request": 1,
    }
    report = read_capacity(path)
    assert report_file(ProjectPaths(tmp_path), "production") == (
        tmp_path / "reports" / "capacity" / "production.json"
    )
    assert (report.environment, report.measured_at) == ("production", "2026-12-06T20:00:00Z")
    assert report.proposal == capacity().proposal
    assert capacity().exit_code == ExitCode.OK


def test_without_a_knee_there_is_no_proposal_and_the_run_fails(tmp_path: Path) -> None:
    found = capacity(knee_found=False)
    assert found.exit_code == ExitCode.FAILED
    path = tmp_path / "production.json"
    path.write_bytes(to_json(found))
    assert read_capacity(path).proposal is None
    text = to_markdown(found)
    assert "No knee: no step passed below one that did not" in text
    assert "No proposal" in text


def test_the_markdown_says_the_knee_the_formula_and_where_it_was_measured() -> None:
    text = to_markdown(capacity())
    assert text.startswith("# Capacity of one replica: production\n")
    assert "Knee: 100 requests/s and below 200" in text
    assert "| min_replicas | 2 | 3 |" in text
    assert "target = knee * (1 - headroom) = 70" in text
    assert "The server ran on CPU(s) 0" in text
    assert "before: 0.10 0.20 0.30" in text


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "no capacity report; `modelops capacity --env ENV` measures one"),
        ("{not json", "not JSON"),
        ('{"schema": 99}', "not a capacity report of schema 1"),
        ('{"schema": 1, "environment": "p"}', "a field is missing or wrong"),
        (
            '{"schema": 1, "environment": "p", "measured_at": "t", "proposal": {"min_replicas":'
            ' 3, "max_replicas": 2, "target_rps_per_replica": 1, "headroom": 0.3, "knee_rps": 2,'
            ' "rows_per_request": 1}}',
            "replicas 3..2",
        ),
    ],
)
def test_a_file_that_is_not_a_capacity_report_is_refused_by_name(
    tmp_path: Path, content: str | None, said: str
) -> None:
    path = tmp_path / "production.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CapacityError, match=r"production\.json") as raised:
        read_capacity(path)
    assert said in str(raised.value)

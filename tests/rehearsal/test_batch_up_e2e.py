"""`modelops up --env nightly` for real: a Pushgateway, Prometheus with the batch rules,
Alertmanager and scheduled `modelops-score` runs, on loopback, then `modelops down`.

Time is divided by 36,000 (`--time-scale`): nightly's schedule (`0 2 * * *`, a day at most
between two runs) runs every 2.4 s, back to back as a run takes about that long here; every
alert's `for` is the least the rehearsal allows (10 s). The scheduled runs score a drifted
copy of the test rows (`--batch-input`, enough rows for drift to be judged): they push, Prometheus
scrapes the figures from the Pushgateway, and ModelopsBatchFeatureDrift fires and reaches
Alertmanager. Then the table is replaced by one the model cannot score (read again at every
run): ModelopsBatchRunFailed fires. `down` stops every process by the PIDs `up` recorded (the
`project` fixture's finalizer too, if a test fails midway). About 40 s.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from modelops_contract import batch as contract

from modelops.cli import main
from modelops.rehearsal import processes
from tests.rehearsal.support import down_leaves_nothing
from tests.support import tool_or_skip

TIME_SCALE = "36000"
JOB, NAMESPACE = "churn-nightly", "churn-batch"
WAIT_SECONDS = 60.0


def _ports() -> dict[str, int]:
    names = ("prometheus", "alertmanager", "pushgateway")
    return dict(zip(names, processes.free_ports(len(names)), strict=True))


def _up(root: Path, ports: dict[str, int], *extra: str) -> tuple[int, str]:
    args = ["up", "--env", "nightly", "--time-scale", TIME_SCALE]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    printed = []
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setattr("builtins.print", lambda *a, **k: printed.append(" ".join(map(str, a))))
        code = main([*args, *extra])
    return code, "\n".join(printed)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def _query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    result: list[dict[str, Any]] = _get(url)["data"]["result"]
    return result


def _firing(port: int) -> dict[str, dict[str, str]]:
    found = _query(port, 'ALERTS{alertstate="firing"}')
    return {alert["metric"]["alertname"]: alert["metric"] for alert in found}


def _wait(what: str, check: Any, describe: Any) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"{what}: {describe()}"
        time.sleep(0.5)


def _runs(root: Path) -> list[dict[str, Any]]:
    ledger = root / ".rehearsal" / "runs.jsonl"
    if not ledger.is_file():
        return []
    return [json.loads(line) for line in ledger.read_text().splitlines()]


@pytest.fixture(scope="module")
def pushgateway() -> str:
    return tool_or_skip(
        "prometheus-pushgateway", "pushgateway", install="apt-get install prometheus-pushgateway"
    )


def test_up_schedules_runs_that_push_their_figures_and_the_batch_alerts_fire(
    project: Path, pushgateway: str
) -> None:
    rows = pd.read_parquet(project / "data" / "prepared" / "test.parquet")
    drifted = pd.concat([rows] * 3, ignore_index=True)  # over min_rows (1,000)
    drifted["tenure_months"] = drifted["tenure_months"] * 3 + 40
    table = project / "scoring" / "drifted.parquet"
    table.parent.mkdir()
    drifted.to_parquet(table)
    ports = _ports()

    code, printed = _up(project, ports, "--batch-input", "scoring/drifted.parquet")
    assert code == 0, printed
    started = processes.running(project)
    assert [p.name for p in started] == ["alertmanager", "pushgateway", "prometheus", "scheduler"]
    lines = printed.splitlines()
    assert lines[0].startswith("up: 4 processes (PIDs ")
    assert "nightly's runs every 2.4 s (`0 2 * * *`: 24 h at most between two runs" in lines[0]
    assert f"  Prometheus   http://127.0.0.1:{ports['prometheus']}  (targets:" in printed
    pushgateway_line = f"  Pushgateway  http://127.0.0.1:{ports['pushgateway']}  (runs push as "
    assert f"{pushgateway_line}job={JOB}, namespace={NAMESPACE}, model_version=" in printed
    assert "  input        scoring/drifted.parquet (--batch-input" in printed
    assert "  output       .rehearsal/scores (replaced by every run that succeeds)" in printed
    assert "the workspace model" in printed, "nothing released in the test project"
    assert lines[-1] == "Stop everything with: make down"

    # Two scheduled runs pushed: each success replaces the group, so the pushed success time
    # moves, and the rows scored are the table's.
    prometheus = ports["prometheus"]
    group = f'job="{JOB}", namespace="{NAMESPACE}"'
    successes: set[str] = set()

    def two_pushed() -> bool:
        found = _query(prometheus, f"{contract.LAST_SUCCESS.name}{{{group}}}")
        successes.update(sample["value"][1] for sample in found)
        succeeded = [run for run in _runs(project) if run["exit_code"] == 0]
        return len(successes) >= 2 and len(succeeded) >= 2  # the ledger is written after

    _wait("two runs pushed", two_pushed, lambda: (successes, _runs(project)))
    scored = _query(prometheus, f'{contract.ROWS.name}{{{group}, outcome="scored"}}')
    assert [float(s["value"][1]) for s in scored] == [len(drifted)]
    assert (project / ".rehearsal" / "scores" / "_run.json").is_file()

    # The drift fires, for the one feature that moved, and reaches Alertmanager.
    _wait(
        "ModelopsBatchFeatureDrift fires",
        lambda: "ModelopsBatchFeatureDrift" in _firing(prometheus),
        lambda: _firing(prometheus),
    )
    drift = _firing(prometheus)["ModelopsBatchFeatureDrift"]
    assert (drift["feature"], drift["job"], drift["namespace"]) == ("tenure_months", JOB, NAMESPACE)
    assert "ModelopsBatchRunFailed" not in _firing(prometheus)

    def in_alertmanager() -> set[str]:
        alerts = _get(f"http://127.0.0.1:{ports['alertmanager']}/api/v2/alerts?active=true")
        return {alert["labels"]["alertname"] for alert in alerts}

    _wait(
        "Alertmanager receives the drift",
        lambda: "ModelopsBatchFeatureDrift" in in_alertmanager(),
        in_alertmanager,
    )

    # The export breaks: the next runs fail (read again at every run), and push their failure.
    pd.DataFrame({"customer_id": ["a", "b"]}).to_parquet(table)
    _wait(
        "ModelopsBatchRunFailed fires",
        lambda: "ModelopsBatchRunFailed" in _firing(prometheus),
        lambda: (_firing(prometheus), _runs(project)[-2:]),
    )
    assert _firing(prometheus)["ModelopsBatchRunFailed"]["job"] == JOB
    assert _runs(project)[-1]["exit_code"] == 1

    down_leaves_nothing(project, started, ports)


def test_without_a_pushgateway_up_says_how_to_install_it_and_starts_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROMETHEUS", tool_or_skip("prometheus", install="apt-get install"))
    monkeypatch.setenv(
        "ALERTMANAGER",
        tool_or_skip("alertmanager", "prometheus-alertmanager", install="apt-get install"),
    )
    monkeypatch.setenv("PATH", str(project))  # no pushgateway there
    monkeypatch.delenv("PUSHGATEWAY", raising=False)
    monkeypatch.chdir(project)
    assert main(["up", "--env", "nightly"]) == 1
    error = capsys.readouterr().err
    assert "no Pushgateway on PATH" in error
    assert "apt-get install prometheus-pushgateway" in error
    assert processes.running(project) == []


def test_real_time_options_are_refused_for_a_batch_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    assert main(["up", "--env", "nightly", "--shift", "tenure_months=3"]) == 1
    assert "nightly is a batch environment: --shift drifts real-time traffic" in (
        capsys.readouterr().err
    )
    assert main(["up", "--env", "production", "--batch-input", "x.csv"]) == 1
    assert "--batch-input is for a batch environment" in capsys.readouterr().err
    assert processes.running(project) == []

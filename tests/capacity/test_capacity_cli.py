"""`modelops capacity` end to end: the real server started as a pod runs it, the real locust,
a small budget; and the ways it refuses to start, each before anything is written.

The load runs on this shared machine beside other tests, so the project's latency objective
is made lenient here (p90 within 1 s): the test checks that a knee is found and reported,
not how high it is (benchmarks/bench_capacity.py measures that at a quiet moment).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import psutil
import pytest
import yaml

from modelops.capacity.run import peak_queries
from modelops.cli import main
from tests.shared import copy_project
from tests.support import REPO_ROOT, tool_or_skip


def _modelops(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse refusing an option
            code = int(exit_.code or 0)
    return code, err.getvalue()


@pytest.fixture
def project(trained_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(trained_project, tmp_path / "project")
    (root / "serving" / ".venv").symlink_to(REPO_ROOT / "serving" / ".venv")
    params = yaml.safe_load((root / "params.yaml").read_text())
    objectives = params.setdefault("monitoring", {}).setdefault("objectives", {})
    objectives["latency"] = {"target": 0.9, "threshold_seconds": 1.0}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(root)
    return root


def _children() -> set[psutil.Process]:
    """This test process's descendants, zombies included (a child not waited for stays one)."""
    return set(psutil.Process().children(recursive=True))


def test_a_small_budget_finds_the_knee_writes_the_report_and_leaves_nothing_running(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _children()  # another test in this worker may have left its own
    # Given the trained model and rates a replica passes (20/s) and cannot pass on any machine
    # (5,000/s: one idle replica on two cores answered 1,000/s within the objective),
    # when capacity runs with a 120 s budget, then the knee is 20, bounded by the objective.
    code, err = _modelops(
        *("capacity", "--env", "production", "--rows", "1", "--rates", "20,5000"),
        *("--duration", "4", "--budget", "120", "--peak-rps", "45", "--baseline-rps", "10"),
    )
    out = capsys.readouterr().out
    assert code == 0, err + out
    assert "capacity: 1 row(s), 20 req/s for 4 s: pass" in out
    assert "capacity: 1 row(s), 5000 req/s for 4 s: fail" in out
    document = json.loads((project / "reports" / "capacity" / "production.json").read_text())
    (curve,) = document["curves"]
    assert (curve["knee_rps"], curve["upper_rps"], curve["limited_by"]) == (20, 5000, "objective")
    knee_step = curve["steps"][0]
    assert knee_step["requests"] == 80, "p90: 69 requests wanted, so 4 s at 20/s"
    assert knee_step["errors"] == 0
    assert knee_step["p99_ms"] < 1000
    assert curve["knee_cpu_cores"] > 0, "read from the server's PIDs"
    assert curve["knee_memory_mib"] > 50, "read from the server's PIDs"
    # target = 20 * 0.7 = 14; min = max(2, ceil(10 / 14) + 1) = 2; max = ceil(45 / 14) + 1 = 5.
    assert document["proposal"] == {
        "min_replicas": 2,
        "max_replicas": 5,
        "target_rps_per_replica": 14.0,
        "headroom": 0.3,
        "knee_rps": 20.0,
        "rows_per_request": 1,
    }
    assert document["objective"] == {"quantile": 0.9, "threshold_seconds": 1.0, "confidence": 0.95}
    markdown = (project / "reports" / "capacity" / "production.md").read_text()
    assert "Knee: 20 requests/s and below 5000" in markdown
    assert "| min_replicas | 2 | 2 |" in markdown
    assert _children() - before == set(), "the server and every locust process are stopped"


def test_a_server_that_does_not_answer_stops_the_run_before_anything_is_written(
    project: Path,
) -> None:
    port = _free_port()
    code, err = _modelops(
        *("capacity", "--env", "production", "--url", f"http://127.0.0.1:{port}"),
        *("--peak-rps", "10", "--budget", "60"),
    )
    assert code == 1
    assert f"error: nothing answers at http://127.0.0.1:{port}/api/v1.0/predictions" in err
    assert not (project / "reports" / "capacity").exists()


def test_a_model_the_server_cannot_load_is_named_with_the_server_log(project: Path) -> None:
    broken = project / "broken-model"
    shutil.copytree(project / "models" / "model", broken)
    (broken / "model.skops").write_bytes(b"not a model")
    before = _children()
    code, err = _modelops(
        *("capacity", "--env", "production", "--model", "broken-model", "--peak-rps", "10"),
    )
    assert code == 1
    assert "error: the model server did not start on" in err
    assert "broken-model" in err
    assert not (project / "reports" / "capacity").exists()
    assert _children() - before == set()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--rows", "0"), "--rows must be from 1 to 1000 each, got [0]"),
        (("--headroom", "1"), "--headroom is a share of the knee, from 0 to below 1"),
        (("--budget", "5"), "--budget must be at least 30 s, got 5"),
        (("--duration", "0.5"), "--duration must be at least 1 second"),
        (("--rates", "10,-5"), "--rates must be above 0, got [10.0, -5.0]"),
        (("--window", "7x"), "--window is a duration such as 1h, 7d or 4w"),
        (("--url", "ftp://x"), "--url must start with http:// or https://"),
        (("--baseline-rps", "5"), "--baseline-rps needs --peak-rps"),
        (("--peak-rps", "5", "--baseline-rps", "9"), "--baseline-rps 9 is above --peak-rps"),
        (("--env", "nowhere"), "no environment 'nowhere' in params.yaml"),
        (("--model", "empty"), "empty: no trained model"),
    ],
)
def test_an_invalid_option_is_refused_by_name_before_any_load(
    project: Path, args: tuple[str, ...], said: str
) -> None:
    (project / "empty").mkdir()
    base = {"--env": "production", "--peak-rps": "100"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    if "--baseline-rps" in given and "--peak-rps" not in given:
        base.pop("--peak-rps")
    merged = [item for pair in {**base, **given}.items() for item in pair]
    code, err = _modelops("capacity", *merged)
    assert code == 1, err
    assert said in err
    assert not (project / "reports" / "capacity").exists()


def test_a_list_that_is_not_numbers_is_refused_by_argparse(project: Path) -> None:
    code, err = _modelops("capacity", "--env", "production", "--rows", "one,two")
    assert code == 2
    assert "not a comma-separated list of numbers: 'one,two'" in err


def test_without_traffic_to_size_for_it_says_where_to_get_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELOPS_PROMETHEUS_URL", raising=False)
    code, err = _modelops("capacity", "--env", "production")
    assert code == 1
    assert "no Prometheus to ask: give --prometheus URL" in err
    port = _free_port()
    code, err = _modelops(
        "capacity", "--env", "production", "--prometheus", f"http://127.0.0.1:{port}"
    )
    assert code == 1
    assert f"cannot reach Prometheus at http://127.0.0.1:{port}" in err


def test_the_peak_and_baseline_queries_on_real_promql(tmp_path: Path) -> None:
    # Given stable at 10 requests/s for an hour then 40/s for 30 minutes, a canary at 2/s
    # throughout, and a shadow's copies (not counted), evaluated by promtool's PromQL engine:
    # the peak is 42/s and the median over the window 12/s.
    promtool = tool_or_skip("promtool", install="apt-get install prometheus")
    queries = peak_queries("churn-production", "90m")
    where = 'namespace="churn-production", endpoint="predict"'

    def series(track: str, per_minute: str) -> dict[str, str]:
        return {
            "series": f'modelops_requests_total{{{where}, track="{track}"}}',
            "values": per_minute,
        }

    tests = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    series("stable", "0+600x60 36000+2400x30"),
                    series("canary", "0+120x90"),
                    series("shadow", "0+6000x90"),
                ],
                "promql_expr_test": [
                    {"expr": queries["peak"], "eval_time": "90m", "exp_samples": [{"value": 42}]},
                    {
                        "expr": queries["baseline"],
                        "eval_time": "90m",
                        "exp_samples": [{"value": 12}],
                    },
                ],
            }
        ]
    }
    test_file = tmp_path / "peak_test.yaml"
    test_file.write_text(yaml.safe_dump(tests))
    done = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _free_port() -> int:
    from modelops_serving.launch import free_port

    return free_port()

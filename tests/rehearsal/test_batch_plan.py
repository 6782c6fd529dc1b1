"""What `modelops up` decides for a batch environment before anything starts (pure: no
process, no file): the refusals, the period, the run's command, Prometheus' configuration,
what it prints; and when the scheduler starts the next run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.errors import RehearsalError
from modelops.params import BatchEnvironmentParams, Params
from modelops.rehearsal import processes
from modelops.rehearsal.batchplan import (
    BatchRehearsal,
    check_kind,
    plan_batch,
    scheduler_config,
    to_text,
)
from modelops.rehearsal.plan import Served, UpRequest, pushgateway_prometheus_config
from modelops.rehearsal.scheduler import next_start
from tests.rehearsal.support import UP_REQUEST
from tests.support import template_params

REQUEST = dataclasses.replace(UP_REQUEST, env="nightly")
MODEL = Served(Path("/project/.rehearsal/models/a"), "a" * 64, "release v3")
ROOT = Path("/project")


def _nightly(**changes: Any) -> BatchEnvironmentParams:
    nightly = Params.model_validate(template_params()).deploy.environments["nightly"]
    assert isinstance(nightly, BatchEnvironmentParams)
    return nightly.model_copy(update=changes)


def _plan(request: UpRequest = REQUEST, *, test_rows: int = 4000, **changes: Any) -> BatchRehearsal:
    return plan_batch(
        request,
        _nightly(**changes),
        job="churn-nightly",
        model=MODEL,
        model_version="v3",
        test_rows_file=ROOT / "data" / "prepared" / "test.parquet",
        test_rows=test_rows,
        min_drift_rows=1000,
        output=ROOT / ".rehearsal" / "scores",
    )


# changes to the request, a batch environment -> the refusal (None: accepted)
KINDS = [
    ({}, True, None),
    ({"batch_input": "day.parquet"}, True, None),
    ({}, False, None),
    ({"shift": "tenure_months=3"}, True, "--shift drifts real-time traffic; score a drifted"),
    ({"canary_percent": 50}, True, "--canary-percent splits traffic"),
    ({"canary_errors": 0.2}, True, "--canary-errors fails a canary's requests"),
    ({"batch_input": "day.parquet"}, False, "--batch-input is for a batch environment, and "),
]


@pytest.mark.parametrize(("changes", "batch", "refusal"), KINDS)
def test_options_of_the_other_kind_of_environment_are_refused_not_ignored(
    changes: dict[str, Any], batch: bool, refusal: str | None
) -> None:
    request = dataclasses.replace(REQUEST, **changes)
    if refusal is None:
        check_kind(request, batch=batch)
        return
    with pytest.raises(RehearsalError, match=refusal.replace("(", r"\(")):
        check_kind(request, batch=batch)


# schedule, time scale -> (seconds between two runs' starts, seconds until a run is missed)
PERIODS = [
    ("0 2 * * *", 60.0, 1440.0, 1800),  # a day; 30 h with the 6 h timeout
    ("0 2 * * *", 36_000.0, 2.4, 3),
    ("@hourly", 60.0, 60.0, 420),
    ("0 2 * * 1-5", 60.0, 4320.0, 4680),  # Friday to Monday: 3 days
]


@pytest.mark.parametrize(("schedule", "scale", "period", "missed"), PERIODS)
def test_runs_come_every_longest_gap_of_the_schedule_in_compressed_time(
    schedule: str, scale: float, period: float, missed: int
) -> None:
    batch = _plan(dataclasses.replace(REQUEST, time_scale=scale), schedule=schedule)
    assert batch.period_seconds == pytest.approx(period)
    assert batch.missed_after_seconds == missed


def test_a_run_is_the_cronjobs_command_pushing_where_the_rules_look() -> None:
    config = scheduler_config(
        _plan(), score=Path("/s/modelops-score"), ledger=ROOT / ".rehearsal" / "runs.jsonl"
    )
    command = config["command"]
    assert command[0] == "/s/modelops-score"
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert flags == {
        "--model": "/project/.rehearsal/models/a",
        "--model-hash": "a" * 64,
        "--input": "/project/data/prepared/test.parquet",
        "--output": "/project/.rehearsal/scores",
        "--id-column": "customer_id",
        "--max-refused": "1000",
        "--batch-rows": "100000",
        "--pushgateway": "http://127.0.0.1:9091",
        "--push-job": "churn-nightly",
        "--push-label": "namespace=churn-batch",
        "--model-version": "v3",
    }
    assert "--run-id" not in command, "the scheduler numbers each run"
    assert config["period_seconds"] == 1440.0


def test_another_table_is_scored_as_given_and_too_few_test_rows_are_said() -> None:
    given = _plan(dataclasses.replace(REQUEST, batch_input="/data/day.parquet"), test_rows=400)
    assert (given.input, given.notes) == (Path("/data/day.parquet"), ())
    few = _plan(test_rows=400)
    assert few.notes == (
        "drift is judged on at least 1,000 rows and the test rows are 400: give a bigger "
        "table with --batch-input to see it",
    )


def test_what_up_prints_names_every_address_the_runs_and_what_to_try() -> None:
    text = to_text(_plan(test_rows=400), [11, 12, 13, 14], state=".rehearsal", root=ROOT)
    lines = text.splitlines()
    assert lines[0] == (
        "up: 4 processes (PIDs 11, 12, 13, 14); nightly's runs every 1440 s (`0 2 * * *`: "
        "24 h at most between two runs, divided by 60), the first now"
    )
    assert "nightly's batch rules, windows divided by 60: a run is missed after 1800 s" in text
    assert (
        "  Pushgateway  http://127.0.0.1:9091  (runs push as job=churn-nightly, "
        "namespace=churn-batch, model_version=v3)"
    ) in lines
    assert "  model        aaaaaaaaaaaa (release v3)" in lines
    assert "  input        data/prepared/test.parquet (the prepared test rows, 400)" in lines
    assert "  output       .rehearsal/scores (replaced by every run that succeeds)" in lines
    assert "  faster       a run a minute: --time-scale 1440" in lines
    assert any(line.startswith("  note         drift is judged on at least") for line in lines)
    assert '  modelops_batch_rows{job="churn-nightly", namespace="churn-batch"}' in lines
    assert lines[-1] == "Stop everything with: make down"


def test_prometheus_scrapes_the_pushgateway_keeping_the_pushed_labels() -> None:
    config = yaml.safe_load(
        pushgateway_prometheus_config(
            "127.0.0.1:9091",
            rule_files=["/state/rules.yaml"],
            alertmanager="127.0.0.1:9093",
            itself="127.0.0.1:9090",
        )
    )
    gateway, itself = config["scrape_configs"]
    assert gateway == {
        "job_name": "pushgateway",
        "honor_labels": True,
        "static_configs": [{"targets": ["127.0.0.1:9091"]}],
    }
    assert itself["static_configs"] == [{"targets": ["127.0.0.1:9090"]}]
    assert config["rule_files"] == ["/state/rules.yaml"]


# first run's start, period, now -> the next start
STARTS = [
    (0.0, 10.0, 3.0, 10.0),  # the run took 3 s: the next at the next scheduled time
    (0.0, 10.0, 10.0, 20.0),
    (0.0, 10.0, 25.0, 30.0),  # it overlapped the 10th and 20th: both skipped (Forbid)
    (100.0, 2.4, 101.0, 102.4),
]


@pytest.mark.parametrize(("first", "period", "now", "expected"), STARTS)
def test_a_run_starts_at_the_next_scheduled_time_and_never_overlaps_another(
    first: float, period: float, now: float, expected: float
) -> None:
    assert next_start(first, period, now) == pytest.approx(expected)


def test_the_pushgateway_is_found_as_configured_or_on_path(tmp_path: Path) -> None:
    binary = tmp_path / "prometheus-pushgateway"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert processes.find_pushgateway({"PATH": str(tmp_path)}) == str(binary)
    assert processes.find_pushgateway({"PUSHGATEWAY": str(binary), "PATH": ""}) == str(binary)
    with pytest.raises(RehearsalError, match="apt-get install prometheus-pushgateway"):
        processes.find_pushgateway({"PATH": str(tmp_path / "none")})

"""The batch kind of `deploy.environments`: what it accepts, and errors that name the key."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelops.errors import ParamsError
from modelops.params import BatchEnvironmentParams, params_schema, parse_params
from modelops.params.batch import MAX_BATCH_NAME, cron_problem
from tests.support import template_params

NIGHTLY: dict[str, Any] = {
    "namespace": "churn-batch",
    "strategy": "batch",
    "schedule": "0 2 * * *",
    "input": {"url": "s3://data/churn/scoring"},
    "output": {"claim": "churn-scores", "path": "nightly"},
}


def _params(environment: dict[str, Any], *, name: str = "nightly") -> dict[str, Any]:
    params = copy.deepcopy(template_params())
    params["deploy"]["environments"][name] = environment
    return params


def _batch(**changes: Any) -> BatchEnvironmentParams:
    environment = parse_params(_params({**NIGHTLY, **changes})).deploy.environments["nightly"]
    assert isinstance(environment, BatchEnvironmentParams)
    return environment


def _error(**changes: Any) -> str:
    with pytest.raises(ParamsError) as caught:
        parse_params(_params({**NIGHTLY, **changes}))
    return str(caught.value)


def test_given_strategy_batch_then_the_environment_is_a_batch_one_with_safe_defaults() -> None:
    nightly = _batch()
    assert (nightly.engine, nightly.time_zone, nightly.suspend) == ("local", "Etc/UTC", False)
    assert nightly.concurrency_policy == "Forbid", "a run never overlaps another by default"
    assert nightly.starting_deadline_seconds >= 10, "Kubernetes may miss a shorter deadline"
    assert nightly.timeout == "6h", "a hung run does not block every later one (Forbid)"
    assert nightly.spark is None


@pytest.mark.parametrize(
    "schedule",
    ["0 2 * * *", "*/15 1-5 * jan-mar mon-fri", "30 4 1,15 * ?", "0 0 * * 0-6/2", "@daily"],
)
def test_standard_cron_schedules_are_accepted(schedule: str) -> None:
    assert cron_problem(schedule) is None
    assert _batch(schedule=schedule).schedule == schedule


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("0 25 * * *", "hour '25': '25' is outside 0-23"),
        ("0 2 * *", "a cron schedule has 5 fields"),
        ("0 2 * * * *", "has 6"),
        ("0 2 * * 7", "day of week '7': '7' is outside 0-6 or sun-sat"),
        ("0 2 * foo *", "month 'foo'"),
        ("0 5-2 * * *", "the range 5-2 runs backwards"),
        ("*/0 * * * *", "the step after / must be"),
        ("@nightly", "@nightly is not one of @annually, @daily"),
        ("CRON_TZ=Europe/Paris 0 2 * * *", "set time_zone instead"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_key_and_the_field(
    schedule: str, expected: str
) -> None:
    message = _error(schedule=schedule)
    assert "deploy.environments.nightly.schedule: " in message
    assert expected in message


def test_an_unknown_time_zone_is_refused_with_examples() -> None:
    message = _error(time_zone="Mars/Olympus")
    assert "deploy.environments.nightly.time_zone: 'Mars/Olympus' is not an IANA time zone" in (
        message
    )
    assert _batch(time_zone="Europe/Paris").time_zone == "Europe/Paris"


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("canary_steps", [10, 100], "there is no traffic to split"),
        ("canary_replicas", 2, "not replicas serving traffic"),
        ("shadow_first", True, "takes a new model at once"),
        ("autoscaling", {"min_replicas": 2}, "size it with resources"),
        ("target", "kserve", "not a model server on Seldon or KServe"),
    ],
)
def test_real_time_keys_are_refused_saying_why_and_what_to_do(
    key: str, value: Any, why: str
) -> None:
    message = _error(**{key: value})
    assert f"deploy.environments.nightly.{key}: not for strategy batch: " in message
    assert why in message
    assert "Delete this key" in message
    assert "modelops release rollback" in message, "the way back is said"


def test_a_typo_suggests_the_key_and_never_offers_a_refused_one() -> None:
    message = _error(scheduel="0 2 * * *")
    assert "deploy.environments.nightly.scheduel: unknown key (did you mean 'schedule'?)" in message
    assert "canary_steps" not in message, "a key that is refused is not 'allowed here'"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/data/scoring.csv", "input: give {url: s3://bucket/prefix}"),
        ({"url": "s3://a/b", "claim": "c"}, "input: give either url"),
        ({}, "input: give either url"),
        ({"url": "/no/scheme"}, "input.url: String should match pattern"),
        ({"url": "s3://a/b", "path": "x"}, "path is a folder inside a claim"),
        ({"claim": "data", "path": "../etc"}, "input.path: give a folder relative"),
    ],
)
def test_the_input_is_a_url_or_a_claim_and_says_so(location: Any, expected: str) -> None:
    message = _error(input=location)
    assert f"deploy.environments.nightly.{expected}" in message or expected in message, message
    assert "deploy.environments.nightly.input" in message


def test_the_output_is_a_folder_inside_a_claim() -> None:
    message = _error(output={"claim": "churn-scores"})
    assert "deploy.environments.nightly.output: give path, a folder inside the claim" in message
    assert _batch(output={"claim": "scores", "path": "churn/nightly/"}).output.path == (
        "churn/nightly"
    )
    assert "output.path: give a folder relative" in _error(output={"claim": "s", "path": "/x"})


def test_runs_may_never_overlap() -> None:
    message = _error(concurrency_policy="Allow")
    assert "deploy.environments.nightly.concurrency_policy: Allow would start a run" in message
    assert _batch(concurrency_policy="Replace").concurrency_policy == "Replace"


def test_the_spark_engine_needs_its_settings_and_only_it_takes_them() -> None:
    assert "nightly.spark: engine spark needs its settings" in _error(engine="spark")
    assert "nightly.spark: only with engine: spark" in _error(spark={})
    spark = _batch(engine="spark", spark={"executor": {"instances": 4}}).spark
    assert spark is not None
    assert spark.executor.instances == 4
    assert (spark.executor.cores, spark.executor.memory) == (2, "4g"), "its own defaults kept"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("resources", {"cpu": "1"}),
        ("timeout", "1h"),
        ("starting_deadline_seconds", 600),
    ],
)
def test_local_engine_keys_are_refused_with_the_spark_engine(key: str, value: Any) -> None:
    message = _error(engine="spark", spark={}, **{key: value})
    assert f"deploy.environments.nightly.{key}: not for engine spark: " in message


def test_what_modelops_params_prints_reads_back_for_either_engine() -> None:
    for changes in ({}, {"engine": "spark", "spark": {"driver": {"cores": 2}}}):
        batch = _batch(**changes)
        again = _batch(**{**batch.model_dump(mode="json"), "strategy": "batch"})
        assert again == batch


def test_spark_memory_is_in_sparks_notation() -> None:
    message = _error(engine="spark", spark={"driver": {"memory": "2Gi"}})
    assert "deploy.environments.nightly.spark.driver.memory: String should match" in message


def test_a_name_too_long_for_a_cronjob_is_refused_before_anything_renders() -> None:
    name = "n" * (MAX_BATCH_NAME - len("churn-") + 1)
    with pytest.raises(ParamsError) as caught:
        parse_params(_params(NIGHTLY, name=name))
    assert f"{name}: its batch objects would be named churn-{name}" in str(caught.value)
    assert "shorten the environment's name or deploy.name" in str(caught.value)


def test_a_wrong_strategy_lists_the_three_kinds() -> None:
    message = _error(strategy="nightly")
    assert "deploy.environments.nightly: Input tag 'nightly'" in message
    assert "'direct', 'canary', 'batch'" in message


def test_the_schema_documents_the_batch_keys_and_hides_the_refused_ones() -> None:
    batch = params_schema()["$defs"]["BatchEnvironmentParams"]["properties"]
    assert {"schedule", "engine", "input", "output", "concurrency_policy"} <= set(batch)
    refused = {"canary_steps", "canary_replicas", "shadow_first", "autoscaling", "target"}
    assert not refused & set(batch)
    dumped = _batch().model_dump()
    assert "canary_steps" not in dumped, "never written back"


def test_real_time_errors_still_name_their_key_through_the_strategy_tag() -> None:
    # Given the environments are tagged by strategy, when a real-time key is wrong, then the
    # path the user reads has no tag in it (pydantic adds `direct` to its own path).
    params = copy.deepcopy(template_params())
    params["deploy"]["environments"]["staging"]["autoscaling"] = {"min_replicas": 0}
    with pytest.raises(ParamsError) as caught:
        parse_params(params)
    assert "deploy.environments.staging.autoscaling.min_replicas: Input should be" in str(
        caught.value
    )


def test_an_environment_named_like_a_strategy_keeps_its_name_in_errors() -> None:
    with pytest.raises(ParamsError) as caught:
        parse_params(_params({**NIGHTLY, "schedule": "bad"}, name="batch"))
    assert "deploy.environments.batch.schedule: " in str(caught.value)

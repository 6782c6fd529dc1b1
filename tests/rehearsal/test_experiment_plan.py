"""What `modelops up` decides for an experiment, and its units' traffic (pure: no process): the
replicas and their parameters, the refusals, the units, the lost ones and the true effect."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from modelops_contract import assign, parse_experiment

from modelops.data import Schema
from modelops.errors import RehearsalError
from modelops.rehearsal import units
from modelops.rehearsal.experiment import (
    DEFAULT_UNITS,
    check_no_experiment,
    plan_experiment,
    to_text,
    variant_shares,
)
from modelops.rehearsal.plan import Served, prometheus_config, server_parameters
from modelops.releases.state import Experiment, ModelVersion, Variant
from tests.rehearsal.support import UP_REQUEST

SCHEMA = Schema(
    label="churned",
    positive_label="1",
    negative_label="0",
    categorical=("plan",),
    numeric=("tenure_months",),
    id="customer_id",
)
REQUEST = dataclasses.replace(UP_REQUEST, minutes=2.0, rows=4, label_delay=3.0, shift_for=30.0)
V1 = ModelVersion("v1", "model-store/churn/" + "a" * 64, "a" * 64, "d", "0" * 40)
V2 = ModelVersion("v2", "model-store/churn/" + "b" * 64, "b" * 64, "d", "0" * 40)
EXPERIMENT = Experiment(
    name="offer-v2",
    salt="offer-v2",
    unit="customer_id",
    variants=(Variant("stable", V1, 50), Variant("b", V2, 50)),
)

SERVED = {
    "stable": Served(Path("/copies/a"), "a" * 64, "release v1"),
    "b": Served(Path("/copies/b"), "b" * 64, "release v2"),
}


def _plan(**changes: Any) -> Any:
    experiment = changes.pop("experiment", EXPERIMENT)
    served = changes.pop("served", SERVED)
    return plan_experiment(
        dataclasses.replace(REQUEST, **changes),
        schema=SCHEMA,
        experiment=experiment,
        served=served,
        threshold=0.4,
    )


def test_two_replicas_of_stable_serve_every_variant_from_its_fetched_copy() -> None:
    rehearsal = _plan()
    assert [(s.name, s.track, s.http_port, s.metrics_port) for s in rehearsal.servers] == [
        ("stable-0", "stable", 9000, 6000),
        ("stable-1", "stable", 9001, 6001),
    ]
    first, second = rehearsal.servers
    assert first.experiment == second.experiment
    served = parse_experiment(first.experiment)
    assert [(v.name, v.model_version, v.directory, v.share) for v in served.variants] == [
        ("stable", "v1", "/copies/a", 50),
        ("b", "v2", "/copies/b", 50),
    ]
    parameters = {
        p["name"]: p["value"] for p in server_parameters(first, threshold=0.4, business_value=None)
    }
    assert parameters["experiment"] == first.experiment
    assert (parameters["model_version"], parameters["model_hash"]) == ("v1", "a" * 64)
    jobs = yaml.safe_load(prometheus_config(rehearsal.servers, namespace="churn-prod"))
    labels = [c["labels"] for c in jobs["scrape_configs"][0]["static_configs"]]
    assert [(x["track"], x["pod"], x["namespace"]) for x in labels] == [
        ("stable", "stable-0", "churn-prod"),
        ("stable", "stable-1", "churn-prod"),
    ]
    assert rehearsal.traffic.canary_percent == 0
    assert not rehearsal.follow


# (--units, the unit field) -> units made up (None: the test rows' own values)
UNIT_SOURCES = [
    (None, "customer_id", None),
    (500, "customer_id", 500),
    (None, "account", DEFAULT_UNITS),
    (None, "plan", None),
]


@pytest.mark.parametrize(("given", "unit", "count"), UNIT_SOURCES)
def test_units_are_the_test_rows_own_unless_made_up(
    given: int | None, unit: str, count: int | None
) -> None:
    experiment = dataclasses.replace(EXPERIMENT, unit=unit)
    made = _plan(units=given, experiment=experiment).traffic.units
    assert made.count == count
    assert made.appended is (unit != "plan"), "a model input is in the rows already"


# changes to the request (or the plan) -> the refusal
REFUSALS = [
    ({"effect": ["c=0.5"]}, "--effect c=0.5: 'c' is not a variant of the experiment (stable, b)"),
    (
        {"effect": ["b"]},
        "--effect must be VARIANT=SHARE with a number, got 'b' (e.g. --effect b=0.3)",
    ),
    ({"broken_split": ["b=1.5"]}, "--broken-split b=1.5: the share must be from 0 to 1, got 1.5"),
    ({"broken_split": ["b=-0.1"]}, "the share must be from 0 to 1, got -0.1"),
    ({"effect": ["b=0.1", "b=0.2"]}, "--effect names b twice"),
    ({"canary_percent": 20}, "--canary-percent: production runs experiment offer-v2"),
    ({"canary_errors": 0.1}, "--canary-errors: production runs experiment offer-v2"),
    ({"units": 0}, "--units must be from 1 to 1000000, got 0"),
    (
        {"units": 10, "experiment": dataclasses.replace(EXPERIMENT, unit="plan")},
        "--units: the unit plan is a model input",
    ),
    (
        {"served": {**SERVED, "b": Served(Path("/m"), "c" * 64, "the workspace model: gone")}},
        "variant b's model v2 is not in the store (the workspace model: gone)",
    ),
]


@pytest.mark.parametrize(("changes", "message"), REFUSALS)
def test_what_an_experiment_cannot_rehearse_is_refused(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(RehearsalError) as refused:
        _plan(**changes)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    "changes", [{"effect": ["b=0.2"]}, {"broken_split": ("b=0.3",)}, {"units": 100}]
)
def test_the_experiments_options_are_refused_where_none_runs(changes: dict[str, Any]) -> None:
    with pytest.raises(RehearsalError, match="rehearse an A/B experiment, and production's"):
        check_no_experiment(dataclasses.replace(REQUEST, **changes))
    check_no_experiment(REQUEST)


def test_variant_shares_are_read_per_variant() -> None:
    assert variant_shares("--effect", ["b=0.25", "stable=0"], ["stable", "b"]) == {
        "b": 0.25,
        "stable": 0.0,
    }


def test_what_up_prints_for_an_experiment_names_the_verdicts_command() -> None:
    text = to_text(_plan(effect=["b=0.5"], broken_split=["b=0.3"]), [1, 2, 3], state=".rehearsal")
    lines = text.splitlines()
    assert lines[0] == (
        "up: 3 processes (PIDs 1, 2, 3); traffic for 2 min at 5 requests/s over 2 replicas of "
        "stable from the test rows' units, truth after 3 s"
    )
    assert "  experiment  offer-v2: stable 50% (v1), b 50% (v2), units by customer_id" in lines
    assert "  effect      b: 50% of the rows it answers" in text
    assert "  broken      the client loses 30% of b's units" in text
    assert (
        "  verdict     modelops experiment analyze --env production --prometheus "
        "http://127.0.0.1:9090"
    ) in lines
    assert "  stable-1    http://127.0.0.1:9001  model v1 (replica 2 of 2" in text
    assert lines[-1] == "Stop everything with: make down"


def _settings(**changes: Any) -> dict[str, Any]:
    plan = _plan(units=changes.pop("count", 4000))
    settings: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(plan.traffic.units)))
    return {**settings, **changes}


ROWS = pd.DataFrame(
    {
        "customer_id": ["c1", "c2", "c3"],
        "plan": ["basic", None, "pro"],
        "tenure_months": [3.0, float("nan"), 7.0],
        "churned": [1, 0, 0],
    }
)


def test_a_broken_split_loses_about_its_share_of_that_variants_units_only() -> None:
    settings = _settings(broken={"b": 0.3})
    made = units.units_of(ROWS, settings, np.random.default_rng(0))
    split = [("stable", 50), ("b", 50)]
    kept = [assign(str(value), salt="offer-v2", split=split) for value in made.values]
    assert kept.count("stable") == pytest.approx(2000, abs=120)
    assert kept.count("b") == pytest.approx(1400, abs=120)
    assert made.lost == 4000 - len(made.values)
    assert len(made.rows) == len(made.values)
    assert set(made.rows.tolist()) <= {0, 1, 2}


def test_units_send_their_own_row_with_the_unit_as_one_more_column() -> None:
    settings = _settings(count=None)
    made = units.units_of(ROWS, settings, np.random.default_rng(0))
    assert made.values == ["c1", "c2", "c3"]
    stream = units.unit_requests(
        ROWS, ["plan", "tenure_months"], "churned", made, settings, per_request=50,
        rng=np.random.default_rng(1),
    )  # fmt: skip
    request, truths = next(stream)
    assert request["data"]["names"] == ["plan", "tenure_months", "customer_id"]
    table = {"c1": (["basic", 3.0], "1"), "c2": ([None, None], "0"), "c3": (["pro", 7.0], "0")}
    for row, truth in zip(request["data"]["ndarray"], truths, strict=True):
        assert (row[:2], truth[0]) == table[row[2]]
    assert {row[2] for row in request["data"]["ndarray"]} == {"c1", "c2", "c3"}


def test_a_true_effect_makes_the_variants_own_prediction_the_truth() -> None:
    response = {
        "data": {"names": ["0", "1"], "ndarray": [[0.3, 0.7], [0.9, 0.1], [0.2, 0.8]]},
        "meta": {"tags": {"variants": ["b", "b", "stable"]}},
    }
    truths = [["0"], ["1"], ["0"]]
    always = _settings(effect={"b": 1.0})
    assert units.with_effect(truths, response, always, lambda: 0.5) == [["1"], ["0"], ["0"]]
    sometimes = _settings(effect={"b": 0.4})
    assert units.with_effect(truths, response, sometimes, lambda: 0.5) == truths
    assert units.with_effect(truths, response, _settings(), lambda: 0.0) == truths
    untagged = {"data": response["data"], "meta": {"tags": {}}}
    assert units.with_effect(truths, untagged, always, lambda: 0.0) == truths

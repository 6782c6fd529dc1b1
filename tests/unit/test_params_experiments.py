"""`experiments` in params.yaml: what an experiment accepts, and refusals that name key and fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelops.errors import ParamsError
from modelops.params import ExperimentParams, params_schema, parse_params
from tests.support import template_params

B_HASH = "b" * 64
C_HASH = "c" * 64
OFFER: dict[str, Any] = {
    "name": "offer-v2",
    "unit": "customer_id",
    "variants": {"b": B_HASH},
    "split": {"stable": 50, "b": 50},
    "minimum_effect": 2.0,
}


def _params(environment: str = "production", **changes: Any) -> dict[str, Any]:
    params = copy.deepcopy(template_params())
    params["experiments"] = {environment: {**OFFER, **changes}}
    return params


def _experiment(**changes: Any) -> ExperimentParams:
    return parse_params(_params(**changes)).experiments["production"]


def _error(params: dict[str, Any]) -> str:
    with pytest.raises(ParamsError) as caught:
        parse_params(params)
    return str(caught.value)


def test_the_template_declares_no_experiment() -> None:
    assert parse_params(template_params()).experiments == {}


def test_an_experiment_gets_safe_defaults() -> None:
    offer = _experiment()
    assert (offer.primary, offer.alpha, offer.power) == ("business_value", 0.05, 0.8)
    assert offer.assignment_salt == "offer-v2", "the name seeds the assignment by default"
    assert offer.candidates == ("b",)
    assert offer.guardrails.errors.margin == 0.002
    assert offer.covariate is None


def test_three_variants_and_an_explicit_salt() -> None:
    offer = _experiment(
        variants={"b": B_HASH, "c": C_HASH}, split={"stable": 40, "b": 30, "c": 30}, salt="s1"
    )
    assert offer.candidates == ("b", "c")
    assert offer.assignment_salt == "s1"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"split": {"stable": 60, "b": 50}}, "split must add up to 100, it adds up to 110"),
        ({"split": {"stable": 100}}, "missing ['b']"),
        ({"split": {"stable": 50, "b": 40, "x": 10}}, "not a variant: ['x']"),
        ({"split": {"stable": 100, "b": 0}}, "at least 1% of units"),
        ({"variants": {"b": "3bfc2695"}}, "variant b: '3bfc2695' is not a content hash"),
        ({"variants": {"stable": B_HASH}}, "'stable' is the control"),
        ({"variants": {}}, "name at least one candidate"),
        ({"variants": {"B!": B_HASH}, "split": {"stable": 50, "B!": 50}}, "variant name 'B!'"),
        (
            {"variants": {"b": B_HASH, "c": B_HASH}, "split": {"stable": 40, "b": 30, "c": 30}},
            "two variants name the same model",
        ),
        ({"minimum_effect": 0}, "experiments.production.minimum_effect"),
        ({"alpha": 0.6}, "experiments.production.alpha"),
        ({"primary": "roc_auc"}, "experiments.production.primary"),
        ({"unit": "churned"}, "experiments.production.unit: 'churned' is the label"),
        ({"covariate": "customer_id"}, "covariate and unit are the same field"),
        ({"guardrails": {"latency": {"margin": -1}}}, "guardrails.latency.margin"),
        ({"guardrails": {"speed": {"margin": 1}}}, "unknown key"),
    ],
)
def test_a_bad_experiment_is_refused_naming_the_key_and_the_fix(
    changes: dict[str, Any], expected: str
) -> None:
    assert expected in _error(_params(**changes))


def test_an_experiment_needs_a_real_time_environment_that_exists() -> None:
    assert "experiments.canary: no such environment" in _error(_params("canary"))
    params = _params("nightly")
    params["deploy"]["environments"]["nightly"] = {
        "namespace": "churn-batch",
        "strategy": "batch",
        "schedule": "0 2 * * *",
        "input": {"url": "s3://data/churn/scoring"},
        "output": {"claim": "churn-scores", "path": "nightly"},
    }
    assert "nightly is a batch environment" in _error(params)


def test_an_experiment_judged_on_truth_needs_truth_to_come_back() -> None:
    params = _params()
    params["monitoring"]["labels"]["expected"] = False
    assert "monitoring.labels.expected is false" in _error(params)


def test_business_value_needs_monitoring_business() -> None:
    params = _params()
    params["monitoring"]["business"] = None
    assert "business_value needs monitoring.business" in _error(params)
    params["experiments"]["production"]["primary"] = "recall"
    params["experiments"]["production"]["guardrails"] = {
        "business_value": {"margin": 1, "skip": "no values"}
    }
    assert parse_params(params).experiments["production"].primary == "recall"


def test_the_schema_documents_every_experiment_key() -> None:
    schema = params_schema()
    properties = schema["$defs"]["ExperimentParams"]["properties"]
    assert {"unit", "variants", "split", "minimum_effect", "guardrails"} <= set(properties)
    assert all(properties[key].get("description") for key in ("unit", "split", "covariate"))

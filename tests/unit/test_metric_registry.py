"""The metric registry is the one list: what the pipeline computes, compares and shows agrees."""

from __future__ import annotations

import re

import numpy as np
import pytest

from modelops import metric_registry
from modelops.gates.bootstrap import METRICS as PAIRED
from modelops.io import flatten
from modelops.metric_registry import METRICS, better, with_direction
from modelops.metrics import classification_metrics
from modelops.params import params_schema
from tests.support import REPO_ROOT


def _computed() -> dict[str, object]:
    truth = np.array([True, False, True, False, False, True])
    proba = np.array([0.8, 0.3, 0.4, 0.6, 0.1, 0.9])
    metrics = classification_metrics(
        truth, proba, classes=("no", "yes"), threshold=0.5, train_positive_rate=0.5
    )
    return flatten(metrics.to_dict())


def test_every_figure_of_metrics_json_is_registered_and_every_metric_is_computed() -> None:
    # Given the keys of metrics/model.json (per-class figures by their last part; the naive
    # baseline's figures are the same metrics of another model)
    keys = {key.rsplit(".", 1)[-1] for key in _computed() if not key.startswith("baseline.")}
    registered = {metric.name for metric in METRICS}
    # Then each has a registry entry, and each entry is computed
    assert keys == registered, (
        f"computed but not registered: {sorted(keys - registered)}; registered but not "
        f"computed: {sorted(registered - keys)}"
    )


def test_the_champion_gate_can_compare_every_metric_with_a_direction() -> None:
    directed = {*with_direction("higher"), *with_direction("lower")}
    assert set(PAIRED) == directed, "gates/bootstrap.METRICS computes each metric with a direction"


def test_the_champion_params_allow_exactly_the_metrics_of_each_direction() -> None:
    champion = params_schema()["$defs"]["ChampionGateParams"]["properties"]
    assert champion["max_drop"]["propertyNames"]["enum"] == list(with_direction("higher"))
    assert champion["max_rise"]["propertyNames"]["enum"] == list(with_direction("lower"))


def test_make_exp_show_keeps_the_registered_experiment_columns() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    found = re.search(r"^EXP_METRICS := (.+)$", makefile, flags=re.MULTILINE)
    assert found, "the Makefile sets EXP_METRICS"
    assert set(found.group(1).split("|")) == set(metric_registry.EXPERIMENT_COLUMNS), (
        "Makefile EXP_METRICS must list metric_registry.EXPERIMENT_COLUMNS"
    )


@pytest.mark.parametrize(
    ("name", "direction"),
    [("roc_auc", "higher"), ("log_loss", "lower"), ("rows", None), ("not_a_metric", None)],
)
def test_a_metric_improves_in_its_registered_direction(name: str, direction: str | None) -> None:
    assert better(name) == direction


def test_a_selection_names_registered_metrics_only() -> None:
    assert metric_registry.HEADLINE[0] == "roc_auc"
    with pytest.raises(ValueError, match=r"not in metric_registry\.METRICS: roc$"):
        metric_registry._registered("roc_auc", "roc")

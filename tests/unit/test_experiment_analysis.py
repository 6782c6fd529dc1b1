"""An experiment's counts judged (pure): the split, the KPI, the guardrails, the documents."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest
from modelops_contract import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    MODEL_VERSION,
    TRUE_NEGATIVE,
    TRUE_POSITIVE,
)

from modelops.canary.evidence import TrackCounts
from modelops.experiments import document
from modelops.experiments.analysis import Analysis
from modelops.experiments.evidence import (
    CovariateSums,
    Evidence,
    VariantCounts,
    experiment_plan,
    judge,
    reference_cells,
)
from modelops.experiments.queries import experiment_queries, variant_counts
from modelops.params import ExperimentParams
from modelops.releases.state import Experiment, Variant
from tests.deploy.support import model_version

VALUES = {TRUE_POSITIVE: 120.0, FALSE_POSITIVE: -15.0, TRUE_NEGATIVE: 0.0, FALSE_NEGATIVE: 0.0}
REFERENCE = {"positive_rate": 0.23, "precision": 0.69, "recall": 0.30}
V1, V2 = model_version("v1"), model_version("v2")
SETTINGS = ExperimentParams(
    name="offer-v2",
    unit="customer_id",
    variants={"b": V2.model_hash},
    split={"stable": 50, "b": 50},
    minimum_effect=2.0,
)


def _cells(rows: float, *, precision: float = 0.69) -> dict[str, float]:
    """Labelled rows at the reference's shares, with another precision."""
    predicted = 0.23 * rows
    hits = precision * predicted
    return {
        TRUE_POSITIVE: hits,
        FALSE_POSITIVE: predicted - hits,
        FALSE_NEGATIVE: 0.53 * predicted,
        TRUE_NEGATIVE: rows - predicted - 0.53 * predicted,
    }


def _served(requests: float, *, errors: float = 0.0, slow: float = 0.0) -> TrackCounts:
    fast = requests - slow
    return TrackCounts(
        requests=requests,
        server_errors=errors,
        latency=((0.05, fast * 0.9), (0.1, fast), (math.inf, requests)),
        positive=0.23 * requests,
        predicted=requests,
    )


def _evidence(
    *,
    units: tuple[float, float] = (50_000, 50_000),
    rows: float = 40_000,
    precision_b: float = 0.69,
    errors_b: float = 0.0,
    processes: float = 1.0,
) -> Evidence:
    stable = VariantCounts(
        "stable", V1.version, units[0], units[0], 10, _cells(rows), served=_served(units[0])
    )
    b = VariantCounts(
        "b",
        V2.version,
        units[1],
        units[1],
        0,
        _cells(rows, precision=precision_b),
        served=_served(units[1], errors=errors_b),
    )
    return Evidence(
        environment="production",
        experiment="offer-v2",
        started_at="2026-12-01T00:00:00Z",
        seconds=5 * 86_400,
        processes=processes,
        variants={"stable": stable, "b": b},
        latency_threshold=0.1,
    )


def _judged(evidence: Evidence, settings: ExperimentParams = SETTINGS) -> Any:
    cells = reference_cells(REFERENCE)
    assert cells is not None
    return judge(evidence, settings, values=VALUES, plan=experiment_plan(settings, cells, VALUES))


def test_reference_cells_follow_from_positive_rate_precision_and_recall() -> None:
    cells = reference_cells(REFERENCE)
    assert cells is not None
    assert sum(cells.values()) == pytest.approx(1.0)
    assert cells[TRUE_POSITIVE] / (cells[TRUE_POSITIVE] + cells[FALSE_POSITIVE]) == pytest.approx(
        0.69
    )
    assert cells[TRUE_POSITIVE] / (cells[TRUE_POSITIVE] + cells[FALSE_NEGATIVE]) == pytest.approx(
        0.30
    )
    assert reference_cells({"positive_rate": 0.0, "precision": 0.5, "recall": 0.5}) is None


def test_a_clearly_better_candidate_wins_and_an_equal_one_does_not() -> None:
    better = _judged(_evidence(precision_b=0.85))
    assert better.verdict.kind == "winner"
    assert better.verdict.winner == "b"
    assert all(g.outcome == "pass" for g in better.guardrails)
    same = _judged(_evidence())
    assert same.verdict.kind in ("no-difference", "keep-running")
    assert same.verdict.winner is None


def test_a_broken_split_stops_before_anything_else_is_judged() -> None:
    judged = _judged(_evidence(units=(52_000, 48_000), precision_b=0.85))
    assert judged.srm.mismatch
    assert judged.verdict.kind == "stop"
    assert "b" in judged.verdict.reasons[0]


def test_units_counted_by_several_processes_weigh_less_in_the_split() -> None:
    """A 51/49 split on 100k units is a mismatch counted once, not when 8 processes may
    each have counted a unit (the counts then stand for as few as 12,500 units)."""
    once = _judged(_evidence(units=(51_000, 49_000)))
    shared = _judged(_evidence(units=(51_000, 49_000), processes=8))
    assert once.srm.mismatch
    assert not shared.srm.mismatch


def test_a_breached_guardrail_stops_the_experiment() -> None:
    judged = _judged(_evidence(precision_b=0.85, errors_b=2_000))
    errors = [g for g in judged.guardrails if g.name == "errors"]
    assert errors[0].outcome == "breached"
    assert judged.verdict.kind == "stop"


def test_little_data_keeps_running_and_says_how_much_more_would_decide() -> None:
    judged = _judged(_evidence(units=(300, 300), rows=200, precision_b=0.75))
    assert judged.verdict.kind == "keep-running"
    assert judged.verdict.exit_code == 3
    assert judged.verdict.more_units_total is not None
    assert judged.verdict.more_units_total > 0


def test_the_primary_kpi_is_not_judged_again_as_a_guardrail() -> None:
    judged = _judged(_evidence())
    assert "business_value" not in {g.name for g in judged.guardrails}
    assert judged.skipped["business_value"].startswith("the primary KPI")


def test_cuped_applies_with_a_covariate_and_narrows_the_interval() -> None:
    settings = SETTINGS.model_copy(update={"covariate": "spend_before"})
    evidence = _evidence(units=(5_000, 5_000), rows=4_000, precision_b=0.75)
    with_x = {}
    for name, counts in evidence.variants.items():
        # Rows worth more (true positives) had spent more before: x correlates with y.
        covariate = {
            cell: CovariateSums(
                rows,
                rows * (10 if cell == TRUE_POSITIVE else 1),
                rows * (101 if cell == TRUE_POSITIVE else 2),
            )
            for cell, rows in counts.cells.items()
        }
        with_x[name] = replace(counts, covariate=covariate)
    plain = _judged(evidence)
    adjusted = _judged(replace(evidence, variants=with_x), settings)
    assert adjusted.cuped.applied
    assert adjusted.cuped.reduction > 0.1
    width = [j.primaries[0].interval.high - j.primaries[0].interval.low for j in (plain, adjusted)]
    assert width[1] < width[0]


def test_prometheus_answers_become_each_variants_counts() -> None:
    offer = Experiment(
        "offer-v2",
        "offer-v2",
        "customer_id",
        (Variant("stable", V1, 50), Variant("b", V2, 50)),
    )
    queries = experiment_queries("churn-production", offer, 3600)
    assert 'namespace="churn-production"' in queries["units"]
    assert queries["units"].startswith("sum by (variant)")
    assert f'{MODEL_VERSION}=~"{V1.version}|{V2.version}"' in queries["requests"]

    def sample(value: float, **labels: str) -> dict[str, Any]:
        return {"metric": labels, "value": [0, str(value)]}

    answers = {
        "units": [sample(100, variant="stable"), sample(90, variant="b")],
        "assignments": [
            sample(120, variant="stable", assigned="true"),
            sample(7, variant="stable", assigned="false"),
            sample(110, variant="b", assigned="true"),
        ],
        "cells": [sample(30, variant="b", cell=TRUE_POSITIVE)],
        "covariate": [
            sample(50, variant="b", cell=TRUE_POSITIVE, sign="positive"),
            sample(8, variant="b", cell=TRUE_POSITIVE, sign="negative"),
        ],
        "requests": [sample(40, model_version=V2.version, outcome="ok")],
    }
    counts = variant_counts(answers, offer)
    assert (counts["stable"].units, counts["stable"].rows, counts["stable"].unassigned) == (
        100,
        120,
        7,
    )
    assert counts["b"].cells[TRUE_POSITIVE] == 30
    assert counts["b"].covariate[TRUE_POSITIVE].total == 42
    assert counts["b"].served.requests == 40
    assert counts["stable"].served.requests == 0


def test_the_documents_lead_with_the_verdict_and_carry_what_conclude_reads() -> None:
    evidence = _evidence(precision_b=0.85)
    analysis = Analysis(evidence, _judged(evidence), SETTINGS, "2026-12-06T00:00:00Z", "http://p")
    markdown = document.to_markdown(analysis)
    assert markdown.startswith("# Experiment verdict: Winner")
    assert "## 1. Sample ratio" in markdown
    assert "## 3. Guardrails (non-inferiority)" in markdown
    parsed = json.loads(document.to_json(analysis))
    assert (parsed["kind"], parsed["winner"], parsed["experiment"]) == ("winner", "b", "offer-v2")
    assert parsed["environment"] == "production"
    assert "b wins" in document.to_text(analysis)

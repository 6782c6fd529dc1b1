"""What `experiment analyze` and `experiment plan` ask Prometheus (pure): the PromQL, and its
answers as each variant's counts.

Every count is `increase(...)` over the experiment so far in the environment's namespace: the
variants' own series by `variant`, and the series every model has by `model_version` (each
variant's rows are counted under its own model's version). Built here once, so the verdict
shows exactly the PromQL it was judged on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import modelops_contract as contract
from modelops_contract import ASSIGNED, CELL, MODEL_VERSION, SIGN, TRUE, VARIANT

from modelops.canary.queries import step_queries, track_counts
from modelops.experiments.evidence import RATE_METRICS, CovariateSums, VariantCounts
from modelops.releases.state import Experiment
from modelops.telemetry.promql import Vector, sample_value

GUARDRAIL_QUERIES = ("requests", "latency", "predictions")
"""Of the canary judge's counts, those the guardrails read."""


def experiment_queries(namespace: str, experiment: Experiment, seconds: float) -> dict[str, str]:
    """The PromQL of every count the analysis reads, over the last `seconds` (at least one)."""
    window = f"{max(math.ceil(seconds), 1)}s"
    where = f'namespace="{namespace}"'

    def increase(series: str, by: str, extra: str = "") -> str:
        return f"sum by ({by}) (increase({series}{{{where}{extra}}}[{window}]))"

    versions = [variant.model.version for variant in experiment.variants]
    served = step_queries(namespace, seconds, versions, label=MODEL_VERSION)
    predict = f', endpoint="{contract.PREDICT}"'
    processes = contract.EXPERIMENT_PROCESSES.name
    return {
        **{name: served[name] for name in GUARDRAIL_QUERIES},
        "units": increase(contract.EXPERIMENT_UNITS.total, VARIANT),
        "assignments": increase(
            contract.EXPERIMENT_ASSIGNMENTS.total, f"{VARIANT}, {ASSIGNED}", predict
        ),
        "cells": increase(contract.EXPERIMENT_FEEDBACK_ROWS.total, f"{VARIANT}, {CELL}"),
        "covariate_rows": increase(contract.EXPERIMENT_COVARIATE_ROWS.total, f"{VARIANT}, {CELL}"),
        "covariate": increase(contract.EXPERIMENT_COVARIATE.total, f"{VARIANT}, {CELL}, {SIGN}"),
        "covariate_squares": increase(
            contract.EXPERIMENT_COVARIATE_SQUARES.total, f"{VARIANT}, {CELL}"
        ),
        "processes": f"count(count_over_time({processes}{{{where}}}[{window}]))",
    }


def reference_query(namespace: str, version: str) -> str:
    """The stable model's test-set positive rate, precision and recall, as its servers export
    them (what the plan is made from)."""
    metrics = "|".join(RATE_METRICS)
    return (
        f'max by ({contract.METRIC}) ({contract.REFERENCE_METRIC.name}{{namespace="{namespace}", '
        f'{MODEL_VERSION}="{version}", {contract.METRIC}=~"{metrics}"}})'
    )


def variant_counts(
    answers: Mapping[str, Vector], experiment: Experiment
) -> dict[str, VariantCounts]:
    """Each variant's counts from the answers to `experiment_queries` (missing: zero)."""

    def by_variant(name: str) -> dict[str, list[tuple[Mapping[str, str], float]]]:
        found: dict[str, list[tuple[Mapping[str, str], float]]] = {}
        for sample in answers.get(name, ()):
            labels = sample.get("metric", {})
            found.setdefault(labels.get(VARIANT, ""), []).append((labels, sample_value(sample)))
        return found

    units, assignments, cells = by_variant("units"), by_variant("assignments"), by_variant("cells")
    rows, sums, squares = (
        by_variant(name) for name in ("covariate_rows", "covariate", "covariate_squares")
    )
    counts = {}
    for variant in experiment.variants:
        name = variant.name
        assigned = assignments.get(name, [])
        covariate = {}
        for cell in contract.CELLS:
            total = sum(
                value * (1 if labels.get(SIGN) == contract.ABOVE_ZERO else -1)
                for labels, value in sums.get(name, [])
                if labels.get(CELL) == cell
            )
            covariate[cell] = CovariateSums(
                rows=_cell(rows.get(name, []), cell),
                total=total,
                squares=_cell(squares.get(name, []), cell),
            )
        counts[name] = VariantCounts(
            name=name,
            version=variant.model.version,
            units=sum(value for _, value in units.get(name, [])),
            rows=sum(v for labels, v in assigned if labels.get(ASSIGNED) == TRUE),
            unassigned=sum(v for labels, v in assigned if labels.get(ASSIGNED) != TRUE),
            cells={cell: _cell(cells.get(name, []), cell) for cell in contract.CELLS},
            covariate=covariate,
            served=track_counts(answers, variant.model.version, label=MODEL_VERSION),
        )
    return counts


def _cell(rows: list[tuple[Mapping[str, str], float]], cell: str) -> float:
    return sum(value for labels, value in rows if labels.get(CELL) == cell)

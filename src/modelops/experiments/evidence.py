"""What an experiment's variants did, and the judgement of it (pure).

The counts come from the servers' telemetry (`experiments.queries`) over the experiment so far:
units per variant for the sample-ratio check, labelled predictions per confusion cell (and
the covariate's sums) for the primary KPI, requests, errors, latency and predictions for the
guardrails. `judge` turns them into the statistics of `experiments.stats` and the verdict of
`experiments.verdict`, in the order the verdict reads them: the split first, then the
guardrails, then the KPI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from modelops_contract import CELLS, FALSE_NEGATIVE, FALSE_POSITIVE, TRUE_NEGATIVE, TRUE_POSITIVE

from modelops.canary.evidence import TrackCounts
from modelops.canary.stats import Interval
from modelops.experiments import stats
from modelops.experiments.verdict import Guardrail, Primary, Verdict, decide, guardrail, primary
from modelops.params import CONTROL, ExperimentParams, Kpi

RATE_METRICS = ("positive_rate", "precision", "recall")
"""The stable model's test-set figures the plan is made from (modelops_reference_metric)."""


@dataclass(frozen=True)
class CovariateSums:
    """One confusion cell's labelled rows with a covariate, its sum and its sum of squares."""

    rows: float = 0.0
    total: float = 0.0
    squares: float = 0.0


@dataclass(frozen=True)
class VariantCounts:
    """One variant over the experiment so far."""

    name: str
    version: str
    units: float = 0.0
    """Units first seen by a server process (a unit may count once per process)."""
    rows: float = 0.0
    """Predicted rows with a unit, assigned to this variant."""
    unassigned: float = 0.0
    """Predicted rows without a unit (stable serves them; outside the comparison)."""
    cells: Mapping[str, float] = field(default_factory=dict)
    """Labelled predictions per confusion cell, of rows with a unit."""
    covariate: Mapping[str, CovariateSums] = field(default_factory=dict)
    served: TrackCounts = field(default_factory=TrackCounts)
    """Requests, errors, latency and predictions under the variant's model version."""


@dataclass(frozen=True)
class Evidence:
    """An experiment's variants as telemetry counted them, since it started."""

    environment: str
    experiment: str
    started_at: str
    seconds: float
    processes: float
    """Server processes that ran the experiment: the most times one unit may have been counted."""
    variants: Mapping[str, VariantCounts]
    latency_threshold: float
    queries: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Judgement:
    """Every number the verdict was reached on, and the verdict."""

    srm: stats.SampleRatio
    cuped: stats.Cuped
    kpi: Mapping[str, stats.Moments]
    primaries: tuple[Primary, ...]
    guardrails: tuple[Guardrail, ...]
    skipped: Mapping[str, str]
    plan: stats.Plan
    verdict: Verdict


def reference_cells(expected: Mapping[str, float]) -> dict[str, float] | None:
    """Confusion-cell shares implied by a model's test-set positive rate, precision and recall
    (None when they do not determine them: no positive predicted or recall 0)."""
    rate, precision, recall = (expected.get(name, math.nan) for name in RATE_METRICS)
    if not all(0 < value <= 1 for value in (rate, precision, recall)):
        return None
    true_positive = precision * rate
    false_negative = true_positive / recall - true_positive
    shares = {
        TRUE_POSITIVE: true_positive,
        FALSE_POSITIVE: rate - true_positive,
        FALSE_NEGATIVE: false_negative,
        TRUE_NEGATIVE: 1 - rate - false_negative,
    }
    return shares if all(share >= 0 for share in shares.values()) else None


def kpi_deviation(kpi: Kpi, cells: Mapping[str, float], values: Mapping[str, float]) -> float:
    """The standard deviation of one KPI row (a labelled prediction; an actual positive for
    recall; a predicted positive for precision) at the reference cells' shares."""
    if kpi == "business_value":
        return stats.value_deviation(values, cells)
    hits = cells[TRUE_POSITIVE]
    misses = cells[FALSE_NEGATIVE] if kpi == "recall" else cells[FALSE_POSITIVE]
    return stats.share_deviation(hits / (hits + misses))


def kpi_rows_per_label(kpi: Kpi, cells: Mapping[str, float]) -> float:
    """KPI rows per labelled prediction: all of them, the actual or the predicted positives."""
    if kpi == "business_value":
        return 1.0
    other = FALSE_NEGATIVE if kpi == "recall" else FALSE_POSITIVE
    return cells[TRUE_POSITIVE] + cells[other]


def experiment_plan(
    settings: ExperimentParams, cells: Mapping[str, float], values: Mapping[str, float]
) -> stats.Plan:
    """The units (KPI rows) the experiment needs, from the stable model's reference cells:
    fixed before any data, so the confidence sequences it tunes stay valid."""
    return stats.plan(
        settings.minimum_effect,
        kpi_deviation(settings.primary, cells, values),
        alpha=settings.alpha,
        power=settings.power,
        shares=settings.split,
        candidates=len(settings.candidates),
    )


def kpi_moments(kpi: Kpi, counts: VariantCounts, values: Mapping[str, float]) -> stats.Moments:
    """A variant's primary KPI: value per labelled prediction (with the covariate's sums, for
    CUPED), or recall or precision as shares."""
    cells = counts.cells
    if kpi == "business_value":
        return stats.Moments.of_cells(
            [
                stats.Cell(
                    values.get(cell, 0.0),
                    cells.get(cell, 0.0),
                    counts.covariate.get(cell, CovariateSums()).rows,
                    counts.covariate.get(cell, CovariateSums()).total,
                    counts.covariate.get(cell, CovariateSums()).squares,
                )
                for cell in CELLS
            ]
        )
    hits = cells.get(TRUE_POSITIVE, 0.0)
    other = cells.get(FALSE_NEGATIVE if kpi == "recall" else FALSE_POSITIVE, 0.0)
    return stats.Moments.of_share(hits, hits + other)


def judge(
    evidence: Evidence,
    settings: ExperimentParams,
    *,
    values: Mapping[str, float],
    plan: stats.Plan,
) -> Judgement:
    """The experiment's statistics and verdict (rules in `experiments.verdict`)."""
    variants = evidence.variants
    srm = stats.sample_ratio(
        {name: counts.units for name, counts in variants.items()},
        settings.split,
        alpha=settings.srm_alpha,
        duplication=max(evidence.processes, 1.0),
    )
    raw = {name: kpi_moments(settings.primary, counts, values) for name, counts in variants.items()}
    adjusted = stats.cuped(raw) if settings.covariate else _not_adjusted(raw)
    control = adjusted.samples[CONTROL]
    primaries = tuple(
        primary(
            name,
            adjusted.samples[name],
            control,
            alpha=plan.alpha,
            planned=plan.planned[name],
            minimum_effect=settings.minimum_effect,
        )
        for name in settings.candidates
    )
    rails, skipped = _guardrails(evidence, settings, values, plan)
    pairwise = {
        (a, b): stats.difference(
            adjusted.samples[a], adjusted.samples[b], alpha=plan.alpha, planned=plan.planned[a]
        )
        for a in settings.candidates
        for b in settings.candidates
        if a != b
    }
    verdict = decide(srm, primaries, rails, pairwise, control=CONTROL)
    return Judgement(srm, adjusted, raw, primaries, rails, skipped, plan, verdict)


def _not_adjusted(samples: Mapping[str, stats.Moments]) -> stats.Cuped:
    return stats.Cuped(dict(samples), False, "no covariate declared (experiments.<env>.covariate)")


def guardrail_moments(
    name: str, counts: VariantCounts, values: Mapping[str, float], threshold: float
) -> stats.Moments:
    """One guardrail metric of a variant."""
    served = counts.served
    if name == "errors":
        return stats.Moments.of_share(served.server_errors, served.requests)
    if name == "latency":
        fast = _at_most(served.latency, threshold)
        return stats.Moments.of_share(max(served.requests - fast, 0.0), served.requests)
    if name == "positive_rate":
        return stats.Moments.of_share(served.positive, served.predicted)
    return kpi_moments(name, counts, values)  # type: ignore[arg-type]  # a KPI's name


LOWER_IS_BETTER = ("errors", "latency")
TWO_SIDED = ("positive_rate",)


def _guardrails(
    evidence: Evidence,
    settings: ExperimentParams,
    values: Mapping[str, float],
    plan: stats.Plan,
) -> tuple[tuple[Guardrail, ...], dict[str, str]]:
    rails = settings.guardrails
    judged = {name: rail for name, rail in rails if rail.skip is None and name != settings.primary}
    skipped = {name: str(rail.skip) for name, rail in rails if rail.skip is not None}
    if settings.primary in dict(rails):
        skipped.setdefault(settings.primary, "the primary KPI: judged as such")
    each = plan.alpha / max(len(judged), 1)  # a false breach stops the experiment: share alpha
    found: list[Guardrail] = []
    control = evidence.variants[CONTROL]
    for candidate in settings.candidates:
        measured = evidence.variants[candidate]
        for name, rail in judged.items():
            mine, theirs = (
                guardrail_moments(name, counts, values, evidence.latency_threshold)
                for counts in (measured, control)
            )
            planned = plan.planned[candidate]
            if name in TWO_SIDED:
                found.append(_two_sided(candidate, name, mine, theirs, each, planned, rail.margin))
                continue
            found.append(
                guardrail(
                    candidate,
                    name,
                    mine,
                    theirs,
                    alpha=each,
                    planned=planned,
                    margin=rail.margin,
                    higher_is_better=name not in LOWER_IS_BETTER,
                )
            )
    return tuple(found), skipped


def _two_sided(
    candidate: str,
    name: str,
    mine: stats.Moments,
    theirs: stats.Moments,
    alpha: float,
    planned: float,
    margin: float,
) -> Guardrail:
    """Within ±margin of the control: breached past either side, passed within both."""
    interval = stats.difference(mine, theirs, alpha=alpha, planned=planned)
    low = stats.non_inferiority(interval, margin, higher_is_better=True)
    high = stats.non_inferiority(interval, margin, higher_is_better=False)
    outcome: stats.Outcome = (
        "breached"
        if "breached" in (low, high)
        else "pass"
        if (low, high) == ("pass", "pass")
        else "inconclusive"
    )
    return Guardrail(candidate, name, interval, margin, outcome)


def _at_most(buckets: tuple[tuple[float, float], ...], threshold: float) -> float:
    """Requests at most `threshold` seconds, from cumulative (bound, count) buckets: the
    threshold is one of the server's bounds (params refuse another)."""
    within = [count for bound, count in buckets if bound <= threshold + 1e-12]
    return max(within, default=0.0)


def interval_text(interval: Interval, digits: int = 4) -> str:
    """`+0.0123 [-0.001, +0.026]`."""
    if math.isnan(interval.estimate):
        return "no data"
    return (
        f"{interval.estimate:+.{digits}g} [{interval.low:+.{digits}g}, {interval.high:+.{digits}g}]"
    )

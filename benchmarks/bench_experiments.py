"""A/B experiments between models, simulated with a look every day: false winners, power at the
planned units, sample-ratio mismatches, CUPED, and a fixed-horizon test re-run every day.

Each run is one experiment of up to 28 days. Every day brings a Poisson number of units (a
weekly rhythm: weekends at 70%), split between the variants as planned; a third get a label,
and each labelled prediction falls in a confusion cell (stable's shares TP 0.14, FN 0.06, FP
0.08, TN 0.72) worth its business value (+120, 0, -15, 0). A better candidate turns some of
stable's false negatives into true positives (a worse one the reverse). Each day the running
totals are judged by `modelops.experiments`: the split (`sample_ratio`), the primary KPI's
always-valid interval (`difference`, tuned to the units `plan` asks for), precision as a
guardrail (`non_inferiority`), and `decide`; the run ends at the first verdict that is not
keep-running. Everything but the verdicts is drawn with NumPy at once.

    python -m benchmarks.bench_experiments [--quick] [--seeds N]

Results: benchmarks/results/experiments.{json,md}.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelops.canary.stats import effective_samples
from modelops.experiments.stats import (
    Cell,
    Moments,
    Plan,
    cuped,
    days_needed,
    difference,
    plan,
    sample_ratio,
    share_deviation,
    split_alpha,
    value_deviation,
)
from modelops.experiments.verdict import Primary, decide, guardrail, primary
from modelops.statistics import wilson

DAYS = 28
UNITS_PER_DAY = 6000
WEEKEND = 0.7
LABELLED = 1 / 3
CELLS = ("tp", "fn", "fp", "tn")
TP, FN, FP = 0, 1, 2
SHARES = np.array([0.14, 0.06, 0.08, 0.72])
VALUES = np.array([120.0, 0.0, -15.0, 0.0])
ALPHA = 0.05
POWER = 0.8
SRM_ALPHA = 0.001
MARGIN = 0.05
"""Precision, the guardrail: a candidate may lose at most 5 points of it."""
CONTRAST_RUNS = 5
SRM_RUNS = 3
"""Runs of the fixed-horizon contrast and of the split checks, per run of the verdicts: they
are cheap, and their rates sit near a small alpha."""
EFFECT = {"value": 2.0, "recall": 0.05}
"""The minimum effects planned for: 2 per labelled prediction (13% of stable's 15.6), 5 points
of recall (0.70 to 0.75)."""
STANDARD_DEVIATION = {
    "value": value_deviation(
        dict(zip(CELLS, VALUES, strict=True)), dict(zip(CELLS, SHARES, strict=True))
    ),
    "recall": share_deviation(SHARES[TP] / (SHARES[TP] + SHARES[FN])),
}
ROWS_PER_LABEL = {"value": 1.0, "recall": SHARES[TP] + SHARES[FN]}
"""The KPI's rows per labelled prediction: every one for the value, actual positives for recall."""


@dataclass(frozen=True)
class Scenario:
    name: str
    kpi: str
    moved: tuple[float, ...]
    """Per candidate: the share of all labelled rows moved from FN to TP (negative: TP to FN)."""
    truth: str
    """"none", "candidate" or "control": the variant truly better."""
    rho: float | None = None
    """The pre-period covariate's correlation with the KPI, when CUPED is used."""


def scenarios() -> list[Scenario]:
    value_move = EFFECT["value"] / VALUES[TP]
    recall_move = EFFECT["recall"] * ROWS_PER_LABEL["recall"]
    return [
        Scenario("A/A, business value", "value", (0.0,), "none"),
        Scenario("A/A, recall", "recall", (0.0,), "none"),
        Scenario("A/A/A, business value, two candidates", "value", (0.0, 0.0), "none"),
        Scenario(
            "candidate better by the minimum effect, business value",
            "value",
            (value_move,),
            "candidate",
        ),
        Scenario(
            "candidate better by the minimum effect, recall", "recall", (recall_move,), "candidate"
        ),
        Scenario(
            "candidate worse by the minimum effect, business value",
            "value",
            (-value_move,),
            "control",
        ),
    ]


def experiment_plan(kpi: str, candidates: int) -> Plan:
    shares = {"stable": 1.0, **{f"c{i}": 1.0 for i in range(candidates)}}
    return plan(
        EFFECT[kpi],
        STANDARD_DEVIATION[kpi],
        alpha=ALPHA,
        power=POWER,
        shares=shares,
        candidates=candidates,
    )


@dataclass
class Traffic:
    """Running totals per run, day and variant (stable first)."""

    units: np.ndarray  # (runs, days, variants)
    cells: np.ndarray  # (runs, days, variants, 4)
    sum_x: np.ndarray | None = None  # (runs, days, variants, 4)
    sum_x2: np.ndarray | None = None


def draw(
    moved: tuple[float, ...], runs: int, rng: np.random.Generator, rho: float | None = None
) -> Traffic:
    variants = 1 + len(moved)
    weekly = np.where(np.arange(DAYS) % 7 >= 5, WEEKEND, 1.0)
    units = rng.multinomial(
        rng.poisson(UNITS_PER_DAY * weekly, size=(runs, DAYS)), [1 / variants] * variants
    )
    base = rng.multinomial(rng.binomial(units, LABELLED), SHARES)
    out = np.zeros_like(base)  # rows a candidate moves out of their cell in stable
    for v, share in enumerate(moved, start=1):
        if share:
            source = FN if share > 0 else TP
            out[:, :, v, source] = rng.binomial(base[:, :, v, source], abs(share) / SHARES[source])
    cells = base - out
    cells[..., TP] += out[..., FN]
    cells[..., FN] += out[..., TP]
    traffic = Traffic(units.cumsum(axis=1), cells.cumsum(axis=1))
    if rho is not None:
        # x is drawn from the cell each row would have had in stable: a pre-period the
        # candidate cannot change, correlated at rho with stable's value.
        mean = float(SHARES @ VALUES)
        z = (VALUES - mean) / math.sqrt(float(SHARES @ (VALUES - mean) ** 2))
        (sx, sx2), (mx, mx2) = (_covariate(base - out, z, rho, rng), _covariate(out, z, rho, rng))
        for total, movers in ((sx, mx), (sx2, mx2)):
            total += movers
            total[..., TP] += movers[..., FN] - movers[..., TP]
            total[..., FN] += movers[..., TP] - movers[..., FN]
        traffic.sum_x, traffic.sum_x2 = sx.cumsum(axis=1), sx2.cumsum(axis=1)
    return traffic


def _covariate(
    rows: np.ndarray, z: np.ndarray, rho: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """sum x and sum x^2 over `rows` rows of each cell, x = rho z + sqrt(1 - rho^2) e: the sum
    of the e is N(0, m) and, apart from it, the sum of their squares chi-square(m - 1)."""
    other = math.sqrt(1 - rho**2)
    noise = rng.normal(size=rows.shape) * np.sqrt(rows)
    squares = rng.gamma(np.maximum(rows - 1, 0) / 2, 2.0) + np.divide(
        noise**2, rows, out=np.zeros(rows.shape), where=rows > 0
    )
    sum_x = rows * rho * z + other * noise
    sum_x2 = rows * (rho * z) ** 2 + 2 * rho * other * z * noise + other**2 * squares
    return sum_x, sum_x2


@dataclass(frozen=True)
class Outcome:
    kind: str
    winner: str | None
    day: int
    """The look that decided (1-based), or the last."""
    planned_day: int
    """The first look at or past the planned units of the KPI (DAYS + 1 if never)."""
    reduction: float = math.nan
    estimate_day7: float | None = None
    """More units the verdict asked for at day 7, for the runs still running then."""
    units_day7: float = math.nan
    units_end: float = math.nan


def judge(scenario: Scenario, traffic: Traffic, run: int, *, adjust: bool) -> Outcome:
    """Look every day until a verdict other than keep-running."""
    candidates = len(scenario.moved)
    names = ["stable", *(f"c{i}" for i in range(candidates))]
    the_plan = experiment_plan(scenario.kpi, candidates)
    alpha = split_alpha(ALPHA, candidates)
    per_label = ROWS_PER_LABEL[scenario.kpi]
    labelled = traffic.cells[run].sum(axis=2)  # (days, variants)
    rows = labelled.sum(axis=1) * per_label
    reached = np.nonzero(rows >= the_plan.units_total)[0]
    planned_day = int(reached[0]) + 1 if reached.size else DAYS + 1
    predicted = the_plan.units_total / len(names) / per_label * float(SHARES[TP] + SHARES[FP])
    guard_planned = effective_samples(predicted, predicted)
    cells, units = traffic.cells[run].tolist(), traffic.units[run].tolist()
    sx = traffic.sum_x[run].tolist() if traffic.sum_x is not None else None
    sx2 = traffic.sum_x2[run].tolist() if traffic.sum_x2 is not None else None
    estimate, units7, reduction = None, math.nan, math.nan
    for day in range(DAYS):
        srm = sample_ratio(
            dict(zip(names, units[day], strict=True)), dict.fromkeys(names, 1.0), alpha=SRM_ALPHA
        )
        moments = {}
        for v, name in enumerate(names):
            tp, fn, _, _ = cells[day][v]
            if scenario.kpi == "recall":
                moments[name] = Moments.of_share(tp, tp + fn)
            elif sx is not None and sx2 is not None:
                moments[name] = Moments.of_cells(
                    [
                        Cell(value, n, n, sx[day][v][c], sx2[day][v][c])
                        for c, (value, n) in enumerate(zip(VALUES, cells[day][v], strict=True))
                    ]
                )
            else:
                moments[name] = Moments.of_values(
                    list(zip(VALUES.tolist(), cells[day][v], strict=True))
                )
        if adjust:
            adjusted = cuped(moments)
            reduction = adjusted.reduction
            moments = dict(adjusted.samples)
        primaries: list[Primary] = [
            primary(
                name,
                moments[name],
                moments["stable"],
                alpha=alpha,
                planned=the_plan.planned[name],
                minimum_effect=EFFECT[scenario.kpi],
            )
            for name in names[1:]
        ]
        guards = []
        for v, name in enumerate(names[1:], start=1):
            tp, _, fp, _ = cells[day][v]
            stp, _, sfp, _ = cells[day][0]
            guards.append(
                guardrail(
                    name,
                    "precision",
                    Moments.of_share(tp, tp + fp),
                    Moments.of_share(stp, stp + sfp),
                    alpha=alpha,
                    planned=guard_planned,
                    margin=MARGIN,
                )
            )
        pairwise = {
            (a, b): difference(moments[a], moments[b], alpha=alpha, planned=the_plan.planned[a])
            for i, a in enumerate(names[1:])
            for b in names[2 + i :]
        }
        verdict = decide(srm, primaries, guards, pairwise)
        if day == 6:
            estimate, units7 = verdict.more_units_total, sum(units[day])
        if verdict.kind != "keep-running":
            break
    return Outcome(
        verdict.kind,
        verdict.winner,
        day + 1,
        planned_day,
        reduction,
        estimate,
        units7,
        sum(units[day]),
    )


def _rate(events: int, runs: int) -> dict[str, Any]:
    band = wilson(events, runs, z=1.96)
    return {
        "events": events,
        "runs": runs,
        "rate": events / runs if runs else math.nan,
        "interval": [band.low, band.high],
    }


def _text(rate: dict[str, Any]) -> str:
    low, high = rate["interval"]
    digits = 2 if high < 0.01 else 1  # a rate near a small alpha needs its second digit
    return (
        f"{rate['events']}/{rate['runs']} = {rate['rate']:.{digits}%} "
        f"[{low:.{digits}%}, {high:.{digits}%}]"
    )


def summarize(scenario: Scenario, outcomes: list[Outcome]) -> dict[str, Any]:
    runs = len(outcomes)
    kinds = {
        "candidate wins": sum(o.kind == "winner" and o.winner != "stable" for o in outcomes),
        "stable wins": sum(o.kind == "winner" and o.winner == "stable" for o in outcomes),
        "no difference": sum(o.kind == "no-difference" for o in outcomes),
        "stop": sum(o.kind == "stop" for o in outcomes),
        "still running": sum(o.kind == "keep-running" for o in outcomes),
    }
    right = {"none": "no difference", "candidate": "candidate wins", "control": "stable wins"}[
        scenario.truth
    ]
    wrong = sum(o.kind == "winner" for o in outcomes) - (
        kinds[right] if right != "no difference" else 0
    )
    decided = [o.day for o in outcomes if o.kind != "keep-running"]
    reductions = [o.reduction for o in outcomes if not math.isnan(o.reduction)]
    by_plan = sum(
        o.kind == "winner" and o.winner != "stable" and o.day <= o.planned_day for o in outcomes
    )
    estimates = [
        (o.units_end - o.units_day7) / o.estimate_day7
        for o in outcomes
        if o.estimate_day7 and o.day > 7 and o.kind != "keep-running"
    ]
    return {
        "scenario": scenario.name,
        "runs": runs,
        "outcomes": kinds,
        "right": right,
        "wrong_winner": _rate(wrong, runs),
        "right_decision": _rate(kinds[right], runs),
        "candidate_wins_by_planned_look": (
            _rate(by_plan, runs) if scenario.truth == "candidate" else None
        ),
        "planned_day_median": float(np.median([o.planned_day for o in outcomes])),
        "days_to_decide_median": float(np.median(decided)) if decided else None,
        "actual_over_estimated_more_units_median": float(np.median(estimates))
        if estimates
        else None,
        "reduction_mean": float(np.mean(reductions)) if reductions else None,
    }


def fixed_horizon(traffic: Traffic, fixed_total: float) -> tuple[np.ndarray, np.ndarray]:
    """The business value's z-test (two-sided, alpha), per run: significant at any daily look,
    and at the first look past its own planned units only."""
    n = traffic.cells.sum(axis=3)  # (runs, days, variants)
    mean = (traffic.cells * VALUES).sum(axis=3) / n
    variance = (traffic.cells * VALUES**2).sum(axis=3) / n - mean**2
    z = (mean[..., 1] - mean[..., 0]) / np.sqrt(
        variance[..., 1] / n[..., 1] + variance[..., 0] / n[..., 0]
    )
    significant = np.abs(z) > 1.959964
    at_plan = np.argmax(n.sum(axis=2) >= fixed_total, axis=1)
    return significant.any(axis=1), significant[np.arange(len(z)), at_plan]


def _p90(found: np.ndarray) -> float | None:
    """The 90th percentile of the units to detect, None if over a tenth never detected."""
    at = float(np.quantile(np.where(np.isnan(found), np.inf, found), 0.9, method="higher"))
    return at if math.isfinite(at) else None


def srm_detection(
    runs: int, rng: np.random.Generator, planned_units: float
) -> list[dict[str, Any]]:
    """Units stream in (checked at 60 points from 2,000 to 4 million units); each may be counted
    by up to `counted` processes. How often, and after how many units, is the split rejected?"""
    checkpoints = np.unique(np.geomspace(2_000, 4_000_000, 60).astype(int))
    cases = [
        ("50.5/49.5, counted once", 0.505, 1, 1.0),
        ("50.5/49.5, counted 1-2 times, duplication 2", 0.505, 2, 2.0),
        ("50.5/49.5, counted 1-4 times, duplication 4", 0.505, 4, 4.0),
        ("50/50, counted once", 0.5, 1, 1.0),
        ("50/50, counted 1-4 times, duplication 4", 0.5, 4, 4.0),
        ("50/50, counted 1-4 times, tested as if once", 0.5, 4, 1.0),
    ]
    rows = []
    for name, share, counted, duplication in cases:
        steps = np.diff(checkpoints, prepend=0)
        first = rng.binomial(np.broadcast_to(steps, (runs, steps.size)), share)
        units = np.stack([first, steps - first], axis=2)  # (runs, checkpoints, 2)
        weights = np.arange(1, counted + 1)
        counts = (rng.multinomial(units, [1 / counted] * counted) @ weights).cumsum(axis=1)
        found = np.full(runs, np.nan)
        for run in range(runs):
            for i, point in enumerate(checkpoints):
                a, b = counts[run, i]
                if sample_ratio(
                    {"a": a, "b": b}, {"a": 1, "b": 1}, alpha=SRM_ALPHA, duplication=duplication
                ).mismatch:
                    found[run] = point
                    break
        detected = found[~np.isnan(found)]
        rows.append(
            {
                "case": name,
                "mismatch": share != 0.5,
                "by_planned_units": _rate(int(np.sum(detected <= planned_units)), runs),
                "by_4M_units": _rate(detected.size, runs),
                "units_median": float(np.median(detected)) if detected.size else None,
                "units_p90": _p90(found),
            }
        )
    return rows


def measure(seeds: int) -> dict[str, Any]:
    rng = np.random.default_rng(2026)
    rows, contrast = [], []
    for scenario in scenarios():
        traffic = draw(scenario.moved, seeds, rng)
        rows.append(
            summarize(scenario, [judge(scenario, traffic, r, adjust=False) for r in range(seeds)])
        )
        if scenario.kpi == "value" and len(scenario.moved) == 1 and scenario.truth != "control":
            # Vectorised, so on more runs: the contrast is a rate near alpha.
            many = CONTRAST_RUNS * seeds
            every_day, once = fixed_horizon(
                draw(scenario.moved, many, rng), experiment_plan("value", 1).fixed_horizon_total
            )
            for method, hits in (
                ("once, at its planned units", once),
                ("re-run at every daily look", every_day),
            ):
                contrast.append(
                    {
                        "scenario": scenario.name,
                        "method": method,
                        "significant": _rate(int(hits.sum()), many),
                    }
                )
    cuped_rows = []
    value_plan = experiment_plan("value", 1)
    per_day = UNITS_PER_DAY * (5 + 2 * WEEKEND) / 7 * LABELLED
    for rho in (0.3, 0.5, 0.7):
        null = Scenario(f"A/A, CUPED rho {rho}", "value", (0.0,), "none", rho)
        effect = Scenario(
            f"better by the minimum effect, rho {rho}",
            "value",
            (EFFECT["value"] / VALUES[TP],),
            "candidate",
            rho,
        )
        aa = summarize(
            null,
            [
                judge(null, t, r, adjust=True)
                for t in [draw(null.moved, seeds, rng, rho)]
                for r in range(seeds)
            ],
        )
        traffic = draw(effect.moved, seeds, rng, rho)
        plain = summarize(effect, [judge(effect, traffic, r, adjust=False) for r in range(seeds)])
        adjusted = summarize(effect, [judge(effect, traffic, r, adjust=True) for r in range(seeds)])
        shrunk = plan(
            EFFECT["value"],
            STANDARD_DEVIATION["value"] * math.sqrt(1 - rho**2),
            alpha=ALPHA,
            power=POWER,
            shares={"stable": 1, "c0": 1},
            candidates=1,
        )
        cuped_rows.append(
            {
                "rho": rho,
                "expected_reduction": rho**2,
                "reduction_mean": aa["reduction_mean"],
                "aa_wrong_winner": aa["wrong_winner"],
                "power_by_planned_look": {
                    "without": plain["candidate_wins_by_planned_look"],
                    "with": adjusted["candidate_wins_by_planned_look"],
                },
                "days_to_decide_median": {
                    "without": plain["days_to_decide_median"],
                    "with": adjusted["days_to_decide_median"],
                },
                "planned_days": {
                    "without": days_needed(value_plan.units_total, per_day),
                    "with": days_needed(shrunk.units_total, per_day),
                },
            }
        )
    plans = {
        kpi: {
            "minimum_effect": EFFECT[kpi],
            "standard_deviation": STANDARD_DEVIATION[kpi],
            "units_total": experiment_plan(kpi, 1).units_total,
            "fixed_horizon_total": experiment_plan(kpi, 1).fixed_horizon_total,
            "price": experiment_plan(kpi, 1).price,
            "days": days_needed(experiment_plan(kpi, 1).units_total, per_day * ROWS_PER_LABEL[kpi]),
        }
        for kpi in EFFECT
    }
    planned_units = value_plan.units_total / LABELLED
    return {
        "plans": plans,
        "experiments": rows,
        "fixed_horizon": contrast,
        "srm": srm_detection(SRM_RUNS * seeds, rng, planned_units),
        "srm_planned_units": planned_units,
        "cuped": cuped_rows,
    }


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _header(*names: str) -> list[str]:
    return [_row(*names), _row(*["---"] * len(names))]


def _paragraph(*sentences: str) -> str:
    return " ".join(sentences)


def markdown(result: dict[str, Any]) -> str:
    from benchmarks.bench_pipeline import machine

    seeds = result["seeds"]
    command = f"python -m benchmarks.bench_experiments{' --quick' if result['quick'] else ''}"
    lines = [
        "# A/B experiments: false winners, power, sample-ratio mismatches and CUPED, "
        "with daily looks",
        "",
        f"Machine: {machine()}. `{command} --seeds {seeds}`; {result['seconds']:.0f} s in all.",
        "",
        _paragraph(
            f"Each run is one experiment looked at every day for up to {DAYS} days: Poisson",
            f"units a day ({UNITS_PER_DAY} on weekdays, {WEEKEND:.0%} of that at weekends),",
            f"split evenly between stable and the candidates, {LABELLED:.0%} of them labelled.",
            "Each labelled prediction falls in a confusion cell (stable: TP 0.14, FN 0.06,",
            "FP 0.08, TN 0.72) worth +120, 0, -15 and 0: the business value per labelled",
            "prediction, mean 15.6. A better candidate turns some of stable's false negatives",
            "into true positives; a worse one the reverse. Every day `modelops.experiments`",
            f"judges the running totals: the split (`sample_ratio`, alpha {SRM_ALPHA:g}), the",
            f"primary KPI's always-valid interval (`difference`, alpha {ALPHA:g} split over the",
            "comparisons by `split_alpha`, the sequence tuned to the planned units), precision",
            f"as a guardrail (`non_inferiority`: it may lose at most {MARGIN:g}), and `decide`;",
            "the run ends at the first verdict that is not keep-running. Every rate has its",
            f"95% Wilson interval; {seeds} runs per row.",
        ),
        "",
        "## The plans",
        "",
        *_header(
            "primary KPI",
            "minimum effect",
            "sd per row",
            "rows of the KPI, always-valid",
            "fixed-horizon",
            "price",
            "days at this traffic",
        ),
    ]
    for kpi, label in (
        ("value", "business value per labelled prediction"),
        ("recall", "recall (rows: actual positives)"),
    ):
        p = result["plans"][kpi]
        lines.append(
            _row(
                label,
                f"{p['minimum_effect']:g}",
                f"{p['standard_deviation']:.3g}",
                f"{p['units_total']:,.0f}",
                f"{p['fixed_horizon_total']:,.0f}",
                f"{p['price']:.2f}x",
                f"{p['days']:.1f}",
            )
        )
    price = result["plans"]["value"]["price"]
    lines += [
        "",
        _paragraph(
            f"`plan` at alpha {ALPHA:g} and power {POWER:g}, against one z-test at one look",
            f"(fixed-horizon): always-valid inference needs about {price:.1f} times the units,",
            "the price of being allowed to look every day and stop at any look.",
        ),
        "",
        "## The verdicts",
        "",
        *_header(
            "scenario",
            "candidate wins",
            "stable wins",
            "no difference",
            "stop",
            f"still running at day {DAYS}",
            "wrong winner [95% CI]",
            "candidate wins by the planned look [95% CI]",
            "planned look (median day)",
            "days to decide (median)",
            "actual / estimated more units from day 7 (median)",
        ),
    ]
    for r in result["experiments"]:
        k, power = r["outcomes"], r["candidate_wins_by_planned_look"]
        ratio = r["actual_over_estimated_more_units_median"]
        lines.append(
            _row(
                r["scenario"],
                k["candidate wins"],
                k["stable wins"],
                k["no difference"],
                k["stop"],
                k["still running"],
                _text(r["wrong_winner"]),
                "-" if power is None else _text(power),
                f"{r['planned_day_median']:g}",
                _days(r["days_to_decide_median"]),
                "-" if ratio is None else f"{ratio:.2f}",
            )
        )
    lines += [
        "",
        _paragraph(
            "A wrong winner is any winner under A/A (a candidate or stable), stable where the",
            "candidate is better, the candidate where it is worse: it must stay at or below",
            f"alpha ({ALPHA:g}). Where the candidate is better by the minimum effect, the share",
            "of runs it has won by the first look past the planned units must reach the planned",
            f"power ({POWER:g}). The last column holds the keep-running verdict's estimate of",
            "how many more units would decide, made at day 7, against the units it then took",
            "(for runs that decided later): below 1, it asked for more than it took. With",
            "three variants each gets a third of the units and alpha is split three ways",
            "(`split_alpha`), so the plan takes about four weeks and about half the A/A/A runs",
            "are still running at day 28: a plan longer than the traffic allows says so before",
            "the experiment starts (`days_needed`).",
        ),
        "",
        "## A fixed-horizon z-test, for contrast",
        "",
        _paragraph(
            "The business value's two-sided z-test at alpha 0.05, on runs drawn the same way",
            f"({CONTRAST_RUNS} times as many: it is cheap): once, at the first look past its own",
            "planned units (the fixed-horizon n of `plan`), and re-run at every daily look:",
        ),
        "",
        *_header("scenario", "method", "significant [95% CI]"),
        *(
            _row(r["scenario"], r["method"], _text(r["significant"]))
            for r in result["fixed_horizon"]
        ),
        "",
        _paragraph(
            "Once, at its horizon, it has about its alpha and its power; looked at every day",
            "it finds a difference in A/A far more often than alpha: why the verdicts above use",
            "the confidence sequence.",
        ),
        "",
        "## Sample-ratio mismatch",
        "",
        _paragraph(
            "Units stream into two variants planned 50/50, the split checked at 60 points from",
            "2,000 to 4 million units (checked only so often, detection could be a little",
            "sooner). A server process counts a unit once, but several may count it: here",
            "each unit is counted a uniform 1 to d times and `sample_ratio` is told",
            "`duplication=d`. The planned units are the value experiment's plan in units",
            f"({result['srm_planned_units']:,.0f}); {SRM_RUNS * seeds} runs per row.",
        ),
        "",
        *_header(
            "case",
            "detected by the planned units",
            "detected by 4M units",
            "units to detect (median)",
            "(90th percentile)",
        ),
    ]
    for r in result["srm"]:
        lines.append(
            _row(
                r["case"],
                _text(r["by_planned_units"]),
                _text(r["by_4M_units"]),
                "-" if r["units_median"] is None else f"{r['units_median']:,.0f}",
                "-" if r["units_p90"] is None else f"{r['units_p90']:,.0f}",
            )
        )
    lines += [
        "",
        _paragraph(
            "Where the split is right, any detection is a false alarm and must stay under",
            f"alpha ({SRM_ALPHA:g}; the units columns then say when the false alarms came).",
            "A 1% mismatch (50.5/49.5) is small: it takes a few hundred thousand units, more",
            "when units may be counted several times (the duplication",
            "bound divides the evidence). Units counted several times but tested as if once",
            "raise false alarms: that is what `duplication` is for.",
        ),
        "",
        "## CUPED with a pre-period covariate",
        "",
        _paragraph(
            "The same value experiments with a covariate x per labelled prediction,",
            "correlated at rho with stable's value and drawn from the cell the row would have",
            "had in stable, so no candidate can change it. The reduction is `cuped`'s at the",
            "last look, the mean over the A/A runs (judged with CUPED); the wins and days are",
            "of runs where the candidate is better by the minimum effect, judged on the same",
            "draws without and with CUPED, with the same plan.",
        ),
        "",
        *_header(
            "rho",
            "expected reduction (rho^2)",
            "measured reduction",
            "A/A wrong winner with CUPED",
            "wins by the planned look, without",
            "with",
            "days to decide (median), without",
            "with",
            "planned days, without",
            "with (sd shrunk by sqrt(1 - rho^2))",
        ),
    ]
    for r in result["cuped"]:
        wins, days, planned = (
            r["power_by_planned_look"],
            r["days_to_decide_median"],
            r["planned_days"],
        )
        lines.append(
            _row(
                f"{r['rho']:g}",
                f"{r['expected_reduction']:.2f}",
                f"{r['reduction_mean']:.3f}",
                _text(r["aa_wrong_winner"]),
                _text(wins["without"]),
                _text(wins["with"]),
                _days(days["without"]),
                _days(days["with"]),
                f"{planned['without']:.1f}",
                f"{planned['with']:.1f}",
            )
        )
    lines += [
        "",
        _paragraph(
            "CUPED removes about rho^2 of the variance, so the same decision takes about",
            "1 - rho^2 of the units: planned with it, the days shrink by that factor; judged",
            "with it on a plan made without, runs decide sooner and more of them by the planned",
            "look. The A/A false-winner rate stays under alpha.",
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    from benchmarks.bench_pipeline import machine, write_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few runs, for a smoke run")
    parser.add_argument("--seeds", type=int, default=None, help="runs per scenario")
    args = parser.parse_args()
    seeds = args.seeds or (40 if args.quick else 1000)
    started = time.perf_counter()
    result = measure(seeds)
    result.update(
        seeds=seeds, quick=args.quick, seconds=time.perf_counter() - started, machine=machine()
    )
    write_results("experiments", result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

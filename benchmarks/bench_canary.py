"""The canary judge alone, replayed on simulated steps: false alarms, detection power, traps.

Each run is one canary step at 10% of traffic, looked at every `--per-look` canary requests
(with the stable requests the same split brings), `--looks` times, the soak growing two
minutes per look, until the judge promotes or rolls back (or the last look holds). Each look
adds new requests whose outcomes are drawn per track: server errors (binomial), latency from a
lognormal on the server's buckets, the score from a Beta on the fixed grid (positive at 0.5),
a categorical and a numeric feature's bins, and feedback cells for a third of the rows. The
judge sees the running totals, as it sees `increase(...)` over the step.

Scenarios:
- A/A: the canary is stable. Any rollback is a false alarm.
- At the bound: the canary's error ratio is exactly `errors.max_increase` above stable's, an
  acceptable canary by definition: a rollback is a false alarm. The same runs are also judged
  by naive re-testing: the same criteria with fixed-sample intervals (the chi-square quantile
  in place of the confidence sequence's radius), re-run at every look.
- Shifts of known size: errors +0.5 and +2 points, scores shifted (PSI about 0.2 and 0.5),
  p95 latency twice stable's with the same median (a rise in variance): the detection rate,
  the criterion that fired, and the requests it took.
- Traps peers fall into: sparse errors (none on either side), a stable track with no data, a
  canary with no data.

    python -m benchmarks.bench_canary [--quick] [--seeds N]

Results: benchmarks/results/canary.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from modelops_contract import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    OTHER,
    SCORE_GRID,
    TRUE_NEGATIVE,
    TRUE_POSITIVE,
    UNSEEN,
    bin_label,
)
from modelops_contract import LATENCY_BUCKETS as LATENCY_BOUNDS
from scipy import stats as scipy_stats

from modelops.canary import stats
from modelops.canary.evidence import Evidence, TrackCounts
from modelops.canary.judge import METHOD, Verdict, judge
from modelops.params import CanaryParams, DriftGateParams
from modelops.statistics import wilson

WEIGHT = 10
SECONDS_PER_LOOK = 120.0
FEATURES = {
    # A categorical feature as the server counts it (its top categories, other, unseen) and a
    # numeric one's deciles: the judge holds them to the drift gate's Cramér's V and KS.
    "plan": {"basic": 0.4, "standard": 0.3, "premium": 0.2, OTHER: 0.1, UNSEEN: 0.0},
    "tenure": {bin_label(i): 0.2 for i in range(5)},
}
CELLS = (TRUE_POSITIVE, FALSE_NEGATIVE, FALSE_POSITIVE, TRUE_NEGATIVE)
CELL_SHARES = (0.14, 0.06, 0.08, 0.72)
LABELLED = 1 / 3
PARAMS = CanaryParams()
DRIFT = DriftGateParams()


@dataclass(frozen=True)
class Track:
    """How one track behaves: what each request's outcome is drawn from."""

    error_ratio: float = 0.001
    latency_median: float = 0.004
    latency_sigma: float = 0.35
    score_a: float = 2.0
    score_b: float = 5.0
    silent: bool = False
    """Receives no requests at all."""


@dataclass(frozen=True)
class Scenario:
    name: str
    canary: Track
    stable: Track = field(default_factory=Track)
    wrong: str = "rollback"
    """The decision that would be wrong here (what the rate measures)."""


def score_shift(psi: float) -> Track:
    """A canary whose Beta score has the PSI `psi` against stable's on the grid."""
    base = Track()
    reference = _score_shares(base)
    low, high = base.score_a, base.score_a * 6
    for _ in range(60):
        middle = (low + high) / 2
        if _psi(_score_shares(replace(base, score_a=middle)), reference) < psi:
            low = middle
        else:
            high = middle
    return replace(base, score_a=(low + high) / 2)


def variance_rise(factor: float) -> Track:
    """p95 `factor` times stable's, the median unchanged: a wider lognormal."""
    base = Track()
    return replace(base, latency_sigma=base.latency_sigma + math.log(factor) / 1.6449)


def scenarios() -> list[Scenario]:
    bound = PARAMS.errors.max_increase
    return [
        Scenario("A/A", Track()),
        Scenario("errors at the bound", Track(error_ratio=0.001 + bound)),
        Scenario("errors +0.5 points", Track(error_ratio=0.006), wrong="promote"),
        Scenario("errors +2 points", Track(error_ratio=0.021), wrong="promote"),
        Scenario("scores PSI 0.2", score_shift(0.2), wrong="promote"),
        Scenario("scores PSI 0.5", score_shift(0.5), wrong="promote"),
        Scenario("p95 latency x2, same median", variance_rise(2.0), wrong="promote"),
        Scenario("sparse errors (none anywhere)", Track(error_ratio=0.0), Track(error_ratio=0.0)),
        Scenario("stable with no data", Track(), Track(silent=True), wrong="decide"),
        Scenario("canary with no data", Track(silent=True), wrong="decide"),
    ]


@dataclass(frozen=True)
class Outcome:
    decision: str
    looks: int
    canary_requests: float
    failed: tuple[str, ...]


def run(scenario: Scenario, seed: int, *, looks: int, per_look: int) -> Outcome:
    """One simulated step: looks until the judge promotes or rolls back."""
    rng = np.random.default_rng(seed)
    canary, stable = TrackCounts(), TrackCounts()
    per_stable = per_look * (100 - WEIGHT) // WEIGHT
    verdict: Verdict | None = None
    for look in range(1, looks + 1):
        canary = _add(canary, _draw(scenario.canary, per_look, rng))
        stable = _add(stable, _draw(scenario.stable, per_stable, rng))
        evidence = Evidence(canary, stable, step_seconds=look * SECONDS_PER_LOOK, weight=WEIGHT)
        verdict = judge(evidence, PARAMS, drift=DRIFT)
        if verdict.decision != "hold":
            break
    assert verdict is not None
    failed = tuple(f.criterion for f in verdict.findings if f.status == "fail")
    return Outcome(verdict.decision, look, canary.requests, failed)


@contextlib.contextmanager
def naive_retesting() -> Iterator[None]:
    """Judge with fixed-sample intervals: the critical value of one test at one look, reused
    at every look (what re-running a t-test or chi-square test every interval does)."""
    original = stats.radius

    def fixed(dimensions: int, samples: float, alpha: float, planned: float) -> float:
        if samples <= 0:
            return math.inf
        return math.sqrt(float(scipy_stats.chi2.ppf(1 - alpha, dimensions)))

    stats.radius = fixed
    try:
        yield
    finally:
        stats.radius = original


def ever_missed(seed: int, *, looks: int, per_look: int, share: float, alpha: float) -> bool:
    """Whether the interval on a difference of two shares (truly 0) ever excluded 0 over
    `looks` looks: the chance of a false alarm of one criterion, at its own alpha."""
    rng = np.random.default_rng(seed)
    per_stable = per_look * (100 - WEIGHT) // WEIGHT
    x1 = x2 = n1 = n2 = 0.0
    for _ in range(looks):
        x1 += rng.binomial(per_look, share)
        x2 += rng.binomial(per_stable, share)
        n1, n2 = n1 + per_look, n2 + per_stable
        interval = stats.proportion_difference(
            (x1, n1), (x2, n2), alpha=alpha, planned=_planned_samples()
        )
        if interval.low > 0 or interval.high < 0:
            return True
    return False


def coverage(seeds: int, *, looks: int, per_look: int) -> list[dict[str, Any]]:
    """How often one criterion's interval ever misses a true difference of 0, with repeated
    looks, for the confidence sequence and for a fixed-sample interval re-run at each look."""
    rows = []
    for method in ("confidence sequence", "fixed-sample, re-run at every look"):
        for share in (0.05, 0.2):
            for alpha in (0.05, 0.01):
                with naive_retesting() if method.startswith("fixed") else contextlib.nullcontext():
                    missed = sum(
                        ever_missed(seed, looks=looks, per_look=per_look, share=share, alpha=alpha)
                        for seed in range(seeds)
                    )
                band = wilson(missed, seeds, z=1.96)
                rows.append(
                    {
                        "method": method,
                        "share": share,
                        "alpha": alpha,
                        "runs": seeds,
                        "missed": missed,
                        "rate": missed / seeds,
                        "interval": [band.low, band.high],
                    }
                )
    return rows


def _planned_samples() -> float:
    planned = float(PARAMS.planned_requests)
    return stats.effective_samples(planned, planned * (100 - WEIGHT) / WEIGHT)


def summarize(scenario: Scenario, outcomes: list[Outcome]) -> dict[str, Any]:
    n = len(outcomes)
    counts = {d: sum(o.decision == d for o in outcomes) for d in ("promote", "hold", "rollback")}
    wrong = n - counts["hold"] if scenario.wrong == "decide" else counts[scenario.wrong]
    band = wilson(wrong, n, z=1.96)
    decided = [o for o in outcomes if o.decision != "hold"]
    fired: dict[str, int] = {}
    for outcome in outcomes:
        for criterion in outcome.failed:
            fired[criterion] = fired.get(criterion, 0) + 1
    return {
        "scenario": scenario.name,
        "runs": n,
        **counts,
        "wrong": scenario.wrong,
        "wrong_rate": wrong / n,
        "wrong_interval": [band.low, band.high],
        "mean_canary_requests_to_decide": (
            float(np.mean([o.canary_requests for o in decided])) if decided else None
        ),
        "mean_looks_to_decide": float(np.mean([o.looks for o in decided])) if decided else None,
        "fired": dict(sorted(fired.items(), key=lambda item: -item[1])),
    }


def measure(seeds: int, looks: int, per_look: int) -> dict[str, Any]:
    rows = []
    for scenario in scenarios():
        outcomes = [run(scenario, seed, looks=looks, per_look=per_look) for seed in range(seeds)]
        rows.append(summarize(scenario, outcomes))
    naive = []
    for scenario in scenarios()[:2]:
        with naive_retesting():
            outcomes = [
                run(scenario, seed, looks=looks, per_look=per_look) for seed in range(seeds)
            ]
        naive.append(summarize(scenario, outcomes))
    return {
        "judge": rows,
        "naive_retesting": naive,
        "coverage": coverage(seeds * 2, looks=looks, per_look=per_look),
    }


def _draw(track: Track, requests: int, rng: np.random.Generator) -> TrackCounts:
    if track.silent or requests <= 0:
        return TrackCounts()
    latency = _cumulative(rng.multinomial(requests, _latency_shares(track)))
    scores = rng.multinomial(requests, _score_shares(track))
    positive = float(scores[SCORE_GRID.index(0.5) + 1 :].sum())
    labels = int(rng.binomial(requests, LABELLED))
    cells = rng.multinomial(labels, CELL_SHARES)
    features = {
        name: dict(
            zip(shares, map(float, rng.multinomial(requests, list(shares.values()))), strict=True)
        )
        for name, shares in FEATURES.items()
    }
    return TrackCounts(
        requests=float(requests),
        server_errors=float(rng.binomial(requests, track.error_ratio)),
        latency=tuple(zip((*LATENCY_BOUNDS, math.inf), latency, strict=True)),
        scores=tuple(zip((*SCORE_GRID, math.inf), _cumulative(scores), strict=True)),
        positive=positive,
        predicted=float(requests),
        features=features,
        bins=dict.fromkeys(FEATURES, "same"),
        cells=dict(zip(CELLS, map(float, cells), strict=True)),
    )


def _add(total: TrackCounts, more: TrackCounts) -> TrackCounts:
    if more.requests <= 0:
        return total
    if total.requests <= 0:
        return more

    def histogram(
        a: tuple[tuple[float, float], ...], b: tuple[tuple[float, float], ...]
    ) -> tuple[tuple[float, float], ...]:
        return tuple((bound, x + y) for (bound, x), (_, y) in zip(a, b, strict=True))

    return TrackCounts(
        requests=total.requests + more.requests,
        server_errors=total.server_errors + more.server_errors,
        latency=histogram(total.latency, more.latency),
        scores=histogram(total.scores, more.scores),
        positive=total.positive + more.positive,
        predicted=total.predicted + more.predicted,
        features={
            name: {b: total.features[name][b] + more.features[name][b] for b in bins}
            for name, bins in more.features.items()
        },
        bins=more.bins,
        cells={cell: total.cells[cell] + more.cells[cell] for cell in CELLS},
    )


def _cumulative(counts: np.ndarray) -> list[float]:
    return [float(x) for x in np.cumsum(counts)]


def _latency_shares(track: Track) -> np.ndarray:
    mu = math.log(track.latency_median)
    edges = np.array([*LATENCY_BOUNDS])
    below = scipy_stats.norm.cdf((np.log(edges) - mu) / track.latency_sigma)
    return np.diff(np.concatenate([[0.0], below, [1.0]]))


def _score_shares(track: Track) -> np.ndarray:
    below = scipy_stats.beta.cdf(np.array(SCORE_GRID[:-1]), track.score_a, track.score_b)
    shares = np.diff(np.concatenate([[0.0], below, [1.0]]))
    return np.concatenate([shares, [0.0]])  # the +Inf bucket holds nothing above 1


def _psi(first: np.ndarray, second: np.ndarray) -> float:
    keep = (first > 0) & (second > 0)
    p, q = first[keep], second[keep]
    return float(np.sum((p - q) * np.log(p / q)))


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| scenario | runs | promote | hold | roll back | wrong decision | its rate [95% CI] "
        "| canary requests to decide (mean) | criteria that failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        low, high = r["wrong_interval"]
        to_decide = r["mean_canary_requests_to_decide"]
        fired = ", ".join(f"{k} {v}" for k, v in r["fired"].items()) or "none"
        lines.append(
            f"| {r['scenario']} | {r['runs']} | {r['promote']} | {r['hold']} | {r['rollback']} "
            f"| {r['wrong']} | {r['wrong_rate']:.1%} [{low:.1%}, {high:.1%}] "
            f"| {'-' if to_decide is None else f'{to_decide:.0f}'} | {fired} |"
        )
    return lines


def main() -> int:
    from benchmarks.bench_pipeline import machine, write_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few seeds, for a smoke run")
    parser.add_argument("--seeds", type=int, default=None, help="runs per scenario")
    parser.add_argument("--looks", type=int, default=40)
    parser.add_argument("--per-look", type=int, default=250, help="canary requests per look")
    args = parser.parse_args()
    seeds = args.seeds or (20 if args.quick else 200)
    started = time.perf_counter()
    result = measure(seeds, args.looks, args.per_look)
    seconds = time.perf_counter() - started
    result.update(
        seeds=seeds,
        looks=args.looks,
        per_look=args.per_look,
        weight=WEIGHT,
        alpha=PARAMS.alpha,
        params=PARAMS.model_dump(),
        method=METHOD,
        seconds=seconds,
        machine=machine(),
    )
    text = "\n".join(
        [
            "# Canary judge: false alarms, detection power and traps, on replayed steps",
            "",
            f"Machine: {machine()}. `python -m benchmarks.bench_canary --seeds {seeds}`; "
            f"{seconds:.0f} s in all.",
            "",
            f"Each run is one step with the canary at {WEIGHT}% of traffic, looked at every "
            f"{args.per_look} canary requests (and the {args.per_look * (100 - WEIGHT) // WEIGHT}"
            f" stable requests beside them), up to {args.looks} looks "
            f"({args.looks * args.per_look} canary requests), soaking {SECONDS_PER_LOOK:.0f} s "
            "per look; it ends at the first promote or roll back. The judge runs with the "
            f"template's `canary:` params (alpha {PARAMS.alpha:g} per step, min_requests "
            f"{PARAMS.min_requests}, min_soak {PARAMS.min_soak}, errors.max_increase "
            f"{PARAMS.errors.max_increase:g}, latency.max_ratio {PARAMS.latency.max_ratio:g}, "
            f"scores.max_psi {PARAMS.scores.max_psi:g}) and, for the inputs (a categorical "
            "and a numeric feature), the drift gate's limits (gates.drift.max_categorical_drift "
            f"{DRIFT.max_categorical_drift:g}, max_numeric_drift {DRIFT.max_numeric_drift:g}). "
            f"Method: {METHOD}.",
            "",
            "## The judge",
            "",
            *_table(result["judge"]),
            "",
            "A wrong decision is a roll back where the canary is acceptable (A/A, at the bound, "
            "sparse errors), a promote where it is worse (the shifts), and any decision at all "
            "where one track has no data.",
            "",
            "## Naive re-testing, for contrast",
            "",
            "The same criteria with fixed-sample intervals (the critical value of one test at "
            "one look), re-run at every look, as peers that re-test every interval do:",
            "",
            *_table(result["naive_retesting"]),
            "",
            "With tolerances (a canary is rolled back only when it is surely worse *by more "
            "than the bound*) both rarely roll back here: the bound leaves room. Where repeated "
            "looks really bite is the interval itself, below.",
            "",
            "## One criterion over repeated looks: how often its interval ever misses the truth",
            "",
            f"A difference of two shares that is truly 0 (canary and stable alike), "
            f"{args.looks} looks of {args.per_look} canary requests: the share of runs in which "
            "the interval excluded 0 at some look. That is the false-alarm rate a criterion "
            "would have with no tolerance at all; it must stay at or under its alpha.",
            "",
            "| method | true share | alpha | runs | ever missed | rate [95% CI] |",
            "| --- | --- | --- | --- | --- | --- |",
            *(
                f"| {r['method']} | {r['share']:g} | {r['alpha']:g} | {r['runs']} | "
                f"{r['missed']} | {r['rate']:.1%} [{r['interval'][0]:.1%}, "
                f"{r['interval'][1]:.1%}] |"
                for r in result["coverage"]
            ),
            "",
        ]
    )
    write_results("canary", result, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

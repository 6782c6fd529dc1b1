"""The verdict of an A/B experiment from its statistics: each rule, in order, and the estimate
of how many more units would decide (pure: intervals in, a verdict out)."""

from __future__ import annotations

import math

import pytest

from modelops.canary.stats import Interval, radius
from modelops.experiments.stats import Moments, sample_ratio
from modelops.experiments.verdict import (
    EXIT,
    SRM_CAUSES,
    Guardrail,
    Primary,
    decide,
    guardrail,
    primary,
)

SPLIT = sample_ratio({"stable": 10_000, "a": 10_000}, {"stable": 1, "a": 1}, alpha=0.001)
THREE = sample_ratio(
    {"stable": 10_000, "a": 10_000, "b": 10_000}, {"stable": 1, "a": 1, "b": 1}, alpha=0.001
)
BROKEN = sample_ratio({"stable": 9_000, "a": 11_000}, {"stable": 1, "a": 1}, alpha=0.001)


def _primary(candidate: str, low: float, high: float, *, effect: float = 2.0, **kw) -> Primary:
    return Primary(
        candidate,
        Interval((low + high) / 2, low, high),
        minimum_effect=effect,
        samples=kw.pop("samples", 5000.0),
        alpha=0.05,
        planned=kw.pop("planned", 5000.0),
        **kw,
    )


def _guard(candidate: str, outcome: str, name: str = "precision") -> Guardrail:
    return Guardrail(candidate, name, Interval(0.0, -0.01, 0.01), 0.02, outcome)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("primaries", "guardrails", "kind", "winner"),
    [
        # One candidate surely better, every guardrail passed: it wins.
        ([_primary("a", 0.5, 4.0)], [_guard("a", "pass")], "winner", "a"),
        ([_primary("a", 0.5, 4.0)], [], "winner", "a"),
        # Surely better but a guardrail still open: keep running.
        ([_primary("a", 0.5, 4.0)], [_guard("a", "inconclusive")], "keep-running", None),
        # A breached guardrail stops the experiment, even beside a better primary.
        ([_primary("a", 0.5, 4.0)], [_guard("a", "breached")], "stop", None),
        # Within +-2 on both sides: no difference worth switching to.
        ([_primary("a", -1.5, 1.5)], [], "no-difference", None),
        # Surely worse: the control wins.
        ([_primary("a", -4.0, -0.5)], [], "winner", "stable"),
        # Straddling 0 and reaching past the minimum effect: not yet.
        ([_primary("a", -1.0, 3.0)], [], "keep-running", None),
        ([_primary("a", -3.0, 1.0)], [], "keep-running", None),
        # Lower is better (e.g. a cost): below 0 is the good side.
        ([_primary("a", -4.0, -0.5, higher_is_better=False)], [], "winner", "a"),
        ([_primary("a", 0.5, 4.0, higher_is_better=False)], [], "winner", "stable"),
    ],
)
def test_the_rules(primaries, guardrails, kind, winner) -> None:
    verdict = decide(SPLIT, primaries, guardrails)
    assert verdict.kind == kind
    assert verdict.winner == winner
    assert verdict.exit_code == EXIT[kind]
    assert verdict.reasons


@pytest.mark.parametrize(
    ("a", "b", "kind", "winner"),
    [
        ((-1.0, 1.5), (-1.5, 1.0), "no-difference", None),
        ((-4.0, -0.5), (-3.0, -0.2), "winner", "stable"),
        ((-4.0, -0.5), (-1.0, 1.0), "no-difference", None),  # one worse, one the same
        ((-4.0, -0.5), (-1.0, 3.0), "keep-running", None),
        ((0.5, 4.0), (-3.0, -0.2), "winner", "a"),
        ((-1.0, 1.0), (0.2, 1.8), "winner", "b"),  # surely better, if by less than the effect
    ],
)
def test_the_rules_over_two_candidates(a, b, kind, winner) -> None:
    verdict = decide(THREE, [_primary("a", *a), _primary("b", *b)])
    assert (verdict.kind, verdict.winner) == (kind, winner)


def test_a_sample_ratio_mismatch_stops_before_anything_else_is_judged() -> None:
    verdict = decide(BROKEN, [_primary("a", 0.5, 4.0)], [_guard("a", "breached")])
    assert verdict.kind == "stop"
    assert verdict.exit_code == 1
    assert verdict.winner is None
    assert len(verdict.reasons) == 2
    assert "sample ratio mismatch" in verdict.reasons[0]
    assert "stable is short and a over" in verdict.reasons[0]
    assert "45.00% (planned 50.00%)" in verdict.reasons[0]
    assert verdict.reasons[1] == SRM_CAUSES
    for cause in ("bot", "crashing", "timing out", "unit field", "cache"):
        assert cause in SRM_CAUSES


def test_a_breach_names_the_candidate_the_guardrail_and_the_margin() -> None:
    breach = Guardrail("a", "latency p95", Interval(0.05, 0.03, 0.07), 0.02, "breached", False)
    verdict = decide(SPLIT, [_primary("a", -1, 1)], [breach, _guard("a", "pass")])
    assert verdict.reasons == (
        "a's guardrail latency p95 is breached: +0.05 [+0.03, +0.07] against stable, wholly "
        "past the margin +0.02",
    )


def test_several_winners_need_to_beat_each_other() -> None:
    a, b = _primary("a", 0.5, 4.0), _primary("b", 1.0, 5.0)
    apart = decide(THREE, [a, b], pairwise={("a", "b"): Interval(-1.5, -2.5, -0.5)})
    assert (apart.kind, apart.winner) == ("winner", "b")
    assert "beats every other candidate" in apart.reasons[1]
    reversed_key = decide(THREE, [a, b], pairwise={("b", "a"): Interval(1.5, 0.5, 2.5)})
    assert reversed_key.winner == "b"
    close = decide(THREE, [a, b], pairwise={("a", "b"): Interval(-0.5, -1.5, 0.5)})
    assert close.kind == "keep-running"
    assert close.more_units_total is not None
    assert close.more_units_total > 0
    unknown = decide(THREE, [a, b])
    assert unknown.kind == "keep-running"
    assert "no interval between them" in unknown.reasons[0]
    # A candidate with a guardrail open is no rival: the other wins alone.
    alone = decide(THREE, [a, b], [_guard("b", "inconclusive")])
    assert (alone.kind, alone.winner) == ("winner", "a")


def test_three_winners_none_ahead_of_both_others_keep_running() -> None:
    a, b, c = (_primary(name, 0.5, 4.0) for name in "abc")
    pairs = {
        ("a", "b"): Interval(1.0, 0.5, 1.5),  # a ahead of b
        ("a", "c"): Interval(0.0, -1.0, 1.0),
        ("b", "c"): Interval(-1.0, -1.5, -0.5),  # c ahead of b
    }
    verdict = decide(THREE, [a, b, c], pairwise=pairs)
    assert verdict.kind == "keep-running"
    assert verdict.reasons[:3] == (
        "a is surely better than b",
        "a and c both beat stable; between them +0 [-1, +1], not yet surely different",
        "c is surely better than b",
    )
    pairs["a", "c"] = Interval(0.8, 0.1, 1.5)
    assert decide(THREE, [a, b, c], pairwise=pairs).winner == "a"


def test_lower_is_better_pairs_are_oriented() -> None:
    a = _primary("a", -4.0, -0.5, higher_is_better=False)
    b = _primary("b", -5.0, -1.0, higher_is_better=False)
    verdict = decide(THREE, [a, b], pairwise={("a", "b"): Interval(1.5, 0.5, 2.5)})
    assert verdict.winner == "b"  # a - b above 0: a costs more


def test_keep_running_says_how_many_more_units_would_decide() -> None:
    # Estimate +1 with half-width 2, minimum effect 2: significance needs a half-width of 1,
    # fitting within +-2 needs 1 too; the radius grows past the planned samples, so it takes
    # more than the 4 times 1/sqrt(n) alone would say.
    p = _primary("a", -1.0, 3.0, samples=5000.0, planned=5000.0)
    verdict = decide(SPLIT, [p])
    assert verdict.kind == "keep-running"
    assert verdict.more_units is not None
    assert verdict.more_units_total is not None
    factor = 1 + verdict.more_units["a"] / SPLIT.counts["a"]
    assert verdict.more_units_total == pytest.approx(sum(SPLIT.counts.values()) * (factor - 1))
    assert factor > 4

    def half(n: float) -> float:
        return radius(1, n, p.alpha, p.planned) / math.sqrt(n)

    assert 2.0 * half(5000.0 * factor) / half(5000.0) == pytest.approx(1.0, rel=1e-6)
    # Closer to deciding, fewer units.
    nearer = decide(SPLIT, [_primary("a", -0.2, 3.0)])
    assert nearer.more_units_total is not None
    assert nearer.more_units_total < verdict.more_units_total
    assert "would decide" in nearer.reasons[-1]


def test_keep_running_for_a_guardrail_counts_its_distance_to_the_margin() -> None:
    open_guard = Guardrail("a", "precision", Interval(-0.01, -0.03, 0.01), 0.02, "inconclusive")
    verdict = decide(SPLIT, [_primary("a", 0.5, 4.0)], [open_guard])
    assert verdict.kind == "keep-running"
    assert "guardrails are still inconclusive: precision" in verdict.reasons[0]
    assert verdict.more_units_total is not None
    assert verdict.more_units_total > 0


def test_no_rows_yet_keeps_running_without_an_estimate() -> None:
    empty = Moments.of_values([])
    p = primary("a", empty, empty, alpha=0.05, planned=1000.0, minimum_effect=2.0)
    verdict = decide(SPLIT, [p])
    assert verdict.kind == "keep-running"
    assert verdict.reasons[0] == "a: no rows yet"
    assert verdict.more_units is None


def test_the_helpers_measure_from_moments() -> None:
    control = Moments.of_values([(120.0, 140), (0.0, 780), (-15.0, 80)])
    better = Moments.of_values([(120.0, 200), (0.0, 720), (-15.0, 80)])
    p = primary("a", better, control, alpha=0.05, planned=500.0, minimum_effect=2.0)
    assert p.interval.estimate == pytest.approx(7.2)
    assert p.samples == pytest.approx(500.0)
    g = guardrail(
        "a",
        "precision",
        Moments.of_share(200, 280),
        Moments.of_share(140, 220),
        alpha=0.05,
        planned=250.0,
        margin=0.05,
    )
    assert g.outcome == "inconclusive"
    assert g.interval.estimate == pytest.approx(200 / 280 - 140 / 220)


def test_exit_codes_mirror_the_canary_judge() -> None:
    assert EXIT == {"winner": 0, "no-difference": 0, "stop": 1, "keep-running": 3}


def test_no_candidate_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        decide(SPLIT, [])

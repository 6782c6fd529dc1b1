"""The decision of an A/B(/n) experiment, from its statistics: a winner, no difference, keep
running (and about how many more units would decide), or stop. Pure, so the server, the CLI and
the benchmark all decide the same way.

The rules, in order:
1. A sample-ratio mismatch stops the experiment, and nothing else is judged: with the split
   broken, every comparison is biased in an unknown direction.
2. A breached guardrail stops it: a candidate is worse than the control past a margin.
3. A candidate surely better than the control (its interval wholly on the good side of 0) with
   every guardrail passed wins. Several such: the one surely better than each of the others
   wins, else keep running.
4. Every candidate surely worse than the control: the control wins.
5. Every candidate either within (-minimum effect, +minimum effect) or surely worse: no
   difference worth switching to.
6. Otherwise keep running (a candidate surely better but with a guardrail still inconclusive
   included).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from modelops.canary.stats import Interval, effective_samples, radius
from modelops.experiments.stats import (
    Moments,
    Outcome,
    SampleRatio,
    difference,
    non_inferiority,
)

Kind: TypeAlias = Literal["winner", "no-difference", "keep-running", "stop"]

EXIT: dict[str, int] = {"winner": 0, "no-difference": 0, "stop": 1, "keep-running": 3}
"""Exit codes by verdict, as the canary judge's: 0 decided, 1 act now, 3 not yet."""

SRM_CAUSES = (
    "Look for what reaches or counts one variant's units differently: bot filtering that "
    "treats the variants differently, a variant crashing or timing out (its units never "
    "counted), clients dropping the unit field, or a cache in front of one variant."
)


@dataclass(frozen=True)
class Primary:
    """A candidate's primary KPI against the control, with what its interval was computed from
    (enough to say how it will narrow)."""

    candidate: str
    interval: Interval
    """Candidate minus control (`stats.difference`)."""
    minimum_effect: float
    """The smallest difference worth switching for, in the KPI's unit (> 0)."""
    samples: float
    """The effective samples behind the interval (`canary.stats.effective_samples`)."""
    alpha: float
    planned: float
    higher_is_better: bool = True


@dataclass(frozen=True)
class Guardrail:
    """A candidate's guardrail metric against the control (`stats.non_inferiority`)."""

    candidate: str
    name: str
    interval: Interval
    margin: float
    outcome: Outcome
    higher_is_better: bool = True


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    winner: str | None
    """The winning variant (the control's name when every candidate is surely worse)."""
    reasons: tuple[str, ...]
    more_units: Mapping[str, float] | None = None
    """For keep-running: about how many more units per variant (at the current split) would
    decide; None when it cannot be told (no rows yet)."""
    more_units_total: float | None = None

    @property
    def exit_code(self) -> int:
        return EXIT[self.kind]


def primary(
    candidate: str,
    measured: Moments,
    control: Moments,
    *,
    alpha: float,
    planned: float,
    minimum_effect: float,
    higher_is_better: bool = True,
) -> Primary:
    """The candidate's primary comparison, from both variants' moments."""
    return Primary(
        candidate,
        difference(measured, control, alpha=alpha, planned=planned),
        minimum_effect,
        effective_samples(measured.n, control.n),
        alpha,
        planned,
        higher_is_better,
    )


def guardrail(
    candidate: str,
    name: str,
    measured: Moments,
    control: Moments,
    *,
    alpha: float,
    planned: float,
    margin: float,
    higher_is_better: bool = True,
) -> Guardrail:
    """The candidate's guardrail `name`, judged for non-inferiority within `margin`."""
    interval = difference(measured, control, alpha=alpha, planned=planned)
    outcome = non_inferiority(interval, margin, higher_is_better=higher_is_better)
    return Guardrail(candidate, name, interval, margin, outcome, higher_is_better)


def decide(
    srm: SampleRatio,
    primaries: Sequence[Primary],
    guardrails: Sequence[Guardrail] = (),
    pairwise: Mapping[tuple[str, str], Interval] | None = None,
    *,
    control: str = "stable",
) -> Verdict:
    """The verdict (rules in the module's docstring). `pairwise[(a, b)]` is a minus b on the
    primary KPI, needed only when several candidates beat the control."""
    if not primaries:
        raise ValueError("an experiment needs at least one candidate to judge")
    if srm.mismatch:
        return Verdict("stop", None, (_srm_reason(srm), SRM_CAUSES))
    breached = [g for g in guardrails if g.outcome == "breached"]
    if breached:
        return Verdict("stop", None, tuple(_breach_reason(g, control) for g in breached))
    guards = {p.candidate: [g for g in guardrails if g.candidate == p.candidate] for p in primaries}
    gains = {p.candidate: _gain(p) for p in primaries}
    better = [p for p in primaries if gains[p.candidate].low > 0]
    winners = [p for p in better if all(g.outcome == "pass" for g in guards[p.candidate])]
    pending: list[tuple[Primary, float, float]] = []  # (shape, half-width now, half-width needed)
    if winners:
        best, why = _best(winners, pairwise or {}, pending, control)
        if best is not None:
            passed = ", ".join(g.name for g in guards[best.candidate]) or "none set"
            return Verdict(
                "winner",
                best.candidate,
                (
                    f"{best.candidate} beats {control}: {_text(best.interval)}, wholly on the "
                    f"better side of 0; guardrails passed: {passed}",
                    *why,
                ),
            )
        return _keep_running(srm, pending, why)
    for p in better:
        for g in guards[p.candidate]:
            if g.outcome == "inconclusive":
                line = -g.margin if g.higher_is_better else g.margin
                pending.append((p, _half(g.interval), abs(g.interval.estimate - line)))
    if all(gains[p.candidate].high < 0 for p in primaries):
        return Verdict(
            "winner",
            control,
            tuple(f"{p.candidate} is worse than {control}: {_text(p.interval)}" for p in primaries),
        )
    worse_or_same = [p for p in primaries if gains[p.candidate].high < 0 or _within(p)]
    if not better and len(worse_or_same) == len(primaries):
        return Verdict(
            "no-difference",
            None,
            tuple(
                f"{p.candidate} - {control}: {_text(p.interval)}, "
                + (
                    f"within ±{p.minimum_effect:.4g}"
                    if _within(p)
                    else f"surely worse than {control}"
                )
                for p in primaries
            ),
        )
    reasons = []
    for p in primaries:
        gain = gains[p.candidate]
        if math.isnan(gain.estimate):
            reasons.append(f"{p.candidate}: no rows yet")
            pending.append((p, math.inf, p.minimum_effect))
        elif gain.low > 0:
            waiting = [g.name for g in guards[p.candidate] if g.outcome == "inconclusive"]
            reasons.append(
                f"{p.candidate} beats {control} ({_text(p.interval)}) but its guardrails are "
                f"still inconclusive: {', '.join(waiting)}"
            )
        elif not (gain.high < 0 or _within(p)):
            reasons.append(
                f"{p.candidate} - {control}: {_text(p.interval)}, neither surely different "
                f"nor within ±{p.minimum_effect:.4g}"
            )
            target = max(abs(gain.estimate), p.minimum_effect - abs(gain.estimate))
            pending.append((p, _half(gain), target))
    return _keep_running(srm, pending, reasons)


def _best(
    winners: Sequence[Primary],
    pairwise: Mapping[tuple[str, str], Interval],
    pending: list[tuple[Primary, float, float]],
    control: str,
) -> tuple[Primary | None, list[str]]:
    """The winner surely better than every other winner, and the reasons; else (None, why),
    with the undecided pairs added to `pending`."""
    if len(winners) == 1:
        return winners[0], []
    why = []
    for w in winners:
        beats = []
        for o in winners:
            if o is w:
                continue
            between = _between(w, o, pairwise)
            if between is not None and between.low > 0:
                beats.append(f"{w.candidate} - {o.candidate}: {_text(between)}")
        if len(beats) == len(winners) - 1:
            return w, [f"and beats every other candidate that beats it: {'; '.join(beats)}"]
    for i, w in enumerate(winners):
        for o in winners[i + 1 :]:
            between = _between(w, o, pairwise)
            if between is None:
                why.append(f"{w.candidate} and {o.candidate} both win: no interval between them")
                continue
            if between.low > 0 or between.high < 0:
                ahead, behind = (w, o) if between.low > 0 else (o, w)
                why.append(f"{ahead.candidate} is surely better than {behind.candidate}")
                continue
            why.append(
                f"{w.candidate} and {o.candidate} both beat {control}; between them "
                f"{_text(between)}, not yet surely different"
            )
            pending.append((w, _half(between), abs(between.estimate)))
    return None, why


def _between(
    w: Primary, o: Primary, pairwise: Mapping[tuple[str, str], Interval]
) -> Interval | None:
    """w minus o, oriented so that above 0 is better for w."""
    if (w.candidate, o.candidate) in pairwise:
        found = pairwise[(w.candidate, o.candidate)]
    elif (o.candidate, w.candidate) in pairwise:
        f = pairwise[(o.candidate, w.candidate)]
        found = Interval(-f.estimate, -f.high, -f.low)
    else:
        return None
    return found if w.higher_is_better else Interval(-found.estimate, -found.high, -found.low)


def _keep_running(
    srm: SampleRatio, pending: Sequence[tuple[Primary, float, float]], reasons: Sequence[str]
) -> Verdict:
    factor = max((_growth(shape, half, target) for shape, half, target in pending), default=1.0)
    if not math.isfinite(factor) or srm.units <= 0:
        return Verdict("keep-running", None, tuple(reasons))
    more = {name: count * (factor - 1) for name, count in srm.counts.items()}
    total = sum(more.values())
    return Verdict(
        "keep-running",
        None,
        (
            *reasons,
            f"about {total:,.0f} more units would decide (in all {factor:.2g} times the "
            f"{sum(srm.counts.values()):,.0f} so far)",
        ),
        more,
        total,
    )


def _growth(shape: Primary, half: float, target: float) -> float:
    """How many times the current samples it takes for a half-width `half` to shrink to
    `target`, as the confidence sequence's radius / sqrt(n) shrinks (inf if it cannot be told)."""
    if shape.samples <= 0 or not math.isfinite(half) or target <= 0:
        return math.inf
    if half <= target:
        return 1.0
    n, need = shape.samples, target / half

    def shrink(factor: float) -> float:
        now = radius(1, n, shape.alpha, shape.planned) / math.sqrt(n)
        later = radius(1, n * factor, shape.alpha, shape.planned) / math.sqrt(n * factor)
        return later / now

    low, high = 1.0, 2.0
    while shrink(high) > need:
        low, high = high, high * 2
        if high > 1e12:
            return math.inf
    for _ in range(60):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if shrink(middle) > need else (low, middle)
    return high


def _gain(p: Primary) -> Interval:
    """The interval oriented so that above 0 is better for the candidate."""
    i = p.interval
    return i if p.higher_is_better else Interval(-i.estimate, -i.high, -i.low)


def _within(p: Primary) -> bool:
    return -p.minimum_effect < p.interval.low and p.interval.high < p.minimum_effect


def _half(interval: Interval) -> float:
    return (interval.high - interval.low) / 2


def _text(interval: Interval) -> str:
    return f"{interval.estimate:+.4g} [{interval.low:+.4g}, {interval.high:+.4g}]"


def _srm_reason(srm: SampleRatio) -> str:
    shares = ", ".join(
        f"{name} {srm.observed[name]:.2%} (planned {srm.planned[name]:.2%})" for name in srm.counts
    )
    return (
        f"sample ratio mismatch over {srm.units:,.0f} units: {shares}; {srm.short} is short and "
        f"{srm.over} over (Bayes factor {math.exp(min(srm.log_bayes_factor, 700)):.3g}, "
        f"p = {srm.p_value:.2g} at any look, alpha {srm.alpha:g}). Nothing else is judged: "
        "with the split broken every comparison is biased."
    )


def _breach_reason(g: Guardrail, control: str) -> str:
    line = -g.margin if g.higher_is_better else g.margin
    return (
        f"{g.candidate}'s guardrail {g.name} is breached: {_text(g.interval)} against "
        f"{control}, wholly past the margin {line:+.4g}"
    )

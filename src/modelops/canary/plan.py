"""How long each canary step needs (pure), from the current traffic and the judge's bounds.

The bounds under `canary:` in params.yaml are the smallest effects the judge must tell apart
(an error ratio 0.002 higher, a p95 1.2x slower, a PSI of 0.1, ...). For each step, the plan
takes what traffic looks like now as both canary and stable (a canary as good as stable) and
finds the fewest canary requests after which the judge would promote: the confidence sequences
are then narrow enough that every criterion is decided. Time follows from the request rate at
the step's weight, never below `min_soak`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modelops.canary.evidence import Evidence, TrackCounts
from modelops.canary.judge import judge
from modelops.params import CanaryParams, duration_seconds

_MOST = 1e9


@dataclass(frozen=True)
class StepPlan:
    """One step: its weight, the canary's request rate, and what it needs."""

    weight: int
    canary_per_second: float
    requests: float | None
    """Canary requests the step needs; None when no amount of traffic would decide it."""
    seconds: float | None
    binding: str
    """The criteria decided last (what sets the duration)."""

    def fits(self, params: CanaryParams) -> bool:
        return self.seconds is not None and self.seconds <= duration_seconds(
            params.max_step_duration
        )


def plan_steps(
    steps: Sequence[int],
    per_second: float,
    baseline: TrackCounts,
    params: CanaryParams,
    business: Mapping[str, float] | None = None,
) -> list[StepPlan]:
    """A plan for every step below 100% (promoting the last one completes the rollout)."""
    soak = duration_seconds(params.min_soak)
    plans = []
    for weight in (step for step in steps if step < 100):
        canary_rate = per_second * weight / 100
        needed, binding = _requests_needed(weight, baseline, params, business)
        seconds = None
        if needed is not None and canary_rate > 0:
            seconds = max(soak, needed / canary_rate)
        plans.append(StepPlan(weight, canary_rate, needed, seconds, binding))
    return plans


def _requests_needed(
    weight: int,
    baseline: TrackCounts,
    params: CanaryParams,
    business: Mapping[str, float] | None,
) -> tuple[float | None, str]:
    """The fewest canary requests after which an A/A step at `weight` promotes."""
    if baseline.requests <= 0:
        return None, "no traffic to plan from"
    ratio = (100 - weight) / weight

    def verdict(canary_requests: float) -> tuple[bool, str]:
        evidence = Evidence(
            canary=baseline.scaled(canary_requests / baseline.requests),
            stable=baseline.scaled(canary_requests * ratio / baseline.requests),
            step_seconds=math.inf,
            weight=weight,
        )
        result = judge(evidence, params, business)
        open_ = [f.criterion for f in result.findings if f.status == "inconclusive" and f.blocking]
        return result.decision == "promote", ", ".join(open_)

    low = float(params.min_requests)
    decided, binding = verdict(low)
    if decided:
        return low, "min_requests"
    high = low
    while True:
        high *= 2
        if high > _MOST:
            return None, binding
        decided, last = verdict(high)
        if decided:
            break
        binding = last
    for _ in range(40):
        if high / low < 1.01:
            break
        middle = math.sqrt(low * high)
        decided, last = verdict(middle)
        if decided:
            high = middle
        else:
            low, binding = middle, last
    return math.ceil(high), binding

"""How long each canary step needs (pure), from the current traffic and the judge's bounds.

The bounds under `canary:` in params.yaml (and, for the inputs, the drift gate's under
`gates.drift`) are the smallest effects the judge must tell apart (an error ratio 0.002 higher,
a p95 1.2x slower, a score distribution 0.1 apart, a Cramér's V of 0.2, ...). For each step,
the plan takes what traffic looks like now as both canary and stable (a canary as good as
stable) and finds the fewest canary requests after which the judge would promote: the
confidence sequences are then narrow enough that every criterion is decided. Time follows from
the request rate at the step's weight, never below `min_soak`. A plan with a step longer than
`max_step_duration` (or one no traffic decides) does not fit: the command exits 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from modelops.canary.evidence import Evidence, TrackCounts
from modelops.canary.judge import duration_words, judge
from modelops.errors import CanaryError, ExitCode
from modelops.params import CanaryParams, DriftGateParams, duration_seconds

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


@dataclass(frozen=True)
class Traffic:
    """Predict requests of both tracks over the last `window`, in an environment's namespace."""

    namespace: str
    window: str
    stable: TrackCounts
    canary: TrackCounts
    covered: float
    """Seconds of the window that have counts (a young deployment has less than the window)."""

    @property
    def per_second(self) -> float:
        return (self.stable.requests + self.canary.requests) / self.covered

    @property
    def baseline(self) -> TrackCounts:
        """What one model's traffic looks like now: stable's, or the canary's without it."""
        return self.stable if self.stable.requests > 0 else self.canary


@dataclass(frozen=True)
class RolloutPlan:
    """Every step's plan at the current traffic, and the bounds it was made with."""

    environment: str
    traffic: Traffic
    steps: tuple[StepPlan, ...]
    params: CanaryParams

    @property
    def fits(self) -> bool:
        """Every step decides within `max_step_duration`."""
        return all(step.fits(self.params) for step in self.steps)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.fits else ExitCode.FAILED


def window_seconds(window: str) -> float:
    """`--window` (a PromQL duration) in seconds, or a refusal that shows the form."""
    try:
        return float(duration_seconds(window))
    except (KeyError, ValueError):
        raise CanaryError(f"--window must be like 30m, 1h or 1d, got {window!r}") from None


def plan_rollout(
    environment: str,
    steps: Sequence[int],
    traffic: Traffic,
    params: CanaryParams,
    business: Mapping[str, float] | None = None,
    *,
    drift: DriftGateParams,
) -> RolloutPlan:
    """The plan of every step at `traffic`; a refusal when there is none to plan from
    (`drift`: the drift gate's limits, which the judge holds the inputs to)."""
    if traffic.stable.requests + traffic.canary.requests <= 0 or traffic.covered <= 0:
        raise CanaryError(
            f"no predict requests in namespace {traffic.namespace} over the last "
            f"{traffic.window}: the plan needs current traffic (try a longer --window)"
        )
    planned = plan_steps(steps, traffic.per_second, traffic.baseline, params, business, drift=drift)
    return RolloutPlan(environment, traffic, tuple(planned), params)


def to_text(plan: RolloutPlan) -> str:
    """The plan as `canary plan` prints it: the traffic, one line per step, the total."""
    traffic, judge, baseline = plan.traffic, plan.params, plan.traffic.baseline
    lines = [
        f"plan for {plan.environment}: {traffic.per_second:.3g} predict requests/s over the last "
        f"{duration_words(traffic.covered)} (of --window {traffic.window}) "
        f"(error ratio {_ratio(baseline.server_errors, baseline.requests)}, positive rate "
        f"{_ratio(baseline.positive, baseline.predicted)}); bounds from params.yaml canary: "
        "(the inputs: gates.drift), "
        f"alpha {judge.alpha:g}, min_soak {judge.min_soak}, max_step_duration "
        f"{judge.max_step_duration}"
    ]
    for step in plan.steps:
        if step.requests is None or step.seconds is None:
            lines.append(f"  {step.weight:>3}%: cannot be decided at any traffic ({step.binding})")
            continue
        fits = "" if step.fits(judge) else "  > max_step_duration: raise traffic or bounds"
        lines.append(
            f"  {step.weight:>3}%: {step.requests:>9.0f} canary requests at "
            f"{step.canary_per_second:.3g}/s = {duration_words(step.seconds)} (set by "
            f"{step.binding}){fits}"
        )
    total = sum(s.seconds for s in plan.steps if s.seconds is not None)
    lines.append(
        f"  whole rollout: about {duration_words(total)} if every step promotes at its first chance"
    )
    return "\n".join(lines)


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.2%}" if whole > 0 else "n/a"


def plan_steps(
    steps: Sequence[int],
    per_second: float,
    baseline: TrackCounts,
    params: CanaryParams,
    business: Mapping[str, float] | None = None,
    *,
    drift: DriftGateParams,
) -> list[StepPlan]:
    """A plan for every step below 100% (promoting the last one completes the rollout)."""
    soak = duration_seconds(params.min_soak)
    plans = []
    for weight in (step for step in steps if step < 100):
        canary_rate = per_second * weight / 100
        needed, binding = _requests_needed(weight, baseline, params, business, drift)
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
    drift: DriftGateParams,
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
        result = judge(evidence, params, business, drift=drift)
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

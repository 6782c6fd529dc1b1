"""What a load test concludes (pure): each step's verdict, the knee, the next rate to try, and
the replicas and per-replica target that follow from the knee and the traffic.

A step passes when the latency objective holds with confidence and nothing failed: the share
of requests slower than the objective's threshold (counted from when each request was due, see
`locustfile`) has a 95 % Wilson interval wholly at or below `1 - quantile`, and no request
failed. It fails on any error, or when the whole interval is above; otherwise it is
inconclusive (too few requests to tell). The knee is the highest passing rate below every step
that did not pass: an inconclusive step caps it too, so the knee is never a guess.

The replica proposal (N+1: the replicas keep their target with one of them lost, as a node
drain or a crash leaves it; the PodDisruptionBudget lets one go at a time):

    target_rps_per_replica = knee * (1 - headroom)
    min_replicas = max(2, ceil(baseline / target) + 1)
    max_replicas = max(min_replicas, ceil(peak / target) + 1)

`headroom` is the share of the knee an autoscaler keeps free: room for the minute it takes to
add a replica, and for the difference between this machine and a node.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from modelops.statistics import Decision, decide_at_most, rows_to_show_rate_below, wilson, z_value

Verdict: TypeAlias = Decision
LimitedBy: TypeAlias = Literal["objective", "max_rate", "rates", "budget"]

CONFIDENCE = 0.95
MIN_REPLICAS = 2
"""Never fewer: one replica is a single point of failure."""
MIN_RATE = 1.0
"""Requests/s below which the search stops going down."""
RESOLUTION = 0.1
"""The search stops refining when the next failing rate is within 10 % of the knee."""
FACTOR = 2.0
"""The climb doubles the rate from step to step until one does not pass."""


@dataclass(frozen=True)
class Objective:
    """The latency objective one replica must hold: `quantile` of requests within
    `threshold_seconds` (monitoring.objectives.latency)."""

    quantile: float
    threshold_seconds: float
    confidence: float = CONFIDENCE

    @property
    def allowed_slow_share(self) -> float:
        return 1.0 - self.quantile

    @property
    def z(self) -> float:
        return z_value(self.confidence)

    def requests_to_pass(self) -> int:
        """The fewest requests with which a step can pass at all (none of them slow)."""
        return rows_to_show_rate_below(0.0, self.allowed_slow_share, z=self.z) or 1

    def requests_wanted(self) -> int:
        """Requests a step aims for: enough that a replica whose slow share is a quarter of
        the allowed one passes (726 for a p99)."""
        wanted = rows_to_show_rate_below(
            self.allowed_slow_share / 4, self.allowed_slow_share, z=self.z
        )
        return wanted or self.requests_to_pass()


@dataclass(frozen=True)
class Usage:
    """What the processes used over a step: CPU in cores (CPU-seconds per second), memory
    in MiB (the largest resident set seen); None where it was not measured."""

    server_cpu_cores: float | None = None
    server_memory_mib: float | None = None
    generator_cpu_cores: float | None = None


@dataclass(frozen=True)
class Step:
    """One step of offered load and what it showed."""

    rate: float
    """Offered requests per second (open loop: due times fixed in advance)."""
    seconds: float
    requests: int
    """Requests due in the step: answered, failed, or never answered."""
    errors: int
    """Requests not answered 200 (a refusal, a server error, a timeout, no connection)."""
    slow: int
    """Requests answered 200 later than the threshold after they were due."""
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    achieved_rps: float
    """Requests answered 200 per second of the step."""
    send_lag_p99_ms: float | None
    """How late the generator sent (p99): high when its users waited on slow answers."""
    usage: Usage
    verdict: Verdict
    reason: str


def judge(requests: int, errors: int, slow: int, objective: Objective) -> tuple[Verdict, str]:
    """A step's verdict from its counts, and why."""
    if errors:
        return "fail", f"{errors} of {requests} requests failed (the objective allows none)"
    limit = objective.allowed_slow_share
    interval = wilson(slow, requests, z=objective.z)
    decision = decide_at_most(interval, limit)
    share = f"slower than {objective.threshold_seconds * 1000:g} ms: {slow} of {requests}"
    bound = f"{interval.low:.2%} to {interval.high:.2%}"
    if decision == "pass":
        return "pass", f"{share} ({bound}, at most {limit:.2%} allowed)"
    if decision == "fail":
        return "fail", f"{share} ({bound}, above the {limit:.2%} allowed)"
    if requests < objective.requests_to_pass():
        return "inconclusive", (
            f"{share}: too few requests to show a p{objective.quantile * 100:g} (at least "
            f"{objective.requests_to_pass()} needed)"
        )
    return "inconclusive", f"{share} ({bound}, straddles the {limit:.2%} allowed)"


def summarize(
    rate: float,
    seconds: float,
    planned: int,
    samples: Sequence[tuple[float, float, float, int]],
    objective: Objective,
    usage: Usage,
) -> Step:
    """A step from its samples, (due, sent, answered, status) each, seconds after the step's
    start; `planned` requests were due, and those without a sample count as failed."""
    ok = sorted(answered - due for due, _, answered, status in samples if status == 200)
    lags = sorted(sent - due for due, sent, _, _ in samples)
    errors = planned - len(ok)
    slow = sum(latency > objective.threshold_seconds for latency in ok)
    verdict, reason = judge(planned, errors, slow, objective)
    return Step(
        rate=rate,
        seconds=seconds,
        requests=planned,
        errors=errors,
        slow=slow,
        p50_ms=_quantile_ms(ok, 0.50),
        p95_ms=_quantile_ms(ok, 0.95),
        p99_ms=_quantile_ms(ok, 0.99),
        achieved_rps=round(len(ok) / seconds, 1) if seconds > 0 else 0.0,
        send_lag_p99_ms=_quantile_ms(lags, 0.99),
        usage=usage,
        verdict=verdict,
        reason=reason,
    )


def _quantile_ms(ordered: Sequence[float], q: float) -> float | None:
    """The `q` quantile of sorted seconds, in ms (the value at rank ⌈q·n⌉); None when empty."""
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return round(ordered[index] * 1000, 2)


def step_seconds(rate: float, duration: float, objective: Objective) -> float:
    """How long a step at `rate` runs: `duration`, or longer at a low rate, until it holds the
    requests the objective wants (`Objective.requests_wanted`)."""
    return max(duration, math.ceil(objective.requests_wanted() / rate))


@dataclass(frozen=True)
class Knee:
    """The highest rate one replica sustained, and the lowest one above it it did not."""

    step: Step | None
    """The knee's step; None when no step passed below every step that did not."""
    upper: Step | None
    """The lowest step above the knee that did not pass; None when none was measured."""

    @property
    def rate(self) -> float | None:
        return self.step.rate if self.step else None


def knee(steps: Sequence[Step]) -> Knee:
    """The highest passing step below the lowest step that did not pass."""
    failing = [step for step in steps if step.verdict != "pass"]
    ceiling = min((step.rate for step in failing), default=math.inf)
    below = [step for step in steps if step.verdict == "pass" and step.rate < ceiling]
    found = max(below, key=lambda step: step.rate, default=None)
    floor = found.rate if found else -math.inf
    above = [step for step in failing if step.rate > floor]
    return Knee(found, min(above, key=lambda step: step.rate, default=None))


@dataclass(frozen=True)
class Ladder:
    """Which rates to try: the given `rates` in order (stopping at the first that fails), or
    a search from `start`: doubling up to `max_rate` until a step does not pass, then halving
    the gap (geometrically) between the knee and that step until it is within `RESOLUTION`;
    halving down from `start` while nothing passes."""

    start: float
    max_rate: float
    rates: tuple[float, ...] = ()


def next_rate(ladder: Ladder, steps: Sequence[Step]) -> float | None:
    """The next rate to measure; None when the search is done."""
    measured = {step.rate for step in steps}
    if ladder.rates:
        if any(step.verdict == "fail" for step in steps):
            return None
        return next((rate for rate in sorted(ladder.rates) if rate not in measured), None)
    if not steps:
        return float(min(ladder.start, ladder.max_rate))
    found = knee(steps)
    if found.step is None:
        lowest = min(measured) / FACTOR
        return _rounded(lowest) if lowest >= MIN_RATE and _rounded(lowest) not in measured else None
    if found.upper is None:
        if found.step.rate >= ladder.max_rate:
            return None
        candidate = min(_rounded(found.step.rate * FACTOR), ladder.max_rate)
        return candidate if candidate not in measured else None
    if found.upper.rate <= found.step.rate * (1 + RESOLUTION):
        return None
    middle = _rounded(math.sqrt(found.step.rate * found.upper.rate))
    return (
        middle if middle not in measured and found.step.rate < middle < found.upper.rate else None
    )


def _rounded(rate: float) -> float:
    """A rate a person can read: whole requests/s from 10 on, one decimal below."""
    return float(round(rate)) if rate >= 10 else round(rate, 1)


def limited_by(ladder: Ladder, steps: Sequence[Step], *, out_of_budget: bool) -> LimitedBy:
    """What bounds the knee: a step above it that did not pass (the objective), or, with none
    measured, the time budget, the end of the given rates, or the highest rate allowed."""
    if knee(steps).upper is not None:
        return "objective"
    if out_of_budget:
        return "budget"
    return "rates" if ladder.rates else "max_rate"


@dataclass(frozen=True)
class Traffic:
    """An environment's requests per second: its peak, and its usual (baseline) level."""

    peak_rps: float
    baseline_rps: float
    source: str
    """Where the numbers come from (a Prometheus query over a window, or the command line)."""


@dataclass(frozen=True)
class Proposal:
    """Replicas and the per-replica scaling target for one environment (module docstring)."""

    min_replicas: int
    max_replicas: int
    target_rps_per_replica: float
    headroom: float
    knee_rps: float
    rows_per_request: int


def propose(knee_rps: float, rows: int, traffic: Traffic, *, headroom: float) -> Proposal:
    """The replicas and target that keep each replica below its knee at the traffic."""
    target = knee_rps * (1.0 - headroom)
    least = max(MIN_REPLICAS, math.ceil(traffic.baseline_rps / target) + 1)
    most = max(least, math.ceil(traffic.peak_rps / target) + 1)
    return Proposal(
        min_replicas=least,
        max_replicas=most,
        target_rps_per_replica=round(target, 1),
        headroom=headroom,
        knee_rps=knee_rps,
        rows_per_request=rows,
    )


def cautions(
    steps: Sequence[Step], *, server_cores: int, generator_cores: int, rows: int
) -> list[str]:
    """What makes one request size's knee less sure, from the steps themselves: a server that
    did not use its CPUs where it stopped passing (something else held them, so the knee is
    likely low), or a load generator near its CPU's limit (its own delays are in the
    latencies). `*_cores`: CPUs each was pinned to (0: not pinned, the generator then counts
    against one core)."""
    found = knee(steps)
    said = []
    upper = found.upper
    cpu = upper.usage.server_cpu_cores if upper else None
    if upper is not None and cpu is not None and server_cores and cpu < 0.75 * server_cores:
        said.append(
            f"{rows} row(s): where it stopped passing ({upper.rate:g} req/s) the server used "
            f"{cpu:g} of its {server_cores} CPU(s): it was not CPU-bound, so other work on this "
            "machine (or a wait inside the server) held it back and the knee is likely low; "
            "measure again on a quiet machine"
        )
    ceiling = upper.rate if upper else math.inf
    busy = [
        step
        for step in steps
        if step.rate <= ceiling
        and (step.usage.generator_cpu_cores or 0.0) > 0.8 * max(generator_cores, 1)
    ]
    if busy:
        said.append(
            f"{rows} row(s): the load generator used over 80 % of its CPU at "
            f"{', '.join(f'{step.rate:g}' for step in busy)} req/s: its own delays are in "
            "those latencies, so the knee may be low"
        )
    return said


def cpu_split(cpu_limit: str, available: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(the server's CPUs, the load generator's): as many for the server as the pod's CPU limit
    rounds up to, one at least left to the generator so that it does not take the server's
    time; ((), ()) on a machine with one CPU (nothing pinned)."""
    if len(available) < 2:
        return (), ()
    cores = quantity_cores(cpu_limit)
    server = max(1, min(math.ceil(cores), len(available) - 1))
    ordered = tuple(sorted(available))
    return ordered[:server], ordered[server:]


def quantity_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity in cores: "500m" is 0.5, "2" is 2."""
    text = quantity.strip()
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)

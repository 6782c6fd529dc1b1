"""The capacity policy as tables: a step's verdict, the knee, the search's next rate, the
replica proposal, the CPU split and the cautions (modelops.capacity.policy, pure)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from modelops.capacity.policy import (
    Ladder,
    Objective,
    Step,
    Traffic,
    Usage,
    cautions,
    cpu_split,
    judge,
    knee,
    limited_by,
    next_rate,
    propose,
    quantity_cores,
    step_seconds,
    summarize,
)

P99 = Objective(quantile=0.99, threshold_seconds=0.1)


def step(rate: float, verdict: str = "pass", **usage: float) -> Step:
    return Step(
        rate=rate,
        seconds=10,
        requests=1000,
        errors=0,
        slow=0,
        p50_ms=1.0,
        p95_ms=2.0,
        p99_ms=3.0,
        achieved_rps=rate,
        send_lag_p99_ms=0.5,
        usage=Usage(**usage),
        verdict=verdict,  # type: ignore[arg-type]
        reason="",
    )


@pytest.mark.parametrize(
    ("requests", "errors", "slow", "verdict", "said"),
    [
        (1000, 0, 0, "pass", "0 of 1000"),
        (1000, 0, 3, "pass", "3 of 1000"),
        (1000, 1, 0, "fail", "1 of 1000 requests failed"),
        (1000, 0, 30, "fail", "above the 1.00% allowed"),
        (1000, 0, 9, "inconclusive", "straddles"),
        (200, 0, 0, "inconclusive", "too few requests to show a p99 (at least 381 needed)"),
        (381, 0, 0, "pass", "0 of 381"),
    ],
)
def test_a_step_passes_only_when_the_interval_of_slow_requests_is_within_the_objective(
    requests: int, errors: int, slow: int, verdict: str, said: str
) -> None:
    found, reason = judge(requests, errors, slow, P99)
    assert found == verdict, reason
    assert said in reason


def test_the_objective_says_how_many_requests_a_step_needs() -> None:
    assert P99.requests_to_pass() == 381
    assert P99.requests_wanted() == 726
    p90 = Objective(quantile=0.9, threshold_seconds=0.5)
    assert p90.requests_to_pass() < p90.requests_wanted() < P99.requests_to_pass()
    # Given a low rate, the step lasts until it holds the wanted requests; else --duration.
    assert step_seconds(10, 10, P99) == 73
    assert step_seconds(500, 10, P99) == 10


def test_latency_counts_from_when_a_request_was_due_and_missing_answers_are_errors() -> None:
    # Given 4 requests due 0.1 s apart, one sent late (a stall) and answered 0.02 s after it
    # went out, one refused (500), one never answered (no sample), then the stalled request is
    # slow (0.25 s after it was due) even though the server took 0.02 s.
    samples = [(0.0, 0.0, 0.01, 200), (0.1, 0.33, 0.35, 200), (0.2, 0.2, 0.21, 500)]
    found = summarize(10.0, 0.4, 4, samples, P99, Usage())
    assert (found.requests, found.errors, found.slow) == (4, 2, 1)
    assert found.verdict == "fail"
    assert found.p50_ms == 10.0
    assert found.p99_ms == 250.0
    assert found.send_lag_p99_ms == 230.0
    assert found.achieved_rps == 5.0


@pytest.mark.parametrize(
    ("steps", "knee_rate", "upper_rate"),
    [
        ([step(100), step(200), step(400, "fail")], 200, 400),
        ([step(100), step(200)], 200, None),
        ([step(100, "fail")], None, 100),
        # An inconclusive step caps the knee too: it is never a guess.
        ([step(100), step(200, "inconclusive"), step(400)], 100, 200),
        # A pass above a failure does not count (noise, or a queue that drained).
        ([step(50), step(100, "fail"), step(141)], 50, 100),
        ([], None, None),
    ],
)
def test_the_knee_is_the_highest_pass_below_every_step_that_did_not_pass(
    steps: list[Step], knee_rate: float | None, upper_rate: float | None
) -> None:
    found = knee(steps)
    assert found.rate == knee_rate
    assert (found.upper.rate if found.upper else None) == upper_rate


def search(ladder: Ladder, true_knee: float, *, budget: int = 30) -> list[float]:
    """The rates the search tries against a replica that passes up to `true_knee`."""
    steps: list[Step] = []
    while (rate := next_rate(ladder, steps)) is not None and len(steps) < budget:
        steps.append(step(rate, "pass" if rate <= true_knee else "fail"))
    return [s.rate for s in steps]


def test_the_search_doubles_then_narrows_the_knee_to_ten_percent() -> None:
    tried = search(Ladder(start=50, max_rate=2000), true_knee=300)
    assert tried[:4] == [50, 100, 200, 400]
    found = knee([step(r, "pass" if r <= 300 else "fail") for r in tried])
    assert found.rate is not None
    assert found.upper is not None
    assert found.rate <= 300 < found.upper.rate <= found.rate * 1.1
    assert len(tried) <= 8, tried


def test_the_search_goes_down_while_nothing_passes_and_stops_at_the_highest_rate() -> None:
    assert search(Ladder(start=80, max_rate=2000), true_knee=15)[:4] == [80, 40, 20, 10]
    assert search(Ladder(start=80, max_rate=2000), true_knee=0.5)[-1] == 1.2
    assert search(Ladder(start=80, max_rate=300), true_knee=10_000) == [80, 160, 300]
    # Given rates, they run in order until one fails; no refinement.
    given = Ladder(start=1, max_rate=1, rates=(400, 100, 200, 800))
    assert search(given, true_knee=250) == [100, 200, 400]


def test_why_the_search_stopped() -> None:
    ladder = Ladder(start=50, max_rate=100)
    assert limited_by(ladder, [step(50), step(100, "fail")], out_of_budget=False) == "objective"
    assert limited_by(ladder, [step(50), step(100)], out_of_budget=False) == "max_rate"
    assert limited_by(ladder, [step(50)], out_of_budget=True) == "budget"
    given = replace(ladder, rates=(50,))
    assert limited_by(given, [step(50)], out_of_budget=False) == "rates"


@pytest.mark.parametrize(
    ("knee_rps", "peak", "baseline", "headroom", "expected"),
    [
        # target 70; baseline 100 -> 2 + 1 = 3; peak 300 -> 5 + 1 = 6.
        (100.0, 300.0, 100.0, 0.3, (3, 6, 70.0)),
        # Little traffic: never fewer than 2, and max at least min.
        (500.0, 5.0, 1.0, 0.3, (2, 2, 350.0)),
        (500.0, 0.0, 0.0, 0.3, (2, 2, 350.0)),
        # No headroom: the target is the knee itself.
        (100.0, 250.0, 250.0, 0.0, (4, 4, 100.0)),
    ],
)
def test_the_proposal_keeps_every_replica_at_its_target_with_one_lost(
    knee_rps: float,
    peak: float,
    baseline: float,
    headroom: float,
    expected: tuple[int, int, float],
) -> None:
    proposal = propose(knee_rps, 1, Traffic(peak, baseline, "given"), headroom=headroom)
    assert (proposal.min_replicas, proposal.max_replicas, proposal.target_rps_per_replica) == (
        expected
    )
    target = proposal.target_rps_per_replica
    assert (proposal.max_replicas - 1) * target >= peak, "peak carried with one replica lost"
    assert (proposal.min_replicas - 1) * target >= baseline


@pytest.mark.parametrize(
    ("limit", "available", "server", "generator"),
    [
        ("1", (0, 1), (0,), (1,)),
        ("500m", (0, 1), (0,), (1,)),
        ("2", (0, 1), (0,), (1,)),  # one CPU is always left to the generator
        ("2", (0, 1, 2, 3), (0, 1), (2, 3)),
        ("1", (5,), (), ()),  # one CPU: nothing pinned
    ],
)
def test_the_server_gets_as_many_cpus_as_its_limit_and_the_generator_the_rest(
    limit: str, available: tuple[int, ...], server: tuple[int, ...], generator: tuple[int, ...]
) -> None:
    assert cpu_split(limit, available) == (server, generator)


def test_cpu_quantities() -> None:
    assert quantity_cores("250m") == 0.25
    assert quantity_cores("2") == 2.0
    assert math.isclose(quantity_cores("1500m"), 1.5)


def test_cautions_name_a_server_that_was_not_cpu_bound_and_a_busy_generator() -> None:
    calm = [step(100, server_cpu_cores=0.5), step(200, "fail", server_cpu_cores=0.97)]
    assert cautions(calm, server_cores=1, generator_cores=1, rows=1) == []
    starved = [step(100), step(200, "fail", server_cpu_cores=0.3)]
    (said,) = cautions(starved, server_cores=1, generator_cores=1, rows=1)
    assert "the server used 0.3 of its 1 CPU(s)" in said
    busy = [step(100, generator_cpu_cores=0.95), step(200, "fail", server_cpu_cores=1.0)]
    (said,) = cautions(busy, server_cores=1, generator_cores=1, rows=100)
    assert said.startswith("100 row(s): the load generator used over 80 % of its CPU at 100")

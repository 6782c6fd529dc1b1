"""Gate `latency`: is the candidate slower to serve than the champion, per row?

What is timed is what a server worker does with a request once it has parsed it: the scoring
path `modelops_serving.scoring` chooses for the model at load (the fast exact path for the
default pipeline, the pipeline's own `predict_proba` otherwise), on one thread, as a worker
answers one request at a time. So a candidate that falls off the fast path reads as slower,
as it would serve. The parsing, validation and telemetry around it cost both models the same and
are left out: the ratio is the model's share of a request, not the whole request's.

Both models score the same sampled test rows in this process, in paired repeats: in each, for
each request shape (one-row requests; batches), the two answer the same requests in turns, in
a random order each turn, so a noisy neighbour or a slower moment hits both alike. Per repeat,
the ratio of their median call's time per row; the median of those ratios with the sign test's
interval over the repeats decides (`statistics.median_interval`): fail when the whole interval
is beyond 1 + `gates.latency.max_slowdown`, pass when it is wholly within, inconclusive
otherwise. Measuring is impure (`measure`); deciding is a pure function of the timings
(`judge`).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd
from modelops_serving.scoring import scoring
from threadpoolctl import threadpool_limits

from modelops.gates.champion import (
    Matchup,
    columns_of,
    failed_closed,
    one_line,
    without_champion,
)
from modelops.gates.results import CheckRecord, GateResult, gate_status
from modelops.statistics import (
    Interval,
    decide_at_most,
    leans_beyond_limit,
    median_interval,
    median_interval_size,
)

if TYPE_CHECKING:
    from modelops.params import GatesParams, LatencyCheck, LatencyGateParams

TITLE = "Serving latency"
THREADS = 1
"""Threads a model may use while timed: a server worker's (`modelops_serving.launch`)."""
_PROBE_ROWS = 5
"""Rows the scoring path is checked on at load, as the server checks it on its input example."""
_WARM_UPS = 2

Request: TypeAlias = Mapping[str, list[Any]]
"""Columns of rows, name -> values: what the server hands its scoring path."""
Score: TypeAlias = Callable[[Request], Any]


@dataclass(frozen=True)
class Timings:
    """Seconds per row of each model in each paired repeat, for one request shape."""

    check: LatencyCheck
    candidate: tuple[float, ...]
    champion: tuple[float, ...]
    requests: int
    """Requests each model answered per repeat."""
    rows: int
    """Rows per request."""

    def __post_init__(self) -> None:
        if not self.candidate or len(self.candidate) != len(self.champion):
            raise ValueError("timings are paired, one of each model per repeat, at least one")


@dataclass(frozen=True)
class Contender:
    """One model as a server would score it, and its requests (from its own columns)."""

    score: Score
    path: str
    """The scoring path the server would choose for it: trees, lookup or pipeline."""
    singles: tuple[Request, ...]
    """One request per sampled row."""
    columns: Mapping[str, list[Any]]
    """Every sampled row, by column, to cut batches from."""

    def requests(self, check: LatencyCheck, repeat: int, *, count: int, rows: int) -> list[Request]:
        """The requests of one repeat: the same rows for every model, other rows each repeat."""
        total = len(self.singles)
        if check == "single_row":
            return [self.singles[(repeat * count + i) % total] for i in range(count)]
        starts = [(repeat * count + i) * rows for i in range(count)]
        return [
            {
                name: [values[(start + i) % total] for i in range(rows)]
                for name, values in self.columns.items()
            }
            for start in starts
        ]


def latency_gate(gates: GatesParams, matchup: Matchup) -> GateResult:
    """Time both models on the same sampled test rows and judge the candidate's time per row."""
    params, statistics = gates.latency, gates.statistics
    skipped = without_champion("latency", params.mode, matchup, title=TITLE)
    if skipped is not None:
        return skipped
    assert matchup.champion is not None, "without_champion returned a result otherwise"
    checks: tuple[LatencyCheck, ...] = ("single_row", "batch")
    measured = [check for check in checks if check not in params.skip]
    try:
        sample = matchup.test.sample(
            n=min(params.rows, len(matchup.test)), random_state=statistics.seed
        )
        candidate, champion = (
            contender(model, sample, columns_of(model, matchup.test, matchup.schema))
            for model in (matchup.candidate, matchup.champion)
        )
        started = time.perf_counter()
        timings = measure(
            candidate,
            champion,
            measured,
            requests=params.requests,
            batch_rows=min(params.batch_rows, len(sample)),
            repeats=params.repeats,
            seed=statistics.seed,
            max_seconds=params.max_seconds,
        )
        seconds = time.perf_counter() - started
    except Exception as exc:
        return failed_closed("latency", params.mode, TITLE, one_line(exc), context=matchup.context)
    records = [judge(found, params, confidence=statistics.confidence) for found in timings]
    records += [_left_out(check) for check in checks if check in params.skip]
    done = len(timings[0].candidate) if timings else 0
    context = {
        **matchup.context,
        "latency": f"{len(sample)} sampled test rows, {done} paired repeats in {seconds:.1f} s, "
        f"{THREADS} thread; scoring path: candidate {candidate.path}, champion {champion.path}",
    }
    return GateResult(
        "latency", params.mode, gate_status(records), checks=tuple(records), context=context
    )


def contender(model: Any, sample: pd.DataFrame, columns: Sequence[str]) -> Contender:
    """A model's scoring path as the server chooses it, and its requests for the sampled rows.

    Chosen on one thread, as a server worker does: OpenMP's default of every core is slow on a
    busy machine (the exactness check calls the pipeline itself).
    """
    values = {name: sample[name].tolist() for name in columns}
    probe = {name: column[:_PROBE_ROWS] for name, column in values.items()}
    with threadpool_limits(limits=THREADS):
        chosen = scoring(model, list(columns), probe=probe, threads=THREADS)
    singles = tuple(
        {name: [column[row]] for name, column in values.items()} for row in range(len(sample))
    )
    return Contender(chosen.predict_proba, chosen.path, singles, values)


def measure(
    candidate: Contender,
    champion: Contender,
    checks: Sequence[LatencyCheck],
    *,
    requests: int,
    batch_rows: int,
    repeats: int,
    seed: int,
    max_seconds: float,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> list[Timings]:
    """Time both models on the same requests, interleaved, for `repeats` paired repeats.

    In each repeat and for each request shape, the two models answer `requests` requests in
    turns (A B, B A, ... a seeded coin deciding each turn's order), each call timed on its own,
    so a burst of load lands on both; a repeat keeps each model's median call (a call that was
    preempted does not move it). One thread (`threadpoolctl`), no garbage collection while
    timing, both models warmed up first. Stops early after `max_seconds` (the repeats done so
    far are returned).
    """
    contenders = (candidate, champion)
    shapes = {"single_row": 1, "batch": batch_rows}
    seconds: dict[str, tuple[list[float], list[float]]] = {check: ([], []) for check in checks}
    coins = np.random.default_rng(seed).random((repeats, len(checks), requests)) < 0.5
    deadline = time.perf_counter() + max_seconds
    collecting = gc.isenabled()
    with threadpool_limits(limits=THREADS):
        for model in contenders:
            for _ in range(_WARM_UPS):
                for check in checks:
                    model.score(model.requests(check, 0, count=1, rows=shapes[check])[0])
        gc.collect()
        gc.disable()
        try:
            for repeat in range(repeats):
                for position, check in enumerate(checks):
                    rows = shapes[check]
                    asked = [
                        model.requests(check, repeat, count=requests, rows=rows)
                        for model in contenders
                    ]
                    calls: tuple[list[int], list[int]] = ([], [])
                    for turn in range(requests):
                        for who in (0, 1) if coins[repeat, position, turn] else (1, 0):
                            score, request = contenders[who].score, asked[who][turn]
                            start = clock()
                            score(request)
                            calls[who].append(clock() - start)
                    for who in (0, 1):
                        # A clock tick at least: a ratio needs a time above zero on both sides.
                        typical = max(float(np.median(calls[who])), 1.0)
                        seconds[check][who].append(typical / 1e9 / rows)
                if time.perf_counter() > deadline:
                    break
        finally:
            if collecting:
                gc.enable()
    return [
        Timings(
            check,
            tuple(seconds[check][0]),
            tuple(seconds[check][1]),
            requests=requests,
            rows=shapes[check],
        )
        for check in checks
    ]


def judge(timings: Timings, params: LatencyGateParams, *, confidence: float) -> CheckRecord:
    """The candidate's time per row against the champion's, decided by the ratio's interval.

    The ratio of each repeat (candidate over champion, on the same requests) is taken on a log
    scale; its median and the sign test's interval for it (`statistics.median_interval`) are
    turned back into ratios. Pure: a table of timings in, one check record out.
    """
    limit = 1.0 + params.max_slowdown
    repeats = len(timings.candidate)
    ratios = np.log(np.asarray(timings.candidate)) - np.log(np.asarray(timings.champion))
    found = median_interval(ratios, confidence=confidence)
    shape = (
        "one-row requests" if timings.check == "single_row" else f"batches of {timings.rows} rows"
    )
    dataset = f"{shape}, both models"
    condition = f"time per row at most {limit:g}x the champion's"
    times = (
        f"candidate {_duration(float(np.median(timings.candidate)))} vs champion "
        f"{_duration(float(np.median(timings.champion)))} per row"
    )
    how = (
        f"median of {repeats} paired repeats of {timings.requests} "
        f"request{'s' if timings.requests != 1 else ''} per model"
    )
    tuned_by = (
        f"gates.latency.max_slowdown = {params.max_slowdown:g}; "
        f"gates.latency.repeats = {params.repeats}; gates.latency.skip: [{timings.check}]"
    )
    if found is None:
        typical = math.exp(float(np.median(ratios)))
        needed = median_interval_size(confidence)
        return CheckRecord(
            timings.check,
            TITLE,
            dataset,
            condition,
            f"{times}: {typical:.2f}x, no interval ({how})",
            "inconclusive",
            f"inconclusive: {repeats} paired repeats give no {confidence:.0%} interval of the "
            f"median; at least {needed} would (gates.latency.repeats, or more "
            "gates.latency.max_seconds when measuring stopped early)",
            tuned_by=tuned_by,
            leans_fail=typical > limit,
        )
    ratio = Interval(math.exp(found.estimate), math.exp(found.low), math.exp(found.high))
    status = decide_at_most(ratio, limit)
    word = "slower" if ratio.low > 1 else "faster" if ratio.high < 1 else "within noise"
    reason = ""
    if status == "fail":
        reason = (
            f"the candidate takes more than {limit:g} times the champion's time per row even at "
            "the fast end of the interval: each request costs more CPU, so the same replicas "
            "answer fewer requests within the latency objective"
        )
    elif status == "inconclusive":
        reason = _needs_repeats(found, math.log(limit), repeats, params.max_slowdown, ratio)
    return CheckRecord(
        timings.check,
        TITLE,
        dataset,
        condition,
        f"{times}: {_ratio(ratio)}, {word} ({confidence:.0%} sign-test interval of the {how})",
        status,
        reason,
        tuned_by=tuned_by,
        leans_fail=leans_beyond_limit(ratio, limit, at_most=True),
    )


def _needs_repeats(
    found: Interval, limit: float, repeats: int, slowdown: float, ratio: Interval
) -> str:
    """'inconclusive: ... about N repeats would' (on the log scale, width falls as 1/sqrt n)."""
    sentence = (
        f"inconclusive: {repeats} paired repeats cannot tell whether the candidate is more "
        f"than {slowdown:.0%} slower per row ({_ratio(ratio)}): the timings vary too much"
    )
    margin = abs(found.estimate - limit)
    half = (found.high - found.low) / 2.0
    if margin <= 0 or half <= 0:
        return f"{sentence}, and the estimate sits on the limit"
    needed = math.ceil(repeats * (half / margin) ** 2)
    return (
        f"{sentence}; about {needed} repeats (gates.latency.repeats), or a quieter machine, would"
    )


def _ratio(ratio: Interval) -> str:
    """'1.03x [0.98x, 1.09x]': the candidate's time per row over the champion's."""
    return f"{ratio.estimate:.2f}x [{ratio.low:.2f}x, {ratio.high:.2f}x]"


def _left_out(check: LatencyCheck) -> CheckRecord:
    return CheckRecord(
        check, TITLE, "-", "", "", "off", "left out in params.yaml (gates.latency.skip)"
    )


def _duration(seconds: float) -> str:
    """'0.412 ms' or '11.6 µs': three significant figures."""
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"

"""The latency gate: the decision on given timings (tables), and real scikit-learn pipelines timed
the way a server worker scores them.

Timing tests on a shared two-core machine must not flake, so every timed case is decided by
construction, not by luck: a slow candidate sleeps four times its own call's duration after
each call (at least 5x slower, at a tolerance of 20%), and the same model against itself is
judged with a tolerance of 300% (only a broken measurement reads 4x on the same model). The
decision's edges (tolerance, too few repeats, noise) are tested on given timings.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from modelops.data import Schema, coerce, features, resolve_schema
from modelops.gates.champion import Matchup
from modelops.gates.latency import Contender, Timings, contender, judge, latency_gate, measure
from modelops.model import build_pipeline
from modelops.params import ColumnsParams, GatesParams, LatencyGateParams, TrainParams
from modelops.statistics import median_interval, median_interval_size
from modelops.synth import ID, LABEL, TIMESTAMP, generate_churn

# Small, so that the timed tests take about a second in all.
FAST = {"rows": 40, "requests": 3, "batch_rows": 20, "repeats": 10, "max_seconds": 20.0}


# The decision on given timings ---------------------------------------------------------------


def _timings(candidate: list[float], champion: list[float], check: str = "single_row") -> Timings:
    return Timings(check, tuple(candidate), tuple(champion), requests=10, rows=1)  # type: ignore[arg-type]


def _noisy(ratio: float, spread: float, repeats: int = 20) -> Timings:
    """Champion 1 ms per row with a little jitter; the candidate `ratio` times it, +- `spread`."""
    jitter = np.random.default_rng(7).uniform(-spread, spread, repeats)
    champion = 1e-3 * (1 + 0.01 * np.sin(np.arange(repeats)))
    return _timings(list(champion * ratio * (1 + jitter)), list(champion))


@pytest.mark.parametrize(
    ("case", "timings", "status", "word"),
    [
        ("5x slower, steady", _noisy(5.0, 0.05), "fail", "slower"),
        ("1.5x slower, noisy but clear", _noisy(1.5, 0.15), "fail", "slower"),
        ("the same", _noisy(1.0, 0.02), "pass", "within noise"),
        ("10% slower: within a 20% tolerance", _noisy(1.1, 0.02), "pass", "slower"),
        ("twice as fast", _noisy(0.5, 0.05), "pass", "faster"),
        ("near the limit and noisy", _noisy(1.2, 0.3), "inconclusive", "slower"),
        ("on the limit, faster or slower", _noisy(1.0, 0.6), "inconclusive", "within noise"),
    ],
)
def test_the_ratio_is_decided_by_its_whole_interval_against_the_tolerance(
    case: str, timings: Timings, status: str, word: str
) -> None:
    record = judge(timings, LatencyGateParams(max_slowdown=0.2), confidence=0.95)
    assert record.status == status, f"{case}: {record.value}"
    assert f"], {word} (95% sign-test interval of the median of 20 paired repeats" in record.value
    assert record.condition == "time per row at most 1.2x the champion's"
    assert record.dataset == "one-row requests, both models"
    assert record.tuned_by.startswith("gates.latency.max_slowdown = 0.2; ")


def test_a_slow_candidate_reads_with_both_times_and_what_a_failure_means() -> None:
    record = judge(
        _timings([5e-3] * 12, [1e-3] * 12, "batch"), LatencyGateParams(), confidence=0.95
    )
    assert record.status == "fail"
    assert record.value.startswith("candidate 5 ms vs champion 1 ms per row: 5.00x [5.00x, 5.00x]")
    assert record.dataset == "batches of 1 rows, both models"
    assert "fewer requests within the latency objective" in record.reason


def test_too_few_repeats_give_no_interval_and_say_how_many_would() -> None:
    # Given 5 repeats, all 3x slower: the sign test has no 95% interval below 6
    record = judge(_timings([3e-3] * 5, [1e-3] * 5), LatencyGateParams(), confidence=0.95)
    # Then the check is inconclusive (never passed), leaning toward failing, and names the fix
    assert record.status == "inconclusive"
    assert record.leans_fail, "its estimate, 3x, is beyond the limit"
    assert "3.00x, no interval" in record.value
    assert "5 paired repeats give no 95% interval of the median; at least 6 would" in record.reason
    same = judge(_timings([1e-3] * 5, [1e-3] * 5), LatencyGateParams(), confidence=0.95)
    assert (same.status, same.leans_fail) == ("inconclusive", False)


def test_noise_too_big_for_the_tolerance_is_inconclusive_and_says_what_would_settle_it() -> None:
    # Given ratios that swing between 0.5x and 2.5x from repeat to repeat
    swings = [0.5, 2.5] * 10
    record = judge(
        _timings([1e-3 * r for r in swings], [1e-3] * 20), LatencyGateParams(), confidence=0.95
    )
    assert record.status == "inconclusive"
    assert "cannot tell whether the candidate is more than 20% slower per row" in record.reason
    assert "the timings vary too much" in record.reason


def test_timings_are_paired() -> None:
    with pytest.raises(ValueError, match="paired"):
        _timings([1e-3, 1e-3], [1e-3])
    with pytest.raises(ValueError, match="at least one"):
        _timings([], [])


# The sign test's interval of a median ----------------------------------------------------------


def test_the_median_interval_is_the_sign_tests_order_statistics() -> None:
    # Given 20 values 0..19, then the 95% interval runs from the 6th smallest to the 6th largest
    found = median_interval(list(range(20)), confidence=0.95)
    assert found is not None
    assert (found.estimate, found.low, found.high) == (9.5, 5.0, 14.0)
    # And five outliers on one side move neither end
    wild = median_interval([*range(15), 1e9, 1e9, 1e9, 1e9, 1e9], confidence=0.95)
    assert wild is not None
    assert wild.high < 1e9
    assert median_interval(list(range(5)), confidence=0.95) is None
    assert [median_interval_size(c) for c in (0.9, 0.95, 0.99)] == [5, 6, 8]


def test_the_median_interval_covers_the_median_at_least_as_often_as_it_says() -> None:
    # Given 1,000 samples of 20 from a skewed distribution whose median is known (log-normal: 1)
    samples = np.random.default_rng(3).lognormal(0.0, 1.0, size=(1000, 20))
    intervals = [median_interval(sample, confidence=0.95) for sample in samples]
    covered = np.mean([i is not None and i.low <= 1.0 <= i.high for i in intervals])
    # Then at least 95% of the intervals hold it (95.9% exactly at n=20, by the binomial)
    assert covered >= 0.94, covered


# Real pipelines, timed ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def churn() -> tuple[pd.DataFrame, Schema]:
    raw = generate_churn(1500, seed=5)
    columns = ColumnsParams(label=LABEL, id=ID, timestamp=TIMESTAMP)
    schema = resolve_schema(raw, columns, source="s").schema
    return coerce(raw, schema, source="s"), schema


@pytest.fixture(scope="module")
def pipeline(churn: tuple[pd.DataFrame, Schema]) -> Pipeline:
    """The template's pipeline (HistGradientBoosting), small: what the server scores fastest."""
    frame, schema = churn
    model = {"kind": "hist_gradient_boosting", "max_iter": 30}
    params = TrainParams.model_validate({"seed": 0, "model": model})
    # One thread: OpenMP's two on a busy two-core machine fit five times slower.
    with threadpool_limits(limits=1):
        fitted: Pipeline = build_pipeline(schema, params).fit(
            features(frame, schema), frame[schema.label]
        )
    return fitted


class SlowClassifier(HistGradientBoostingClassifier):
    """Scores like its parent, then sleeps four times as long: at least 5x slower per call.

    Not the parent's class, so the server cannot take its fast tree path either (it would skip
    `predict_proba`): it scores through this `predict_proba`, as it would in production.
    """

    def predict_proba(self, X: Any) -> Any:  # noqa: N803 (scikit-learn's name)
        started = time.perf_counter()
        proba = super().predict_proba(X)
        time.sleep(4 * (time.perf_counter() - started))
        return proba


@pytest.fixture(scope="module")
def slow_pipeline(pipeline: Pipeline) -> Pipeline:
    classifier = pipeline.named_steps["classifier"]
    slow = SlowClassifier()
    slow.__dict__.update(classifier.__dict__)  # the same fitted trees
    return Pipeline([("preprocess", pipeline.named_steps["preprocess"]), ("classifier", slow)])


def _matchup(
    candidate: Any, champion: Any, churn: tuple[pd.DataFrame, Schema], **fields: Any
) -> Matchup:
    frame, schema = churn
    return Matchup(candidate, champion, {"champion": "a test model"}, frame, schema, 0.5, **fields)


def _gates(**latency: Any) -> GatesParams:
    return GatesParams.model_validate({"latency": {**FAST, **latency}})


def test_the_same_model_against_itself_passes_with_the_servers_scoring_path(
    pipeline: Pipeline, churn: tuple[pd.DataFrame, Schema]
) -> None:
    # Given the very same pipeline as candidate and champion, and a tolerance no noise reaches
    result = latency_gate(_gates(max_slowdown=3.0), _matchup(pipeline, pipeline, churn))
    # Then both request shapes pass, measured on the server's fast path, 10 paired repeats
    assert result.status == "pass", [c.value for c in result.checks]
    assert [(c.check, c.status) for c in result.checks] == [
        ("single_row", "pass"),
        ("batch", "pass"),
    ]
    assert result.mode == "warn", "a slowdown warns unless gates.latency.mode says enforce"
    assert "40 sampled test rows, 10 paired repeats in " in result.context["latency"]
    assert "scoring path: candidate trees, champion trees" in result.context["latency"]
    assert result.context["champion"] == "a test model"


def test_a_candidate_five_times_slower_by_construction_fails(
    pipeline: Pipeline, slow_pipeline: Pipeline, churn: tuple[pd.DataFrame, Schema]
) -> None:
    # Given a candidate whose every call takes at least 5x its own scoring time
    # (two requests of each shape per repeat: its calls are slow by design)
    gates = _gates(max_slowdown=0.2, requests=2)
    result = latency_gate(gates, _matchup(slow_pipeline, pipeline, churn))
    # Then both shapes fail the 20% tolerance, and the record names the path it was scored on
    assert [(c.check, c.status) for c in result.checks] == [
        ("single_row", "fail"),
        ("batch", "fail"),
    ], [c.value for c in result.checks]
    assert result.status == "fail"
    assert not result.blocking, "mode warn: reported, never blocks"
    assert "scoring path: candidate lookup, champion trees" in result.context["latency"]
    assert all(", slower (95% sign-test interval" in c.value for c in result.checks)


def test_measure_interleaves_the_same_requests_and_stops_at_its_budget(
    pipeline: Pipeline, churn: tuple[pd.DataFrame, Schema]
) -> None:
    frame, schema = churn
    sample = frame.head(30)
    ours = contender(pipeline, sample, list(schema.features))
    asked: list[tuple[str, int]] = []

    def recorded(name: str, real: Contender) -> Contender:
        def score(request: Any) -> Any:
            asked.append((name, len(next(iter(request.values())))))
            return real.score(request)

        return replace(real, score=score)

    # Given a budget already spent: one repeat is measured, then it stops
    timings = measure(
        recorded("a", ours),
        recorded("b", ours),
        ("single_row", "batch"),
        requests=3,
        batch_rows=7,
        repeats=50,
        seed=0,
        max_seconds=1e-9,
    )
    assert [len(t.candidate) for t in timings] == [1, 1]
    assert [(t.requests, t.rows) for t in timings] == [(3, 1), (3, 7)]
    timed = asked[2 * 2 * 2 :]  # after two warm-ups of each shape by each model
    # Then each turn is one call of each model, in either order, on requests of the same size
    pairs = [timed[i : i + 2] for i in range(0, len(timed), 2)]
    assert len(pairs) == 6
    assert all({a[0] for a in pair} == {"a", "b"} and pair[0][1] == pair[1][1] for pair in pairs)
    assert [pair[0][1] for pair in pairs] == [1, 1, 1, 7, 7, 7]


def test_requests_are_the_same_rows_for_both_models_and_new_rows_each_repeat(
    pipeline: Pipeline, churn: tuple[pd.DataFrame, Schema]
) -> None:
    frame, schema = churn
    ours = contender(pipeline, frame.head(10), list(schema.features))
    first = ours.requests("single_row", 0, count=3, rows=1)
    second = ours.requests("single_row", 1, count=3, rows=1)
    assert [r["tenure_months"] for r in first] == [[v] for v in frame["tenure_months"][:3]]
    assert [r["tenure_months"] for r in second] == [[v] for v in frame["tenure_months"][3:6]]
    batches = ours.requests("batch", 1, count=2, rows=4)
    assert [b["tenure_months"] for b in batches] == [
        list(frame["tenure_months"][8:10]) + list(frame["tenure_months"][:2]),
        list(frame["tenure_months"][2:6]),
    ], "batches wrap around the sample"


def test_no_champion_yet_skips_the_gate_with_the_reason(
    pipeline: Pipeline, churn: tuple[pd.DataFrame, Schema]
) -> None:
    result = latency_gate(
        _gates(), _matchup(pipeline, None, churn, absent="no 'main' branch yet: nothing to beat")
    )
    assert (result.status, result.checks) == ("skipped", ())
    assert result.notes == ("no 'main' branch yet: nothing to beat",)


def test_a_champion_that_cannot_be_obtained_or_scored_fails_closed(
    pipeline: Pipeline, churn: tuple[pd.DataFrame, Schema]
) -> None:
    unobtainable = latency_gate(
        _gates(), _matchup(pipeline, None, churn, problem="ModelopsError: not in the store")
    )
    assert unobtainable.status == "fail"
    assert [(c.status, c.value) for c in unobtainable.checks] == [
        ("error", "ModelopsError: not in the store")
    ]
    # Given a champion trained on a column the test rows no longer have
    frame, schema = churn
    result = latency_gate(
        _gates(), _matchup(pipeline, pipeline, (frame.drop(columns=["plan"]), schema))
    )
    assert result.status == "fail"
    assert "needs columns that the data no longer has: ['plan']" in result.checks[0].value


def test_a_left_out_shape_is_not_measured_and_says_so(
    pipeline: Pipeline, churn: tuple[pd.DataFrame, Schema]
) -> None:
    result = latency_gate(
        _gates(skip=["batch"], max_slowdown=3.0), _matchup(pipeline, pipeline, churn)
    )
    assert [(c.check, c.status) for c in result.checks] == [
        ("single_row", "pass"),
        ("batch", "off"),
    ]
    assert result.checks[1].reason == "left out in params.yaml (gates.latency.skip)"

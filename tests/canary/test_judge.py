"""The judge on counts it is handed (pure): each verdict, each criterion, and what it says."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from modelops_contract import OTHER, UNSEEN

from modelops.canary import document, stats
from modelops.canary.criteria import Finding
from modelops.canary.evidence import Evidence, TrackCounts
from modelops.canary.judge import Verdict
from modelops.canary.judge import judge as judge_with
from modelops.canary.queries import step_queries, track_counts
from modelops.params import CanaryParams, DriftGateParams

GRID = (*tuple(round(i / 20, 2) for i in range(1, 21)), math.inf)
LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, math.inf)


def _cumulative(shares: list[float], total: float) -> tuple[tuple[float, float], ...]:
    running, out = 0.0, []
    for bound, share in zip(GRID, shares, strict=True):
        running += share * total
        out.append((bound, running))
    return tuple(out)


def _scores(center: int) -> list[float]:
    """Score shares on the 21 grid buckets, peaked around bucket `center`."""
    weights = [math.exp(-((i - center) ** 2) / 8) for i in range(21)]
    return [w / sum(weights) for w in weights]


def track(
    requests: float,
    *,
    errors: float = 0.0,
    center: int = 6,
    positive: float = 0.2,
    slow: float = 1.0,
    tenure: tuple[float, float] = (0.5, 0.5),
    bins: str = "abc",
    labels: float = 0.0,
    recall: float = 0.7,
    plan: tuple[float, float, float] | None = None,
) -> TrackCounts:
    """One track's counts; `plan`: also a categorical feature, with these shares of basic,
    standard and premium (none other, none unseen)."""
    rows = requests
    features = {"tenure": {"b00": tenure[0] * rows, "b01": tenure[1] * rows}}
    if plan is not None:
        names = ("basic", "standard", "premium", OTHER, UNSEEN)
        features["plan"] = dict(zip(names, (*(s * rows for s in plan), 0.0, 0.0), strict=True))
    latency_shares = [0.05, 0.6, 0.3, 0.04, 0.01, 0.0, 0.0, 0.0]
    if slow != 1.0:
        latency_shares = [0.0, 0.05, 0.15, 0.5, 0.3, 0.0, 0.0, 0.0]
    running, latency = 0.0, []
    for bound, share in zip(LATENCY, latency_shares, strict=True):
        running += share * requests
        latency.append((bound, running))
    positives = labels * 0.3
    caught = positives * recall
    return TrackCounts(
        requests=requests,
        server_errors=errors * requests,
        latency=tuple(latency),
        scores=_cumulative(_scores(center), rows),
        positive=positive * rows,
        predicted=rows,
        features=features,
        bins=dict.fromkeys(features, bins),
        cells={
            "true_positive": caught,
            "false_negative": positives - caught,
            "false_positive": caught * 0.5,
            "true_negative": labels - positives - caught * 0.5,
        },
    )


def evidence(canary: TrackCounts, stable: TrackCounts, seconds: float = 3600) -> Evidence:
    return Evidence(
        canary=canary,
        stable=stable,
        step_seconds=seconds,
        weight=10,
        queries=step_queries("ns", seconds),
    )


PARAMS = CanaryParams()
DRIFT = DriftGateParams()
"""The drift gate's default limits, which the judge holds the inputs to."""


def judge(look: Evidence, params: CanaryParams) -> Verdict:
    return judge_with(look, params, drift=DRIFT)


def test_a_canary_like_stable_with_enough_traffic_is_promoted() -> None:
    verdict = judge(evidence(track(20_000), track(180_000)), PARAMS)
    assert verdict.decision == "promote", verdict.summary
    assert verdict.exit_code == 0
    judged = {f.criterion: f.status for f in verdict.findings}
    assert judged["errors"] == "pass"
    assert judged["scores"] == "pass"
    assert judged["latency p95"] == "pass"
    assert judged["inputs: tenure"] == "pass"
    assert judged["recall"] == "skipped", "no labels and quality not required"


def test_too_few_requests_or_too_short_a_soak_holds_and_says_how_much_more() -> None:
    verdict = judge(evidence(track(120), track(1080), seconds=90), PARAMS)
    assert verdict.decision == "hold"
    assert verdict.exit_code == 3
    assert "canary has 120 of the 500 requests a step needs (380 more)" in verdict.summary
    assert "soaked 90 s of min_soak 10m" in verdict.summary


def test_a_bound_already_crossed_rolls_back_before_the_minimums_which_hold_only_a_promotion() -> (
    None
):
    # `make up --canary-errors 0.3`: about 300 canary requests, 27% of them failing, in 3 min.
    failing = judge(evidence(track(300, errors=0.27), track(2700), seconds=180), PARAMS)
    assert failing.decision == "rollback", failing.summary
    assert failing.summary.startswith("roll back: errors (")
    assert "before the step's minimums: canary has 300 of the 500 requests" in failing.summary
    healthy = judge(evidence(track(300), track(2700), seconds=180), PARAMS)
    assert healthy.decision == "hold", "a promotion still waits for the minimums"


def test_a_canary_that_errors_is_rolled_back_naming_errors() -> None:
    verdict = judge(evidence(track(5000, errors=0.05), track(45_000, errors=0.001)), PARAMS)
    assert verdict.decision == "rollback"
    assert verdict.exit_code == 1
    assert verdict.summary.startswith("roll back: errors (")
    failed = [f.criterion for f in verdict.findings if f.status == "fail"]
    assert failed == ["errors"]


def test_shifted_scores_and_positive_rate_roll_back_with_both_named() -> None:
    canary = track(5000, center=12, positive=0.45)
    verdict = judge(evidence(canary, track(45_000)), PARAMS)
    failed = {f.criterion for f in verdict.findings if f.status == "fail"}
    assert verdict.decision == "rollback"
    assert {"scores", "positive rate"} <= failed
    scores = next(f for f in verdict.findings if f.criterion == "scores")
    assert scores.low > PARAMS.scores.max_psi
    assert scores.estimate > scores.low


def test_every_estimate_lies_in_its_own_interval_and_names_its_statistic() -> None:
    # The judge once printed "PSI 2.481, interval [0.7331, 1.496]": an interval of another
    # distance. Each finding's estimate is the statistic its interval is for.
    looks = [
        evidence(track(5000, center=12, positive=0.45), track(45_000)),
        evidence(track(5000, center=30), track(45_000)),
        evidence(track(300, errors=0.27), track(2700), seconds=180),
        evidence(track(20_000), track(180_000)),
    ]
    for look in looks:
        for finding in judge(look, PARAMS).findings:
            if math.isnan(finding.estimate):
                continue
            assert finding.low <= finding.estimate <= finding.high, finding
    scores = next(f for f in judge(looks[1], PARAMS).findings if f.criterion == "scores")
    assert scores.statistic.startswith("chi-square distance of the score distribution")
    assert "(PSI " in scores.reason
    from modelops.canary.document import to_text

    assert "counts are Prometheus increase() over the step: extrapolated" in to_text(
        judge(looks[0], PARAMS)
    )


def test_a_rise_in_latency_with_the_same_median_bucket_is_caught_at_p95() -> None:
    verdict = judge(evidence(track(5000, slow=2.0), track(45_000)), PARAMS)
    failed = {f.criterion for f in verdict.findings if f.status == "fail"}
    assert "latency p95" in failed


def test_inputs_that_differ_between_tracks_point_at_routing() -> None:
    verdict = judge(evidence(track(5000, tenure=(0.9, 0.1)), track(45_000)), PARAMS)
    finding = next(f for f in verdict.findings if f.criterion == "inputs: tenure")
    assert finding.status == "fail"
    assert "routing or client trouble" in finding.reason


def test_inputs_are_held_to_the_drift_gates_statistics_and_limits() -> None:
    # Given a categorical feature whose basic plan goes from 28 % to 80 % of the canary's rows
    # and a numeric one whose lower bin goes from 50 % to 90 %
    canary = track(5000, tenure=(0.9, 0.1), plan=(0.8, 0.12, 0.08))
    verdict = judge(evidence(canary, track(45_000, plan=(0.28, 0.42, 0.30))), PARAMS)
    found = {f.criterion: f for f in verdict.findings}
    plan, tenure = found["inputs: plan"], found["inputs: tenure"]
    # Then each fails with the gate's statistic, against the gate's limit
    assert plan.status == tenure.status == "fail"
    assert plan.statistic.startswith("Cramér's V of plan, canary against stable")
    assert (
        plan.threshold == f"<= {DRIFT.max_categorical_drift:g} (gates.drift.max_categorical_drift)"
    )
    assert plan.estimate == pytest.approx(0.53, abs=0.01)
    assert tenure.statistic.startswith("Kolmogorov-Smirnov distance of tenure")
    assert tenure.threshold == f"<= {DRIFT.max_numeric_drift:g} (gates.drift.max_numeric_drift)"
    assert tenure.estimate == pytest.approx(0.4)
    assert plan.low <= plan.estimate <= plan.high
    assert tenure.low <= tenure.estimate <= tenure.high


def test_an_inputs_estimate_does_not_depend_on_the_traffic_or_the_split() -> None:
    # Given the same shift at 10 % of 2,000 requests, 10 % of 200,000 and 50 % of 20,000
    def plan(canary: float, stable: float) -> Finding:
        look = evidence(
            track(canary, plan=(0.8, 0.12, 0.08)), track(stable, plan=(0.28, 0.42, 0.3))
        )
        return next(f for f in judge(look, PARAMS).findings if f.criterion == "inputs: plan")

    looks = [plan(200, 1800), plan(20_000, 180_000), plan(10_000, 10_000)]
    # Then the estimate is the same, and only the interval narrows with more rows
    assert [f.estimate for f in looks] == pytest.approx([looks[1].estimate] * 3, abs=5e-3)
    assert looks[0].high - looks[0].low > looks[1].high - looks[1].low


def test_inputs_on_a_category_too_few_rows_expect_are_inconclusive() -> None:
    look = evidence(track(60, plan=(0.9, 0.05, 0.05)), track(540, plan=(0.9, 0.05, 0.05)))
    plan = next(f for f in judge(look, PARAMS).findings if f.criterion == "inputs: plan")
    assert plan.status == "inconclusive"
    assert "expects 3.0 rows on the smaller track, fewer than the 5" in plan.reason


def test_a_retrained_profile_makes_inputs_skipped_with_the_reason() -> None:
    verdict = judge(evidence(track(20_000, bins="new"), track(180_000)), PARAMS)
    finding = next(f for f in verdict.findings if f.criterion == "inputs: tenure")
    assert finding.status == "skipped"
    assert "bins tenure differently" in finding.reason
    assert verdict.decision == "promote"


def test_a_canary_with_no_traffic_holds_and_names_the_split() -> None:
    verdict = judge(evidence(TrackCounts(), track(45_000)), PARAMS)
    assert verdict.decision == "hold"
    assert "the canary received no requests at all: check the traffic split" in verdict.summary


def test_a_baseline_with_no_data_holds_never_promotes() -> None:
    verdict = judge(evidence(track(5000), TrackCounts()), PARAMS)
    assert verdict.decision == "hold"
    assert "stable has 0 of the 500 requests" in verdict.summary


def test_sparse_errors_hold_until_the_interval_is_inside_the_bound() -> None:
    verdict = judge(evidence(track(600), track(5400)), PARAMS)
    errors = next(f for f in verdict.findings if f.criterion == "errors")
    assert errors.status == "inconclusive", "no errors in 600 requests cannot show <= 0.2 points"
    assert verdict.decision == "hold"
    assert verdict.more_needed
    assert "more canary requests" in verdict.summary


def test_quality_is_judged_once_labels_exist_and_a_recall_drop_rolls_back() -> None:
    canary = track(20_000, labels=5000, recall=0.4)
    verdict = judge(evidence(canary, track(180_000, labels=45_000, recall=0.7)), PARAMS)
    recall = next(f for f in verdict.findings if f.criterion == "recall")
    assert recall.status == "fail"
    assert verdict.decision == "rollback"


def test_required_quality_holds_without_labels() -> None:
    params = CanaryParams(quality={"required": True})
    verdict = judge(evidence(track(20_000), track(180_000)), params)
    assert verdict.decision == "hold"
    assert "recall" in verdict.summary


def test_a_skipped_criterion_keeps_its_reason_and_leaves_alpha_to_the_others() -> None:
    params = CanaryParams(latency={"skip": "batch clients; latency is not an SLO here"})
    verdict = judge(evidence(track(20_000), track(180_000)), params)
    latency = next(f for f in verdict.findings if f.criterion == "latency")
    assert latency.status == "skipped"
    assert latency.reason.startswith("batch clients")
    tests = [f for f in verdict.findings if f.alpha > 0]
    assert "latency p95" not in {f.criterion for f in tests}
    assert all(f.alpha == pytest.approx(params.alpha / len(tests)) for f in tests)
    assert {"recall", "precision"} <= {f.criterion for f in tests}, (
        "quality tests get their share of alpha before labels come, so it is fixed in advance"
    )


def test_documents_state_samples_interval_bound_and_promql() -> None:
    verdict = judge(evidence(track(5000, errors=0.05), track(45_000)), PARAMS)
    step = document.Step("production", "v2", "v1", 10, "2026-12-03T08:00:00Z", "t", "http://p")
    loaded = json.loads(document.to_json(verdict, step))
    errors = next(f for f in loaded["findings"] if f["criterion"] == "errors")
    assert errors["canary_samples"] == 5000
    assert errors["stable_samples"] == 45_000
    assert errors["low"] < errors["estimate"] < errors["high"]
    assert errors["threshold"] == "<= 0.002"
    assert "modelops_requests_total" in errors["query"]
    assert "confidence sequence" in loaded["method"]
    markdown = document.to_markdown(verdict, step)
    assert "# Canary verdict: Roll back" in markdown
    assert "❌ fail" in markdown


def test_answers_from_prometheus_become_counts_per_track() -> None:
    answers = {
        "requests": [
            {"metric": {"track": "canary", "outcome": "ok"}, "value": [0, "95"]},
            {"metric": {"track": "canary", "outcome": "server_error"}, "value": [0, "5"]},
            {"metric": {"track": "stable", "outcome": "ok"}, "value": [0, "900"]},
        ],
        "latency": [
            {"metric": {"track": "canary", "le": "0.01"}, "value": [0, "90.5"]},
            {"metric": {"track": "canary", "le": "+Inf"}, "value": [0, "90.2"]},
        ],
        "bins": [{"metric": {"track": "canary", "feature": "f", "bins": "x1"}, "value": [0, "1"]}],
    }
    canary = track_counts(answers, "canary")
    assert (canary.requests, canary.server_errors) == (100, 5)
    assert canary.latency == ((0.01, 90.5), (math.inf, 90.5)), "made monotone"
    assert canary.bins == {"f": "x1"}
    assert track_counts(answers, "stable").requests == 900


@pytest.mark.parametrize("looks", [1, 20])
def test_an_interval_is_never_narrower_for_fewer_samples(looks: int) -> None:
    widths = [
        stats.proportion_difference((0, n), (0, 9 * n), alpha=0.01, planned=5000).high
        for n in range(100, 100 + 100 * looks, 100)
    ]
    assert widths == sorted(widths, reverse=True)


def test_quality_not_yet_decided_does_not_hold_unless_required() -> None:
    canary, stable = track(20_000, labels=300), track(180_000, labels=2700)
    verdict = judge(evidence(canary, stable), PARAMS)
    recall = next(f for f in verdict.findings if f.criterion == "recall")
    assert recall.status == "inconclusive"
    assert verdict.decision == "promote"
    assert "not required (quality.required false): recall" in verdict.summary
    required = judge(evidence(canary, stable), CanaryParams(quality={"required": True}))
    assert required.decision == "hold"


def test_the_plan_needs_more_time_at_a_smaller_step_and_names_what_sets_it() -> None:
    from modelops.canary.plan import plan_steps

    plans = plan_steps((10, 25, 50, 100), 20.0, track(10_000), PARAMS, drift=DRIFT)
    assert [p.weight for p in plans] == [10, 25, 50], "the step to 100 completes, nothing to wait"
    seconds = [p.seconds for p in plans if p.seconds is not None]
    assert len(seconds) == len(plans), "every step has a soak time"
    assert seconds[0] > seconds[1] > seconds[2] >= 600, "never below min_soak"
    assert all(p.requests and p.requests >= PARAMS.min_requests for p in plans)
    assert plans[0].binding, "what needs the most samples is named"
    first = plans[0].requests
    assert first is not None
    verdict = judge(
        Evidence(
            canary=track(10_000).scaled(first / 10_000),
            stable=track(10_000).scaled(first * 9 / 10_000),
            step_seconds=plans[0].seconds or 0,
            weight=10,
        ),
        PARAMS,
    )
    assert verdict.decision == "promote", "after the planned requests an A/A step promotes"


def _shadow(agree: float, rows: float, concordant: float, discordant: float) -> Evidence:
    shadow = replace(track(20_000), agreement=(agree, rows - agree), pairs=(concordant, discordant))
    return replace(evidence(shadow, track(20_000)), shadow=True, weight=50)


def test_a_shadow_that_agrees_with_stable_row_by_row_is_promoted() -> None:
    verdict = judge(_shadow(4900, 5000, 14_000, 600), PARAMS)
    found = {f.criterion: f.status for f in verdict.findings}
    assert found["agreement with stable"] == "pass"
    assert found["rank agreement with stable"] == "pass"
    assert verdict.decision == "promote"


def test_a_shadow_that_disagrees_is_rolled_back_naming_agreement() -> None:
    verdict = judge(_shadow(3500, 5000, 8000, 6000), PARAMS)
    failed = {f.criterion for f in verdict.findings if f.status == "fail"}
    assert failed == {"agreement with stable", "rank agreement with stable"}
    assert verdict.decision == "rollback"


def test_a_shadow_without_feedback_is_not_held_unless_required() -> None:
    verdict = judge(_shadow(0, 0, 0, 0), PARAMS)
    assert verdict.decision == "promote"
    assert "agreement with stable" in verdict.summary
    required = judge(_shadow(0, 0, 0, 0), CanaryParams(shadow={"required": True}))
    assert required.decision == "hold"


def test_a_canary_is_not_judged_on_agreement() -> None:
    criteria = {
        f.criterion for f in judge(evidence(track(20_000), track(180_000)), PARAMS).findings
    }
    assert "agreement with stable" not in criteria

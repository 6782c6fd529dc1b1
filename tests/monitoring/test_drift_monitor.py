"""The monitor's statistics and decisions, on simulated windows (pure: no Prometheus).

Traffic is drawn from the synthetic churn generator, whose every draw has the same
distribution: a reference profile from one draw, production windows from others. Scores are a
known function of the inputs and labels are drawn from the scores, so the scores are calibrated
by construction and quality can be realized and estimated. Unchanged traffic over many windows
must breach at most the error rate the statistics promise; each injected drift must breach its
own criterion.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from modelops.monitoring import quality, report
from modelops.monitoring.decide import Dismissal, decide, dismiss, window_status
from modelops.monitoring.drift import Finding, Window, binned_ks, judge_drift
from modelops.monitoring.monitor import JudgedWindow, Look, limits
from modelops.monitoring.windows import window_of
from modelops.params import load_params
from modelops.releases.state import ModelVersion
from modelops.statistics import category_table, cramers_v
from modelops.synth import CATEGORICAL, NUMERIC, generate_churn
from modelops.telemetry.profile import ReferenceProfile, build_profile
from modelops.telemetry.selector import Selector
from tests.support import REPO_ROOT

LIMITS = limits(load_params(REPO_ROOT / "params.yaml"))  # the template's


def _scores(frame: pd.DataFrame) -> np.ndarray:
    tenure = pd.to_numeric(frame["tenure_months"], errors="coerce").fillna(24).to_numpy()
    calls = pd.to_numeric(frame["support_calls_90d"], errors="coerce").fillna(1).to_numpy()
    return 1.0 / (1.0 + np.exp(-(0.8 * calls - 0.06 * tenure)))


def _labels(scores: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=scores.size) < scores


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return synthetic_profile()


def synthetic_profile() -> ReferenceProfile:
    """The profile of a model trained on 8,000 synthetic rows, its scores `_scores`."""
    train = generate_churn(8000, seed=100)
    test = generate_churn(4000, seed=101)
    scores = _scores(test)
    positive = _labels(scores, 1)
    threshold = 0.5
    flagged = scores >= threshold
    expected = {
        "recall": float((flagged & positive).sum() / positive.sum()),
        "precision": float((flagged & positive).sum() / flagged.sum()),
    }
    return build_profile(
        train,
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        test_scores=scores,
        test_positive=positive,
        threshold=threshold,
        expected=expected,
        positive_label="1",
    )


def _window(
    profile: ReferenceProfile,
    seed: int,
    change: Callable[[pd.DataFrame], pd.DataFrame] = lambda f: f,
    *,
    rows: int = 3000,
    flip: bool = False,
) -> Window:
    frame = change(generate_churn(rows, seed=seed))
    scores = _scores(frame)
    positive = _labels(scores, seed)
    return window_of(profile, frame, scores, ~positive if flip else positive)


def _judge(profile: ReferenceProfile, window: Window) -> list[Finding]:
    return [
        *judge_drift(profile, window, LIMITS),
        *quality.realized(dict(profile.expected), window, LIMITS),
        quality.concept_drift(profile.score, window, LIMITS),
    ]


def _breached(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.criterion, f.subject) for f in findings if f.status == "breach"}


def test_binned_ks_is_the_largest_cdf_gap_and_cramers_v_is_zero_for_equal_shares() -> None:
    assert binned_ks([0.5, 0.5], [50, 50]) == 0.0
    assert binned_ks([0.5, 0.5], [100, 0]) == pytest.approx(0.5)
    assert binned_ks([0.25, 0.25, 0.5], [0, 50, 50]) == pytest.approx(0.25)
    same = cramers_v(category_table({"a": 50, "b": 50}, {"a": 500, "b": 500}))
    assert (same.value, same.distance, same.columns) == (0.0, 0.0, 2)
    apart = cramers_v(category_table({"a": 100}, {"b": 100}))
    assert apart.distance == pytest.approx(1.0)
    assert apart.value == pytest.approx(0.99, abs=1e-3), "Yates and bias correction, 200 rows"


def test_unchanged_traffic_over_many_windows_breaches_no_more_than_promised(
    profile: ReferenceProfile,
) -> None:
    """The measured false-alarm rate: each criterion's breaches per window over 60 windows."""
    windows = 60
    breaches: dict[str, int] = {}
    for seed in range(windows):
        statuses = window_status(_judge(profile, _window(profile, 1000 + seed)))
        for criterion, status in statuses.items():
            breaches[criterion] = breaches.get(criterion, 0) + (status == "breach")
    # Each criterion's error rate per window is at most 5% (features Bonferroni-shared); at
    # 5% 60 windows give 8 or more breaches with probability under 4%.
    assert all(count <= 7 for count in breaches.values()), breaches
    assert sum(breaches.values()) <= 3, breaches  # in practice the bounds are conservative


def test_each_injected_drift_breaches_its_own_criterion(profile: ReferenceProfile) -> None:
    def scaled(f: pd.DataFrame) -> pd.DataFrame:
        return f.assign(monthly_charges=f["monthly_charges"] * 2 + 30)

    def novel(f: pd.DataFrame) -> pd.DataFrame:
        return f.assign(region="atlantis")

    def holes(f: pd.DataFrame) -> pd.DataFrame:
        changed = f["age"].astype(float).copy()
        changed = changed.mask(np.arange(len(changed)) % 3 == 0)
        return f.assign(age=changed)

    assert ("feature_drift", "monthly_charges") in _breached(
        _judge(profile, _window(profile, 7, scaled))
    )
    found = _breached(_judge(profile, _window(profile, 8, novel)))
    assert {("unseen_categories", "region"), ("feature_drift", "region")} <= found
    assert ("missing_values", "age") in _breached(_judge(profile, _window(profile, 9, holes)))
    concept = _breached(_judge(profile, _window(profile, 10, flip=True)))
    assert ("concept_drift", "label relation") in concept
    assert not {c for c, _ in concept} & {"feature_drift", "score_drift", "missing_values"}


def test_a_categorical_shift_reads_the_same_on_a_day_of_a_million_rows(
    profile: ReferenceProfile,
) -> None:
    # Given payment_method's electronic_check going from its training share to 80 % of rows,
    # in windows from 4,000 rows to a million (more rows than the 8,000 trained on)
    (payment,) = [p for p in profile.categorical if p.name == "payment_method"]
    index = payment.categories.index("electronic_check")
    rest = 1 - payment.shares[index]
    shares = {c: 0.2 * s / rest for c, s in zip(payment.categories, payment.shares, strict=True)}
    shares["electronic_check"] = 0.8

    def finding(rows: int) -> Finding:
        window = Window(
            0.0, 86_400.0, {"payment_method": {c: s * rows for c, s in shares.items()}}, {}
        )
        found = judge_drift(profile, window, LIMITS)
        return next(
            f for f in found if (f.criterion, f.subject) == ("feature_drift", "payment_method")
        )

    small, large = finding(4000), finding(1_000_000)
    assert small.value is not None
    assert large.value is not None
    # Then both breach with the same Cramér's V (it once read 0.43 and then 0.16, "ok")
    assert (small.status, large.status) == ("breach", "breach"), (small.text(), large.text())
    assert large.value.estimate == pytest.approx(small.value.estimate, abs=5e-3)
    assert large.value.estimate > 0.5


def test_a_window_too_small_is_inconclusive_never_a_breach(profile: ReferenceProfile) -> None:
    small = _window(profile, 11, lambda f: f.assign(region="atlantis"), rows=200)
    findings = _judge(profile, small)
    assert not _breached(findings)
    region = next(
        f for f in findings if (f.criterion, f.subject) == ("unseen_categories", "region")
    )
    assert region.status == "inconclusive"
    assert "fewer than the 1000" in region.reason


def test_the_cbpe_estimate_finds_the_realized_quality_of_calibrated_scores(
    profile: ReferenceProfile,
) -> None:
    window = _window(profile, 12, rows=20_000)
    estimate = quality.estimate(profile.score, window, confidence=0.95)
    assert estimate is not None
    cells = window.cells or {}
    recall = cells["true_positive"] / (cells["true_positive"] + cells["false_negative"])
    precision = cells["true_positive"] / (cells["true_positive"] + cells["false_positive"])
    assert estimate.recall.low - 0.03 <= recall <= estimate.recall.high + 0.03
    assert estimate.precision.low - 0.03 <= precision <= estimate.precision.high + 0.03
    assert abs(estimate.recall.estimate - recall) < 0.05
    assert "calibration map" in estimate.method


def _finding(criterion: str, status: str, subject: str = "x") -> Finding:
    return Finding(criterion, subject, status, "s", None, None, 5000, 0, "")  # type: ignore[arg-type]


def _windows(*statuses: str) -> list[list[Finding]]:
    return [[_finding("feature_drift", s)] for s in statuses]


def test_n_of_m_needs_n_breaches_the_latest_included() -> None:
    def verdict(*statuses: str) -> bool:
        return decide(
            _windows(*statuses),
            breaches=3,
            retrain_on=["feature_drift"],
            age_days=1,
            max_age_days=90,
        ).retrain

    assert verdict("breach", "breach", "ok", "breach") is True
    assert verdict("breach", "breach", "breach", "ok") is False, "a cause that cleared"
    assert verdict("ok", "breach", "inconclusive", "breach") is False, "n/a is not a breach"
    assert verdict("breach", "inconclusive", "breach", "breach") is True


def test_age_retrains_on_schedule_and_unlisted_criteria_only_report() -> None:
    overdue = decide(_windows("ok"), breaches=1, retrain_on=[], age_days=91, max_age_days=90)
    assert overdue.retrain
    assert overdue.reasons == ("the model is 91 days old, over 90",)
    reported = decide(
        _windows("breach", "breach"),
        breaches=1,
        retrain_on=["score_drift"],
        age_days=None,
        max_age_days=90,
    )
    assert not reported.retrain
    assert reported.causes[0].active


def test_a_dismissal_covers_its_subject_until_its_day() -> None:
    dismissal = Dismissal("feature_drift", "plan", dt.date(2026, 12, 31), "new plan launched")
    findings = [
        _finding("feature_drift", "breach", "plan"),
        _finding("feature_drift", "breach", "age"),
    ]
    marked = dismiss(findings, [dismissal], dt.date(2026, 12, 31))
    assert [f.status for f in marked] == ["dismissed", "breach"]
    later = dismiss(findings, [dismissal], dt.date(2027, 1, 1))
    assert [f.status for f in later] == ["breach", "breach"]


def _look(profile: ReferenceProfile, window: Window) -> Look:
    findings = tuple(_judge(profile, window))
    return Look(
        environment="production",
        model=ModelVersion("v1", "model-store/churn/x", "x", "d", "0" * 40),
        profile_source="test",
        at=0.0,
        window="1d",
        label_delay="1d",
        judged=(
            JudgedWindow(
                window, findings, quality.estimate(profile.score, window, confidence=0.95)
            ),
        ),
        decision=decide([findings], breaches=1, retrain_on=[], age_days=None, max_age_days=90),
        queries={},
        prometheus="http://127.0.0.1:9090",
        selector=Selector("production", "pods", (("namespace", "churn-production"),)),
    )


def test_a_report_without_any_telemetry_says_so(profile: ReferenceProfile) -> None:
    def look(window: Window) -> Look:
        return _look(profile, window)

    empty = look(Window(end=0.0, seconds=86_400.0, features={}, scores={}))
    assert "**Warning**: no telemetry in the latest window for model_version v1" in (
        report.to_markdown(empty)
    )
    assert json.loads(report.to_json(empty))["warning"].startswith("no telemetry")
    busy = look(_window(profile, 13))
    assert "Warning" not in report.to_markdown(busy)
    assert json.loads(report.to_json(busy))["warning"] is None
    assert all(png[:4] == b"\x89PNG" for png in report.plots(empty, profile).values())


def test_every_interval_in_the_report_follows_its_statistic_and_holds_its_estimate(
    profile: ReferenceProfile,
) -> None:
    # Given 40 windows from 200 to 20,000 rows, unchanged or drifted in every way at random
    changes: list[Callable[[pd.DataFrame], pd.DataFrame]] = [
        lambda f: f,
        lambda f: f.assign(monthly_charges=f["monthly_charges"] * 1.5),
        lambda f: f.assign(payment_method="electronic_check"),
        lambda f: f.assign(region=np.where(np.arange(len(f)) % 7 == 0, "atlantis", f["region"])),
    ]
    rng = np.random.default_rng(5)
    for seed in range(40):
        change = changes[int(rng.integers(len(changes)))]
        rows = int(rng.choice([200, 1500, 5000, 20_000]))
        look = _look(
            profile, _window(profile, 2000 + seed, change, rows=rows, flip=rng.random() < 0.2)
        )
        markdown = report.to_markdown(look)
        # Then the counts are said to be increase()'s, and each interval comes right after the
        # statistic it is of, around its estimate
        assert "increase() over the window: extrapolated to its edges" in markdown
        for f in look.judged[-1].findings:
            if f.value is None:
                continue
            assert f.value.low <= f.value.estimate <= f.value.high, f
            cell = f"{f.statistic} {f.value.text()}".replace("|", "\\|")
            assert f"| {cell} |" in markdown, (cell, f)
            shown = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", f.value.text())
            assert shown, f.value.text()
            assert float(shown[2]) <= float(shown[1]) <= float(shown[3]), f.value.text()
        estimate = look.judged[-1].estimate
        if estimate is not None:
            for name in ("recall", "precision", "positive share"):
                value = getattr(estimate, name.replace(" ", "_"))
                assert f"{name} {value.text()}" in markdown
                assert value.low <= value.estimate <= value.high, (name, value)

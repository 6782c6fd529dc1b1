"""A monitor look's decision as a table (pure: no Prometheus): which of the last seven windows
drifted and how old the model is -> retrain or not, and which cause triggered it.

The template's params judge 7 windows and retrain when a criterion is breached in 3 of them,
the latest included, or when the model is older than 90 days. Windows are drawn from the
synthetic churn generator: unchanged traffic (`.`) or `monthly_charges` doubled (`D`).
"""

from __future__ import annotations

import pytest

from modelops.monitoring.drift import Window
from modelops.monitoring.monitor import judge_windows
from modelops.monitoring.windows import window_of
from modelops.params import load_params
from modelops.synth import CATEGORICAL, NUMERIC, generate_churn
from modelops.telemetry.profile import ReferenceProfile, build_profile
from tests.monitoring.test_drift_monitor import _labels, _scores
from tests.support import REPO_ROOT

PARAMS = load_params(REPO_ROOT / "params.yaml")
DAY = 86_400.0
AT = 1_796_000_000.0  # late November 2026


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    train, test = generate_churn(6000, seed=200), generate_churn(3000, seed=201)
    scores = _scores(test)
    positive = _labels(scores, 2)
    flagged = scores >= 0.5
    return build_profile(
        train,
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        test_scores=scores,
        test_positive=positive,
        threshold=0.5,
        expected={
            "recall": float((flagged & positive).sum() / positive.sum()),
            "precision": float((flagged & positive).sum() / flagged.sum()),
        },
        positive_label="1",
    )


def _window(profile: ReferenceProfile, seed: int, drifted: bool) -> Window:
    frame = generate_churn(3000, seed=seed)
    if drifted:
        frame = frame.assign(monthly_charges=frame["monthly_charges"] * 2 + 30)
    scores = _scores(frame)
    return window_of(profile, frame, scores, _labels(scores, seed))


@pytest.fixture(scope="module")
def windows(profile: ReferenceProfile) -> dict[str, list[Window]]:
    """Seven unchanged windows and seven drifted ones, drawn once."""
    return {kind: [_window(profile, 300 + i, kind == "D") for i in range(7)] for kind in (".", "D")}


# windows (oldest first), model age in days -> retrain, causes that triggered
TABLE = [
    (".......", 10, False, set()),
    ("....DDD", 10, True, {"feature_drift"}),
    ("D..D..D", 10, True, {"feature_drift"}),
    (".....DD", 10, False, set()),
    (".DDD...", 10, False, set()),
    ("DDDDDD.", 10, False, set()),
    (".......", 91, True, set()),
    ("....DDD", 91, True, {"feature_drift"}),
]


@pytest.mark.parametrize(("pattern", "age", "retrain", "triggered"), TABLE)
def test_n_of_m_windows_the_latest_included_or_the_age_retrains(
    profile: ReferenceProfile,
    windows: dict[str, list[Window]],
    pattern: str,
    age: float,
    retrain: bool,
    triggered: set[str],
) -> None:
    drawn = [windows[kind][i] for i, kind in enumerate(pattern)]
    judged, decision = judge_windows(PARAMS, profile, drawn, at=AT, trained_at=AT - age * DAY)
    assert len(judged) == 7
    assert decision.retrain is retrain, decision.reasons
    assert {c.criterion for c in decision.causes if c.triggered} == triggered
    feature = next(c for c in decision.causes if c.criterion == "feature_drift")
    marks = "".join("D" if status == "breach" else "." for status in feature.statuses)
    assert marks == pattern, "each drifted window, and only those, breaches feature_drift"
    assert decision.overdue is (age > PARAMS.monitoring.retrain.max_age_days)


def test_an_unknown_training_time_never_retrains_on_age(
    profile: ReferenceProfile, windows: dict[str, list[Window]]
) -> None:
    _, decision = judge_windows(PARAMS, profile, windows["."], at=AT, trained_at=0.0)
    assert decision.age_days is None
    assert not decision.retrain


def test_the_table_uses_the_template_rule() -> None:
    retrain = PARAMS.monitoring.retrain
    assert (retrain.windows, retrain.breaches, retrain.max_age_days) == (7, 3, 90)
    assert "feature_drift" in retrain.retrain_on

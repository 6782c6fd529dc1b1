"""One definition of drift from pull request to production, at any sample size.

One shift, replayed at 10^3 to 10^6 rows against the same 10^4 training rows: payment_method's
electronic_check going from 28 % to 80 % of the rows, and num_products moving up. The pull-request
gate's own value (Deepchecks' FeatureDrift, run for real at 10^4 rows as the gate configures
it; at every size, the very function it calls, on the rows) must equal the drift monitor's
estimate (the reference profile against the window's bin counts) and the canary judge's (the
same counts as stable and canary tracks), and stay the same at every size. Large sizes are
counts for the monitor and the judge: only Deepchecks sees rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest
from modelops_contract import MISSING

from modelops.canary.criteria import Finding as JudgeFinding
from modelops.canary.evidence import Evidence, TrackCounts
from modelops.canary.judge import judge
from modelops.monitoring.drift import Finding, Window, judge_drift
from modelops.monitoring.monitor import limits
from modelops.params import CanaryParams, Params, load_params
from modelops.telemetry.profile import ReferenceProfile, bin_counts, build_profile
from tests.support import REPO_ROOT

PARAMS: Params = load_params(REPO_ROOT / "params.yaml")
TRAIN_ROWS = 10_000
SIZES = (10**3, 10**4, 10**5, 10**6)
TRAINING: Mapping[str, Mapping[object, float]] = {
    "payment_method": {
        "credit_card": 0.35,
        "electronic_check": 0.28,
        "bank_transfer": 0.25,
        "mailed_check": 0.12,
    },
    "num_products": {1.0: 0.4, 2.0: 0.3, 3.0: 0.2, 4.0: 0.1},
}
SHIFTED: Mapping[str, Mapping[object, float]] = {
    "payment_method": {
        "credit_card": 0.10,
        "electronic_check": 0.80,
        "bank_transfer": 0.07,
        "mailed_check": 0.03,
    },
    "num_products": {1.0: 0.1, 2.0: 0.2, 3.0: 0.3, 4.0: 0.4},
}


def _column(shares: Mapping[object, float], rows: int) -> np.ndarray:
    """Exactly round(share * rows) rows of each value (object dtype, as a DataFrame holds it)."""
    values = np.array(list(shares), dtype=object)
    return np.repeat(values, [round(share * rows) for share in shares.values()])


def _frame(shares: Mapping[str, Mapping[object, float]], rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "payment_method": rng.permutation(_column(shares["payment_method"], rows)),
            "num_products": rng.permutation(_column(shares["num_products"], rows)).astype(float),
        }
    )


def _counts(
    profile: ReferenceProfile, shares: Mapping[str, Mapping[object, float]], rows: int
) -> dict[str, dict[str, float]]:
    """The window's bin counts as the server would count these rows (without building them)."""
    small = _frame(shares, 1000, seed=0)  # 1,000 rows hold every value in its exact share
    return {
        feature: {label: count * rows / 1000 for label, count in bins.items() if label != MISSING}
        for feature, bins in bin_counts(profile, small).items()
    }


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return _frame(TRAINING, TRAIN_ROWS, seed=1)


@pytest.fixture(scope="module")
def profile(train: pd.DataFrame) -> ReferenceProfile:
    scores = np.linspace(0.01, 0.99, 2000)
    return build_profile(
        train,
        numeric=["num_products"],
        categorical=["payment_method"],
        test_scores=scores,
        test_positive=scores > 0.5,
        threshold=0.5,
        expected={},
        positive_label="1",
    )


def _gate_check_at(train: pd.DataFrame, window: pd.DataFrame) -> dict[str, float]:
    """The drift gate's FeatureDrift, built by its catalog and run for real on the rows."""
    from deepchecks.tabular import Dataset

    from modelops.gates.catalog import DRIFT, Facts

    spec = next(spec for spec in DRIFT if spec.key == "feature_drift")
    facts = Facts(id_column=None, has_timestamp=False, time_split=False, positive_label="1")
    check = spec.build(PARAMS.gates.drift, facts, PARAMS.gates.runner.sample_rows)

    def dataset(frame: pd.DataFrame) -> Dataset:
        return Dataset(frame, cat_features=["payment_method"], features=list(frame.columns))

    result = check.run(dataset(train), dataset(window), with_display=False)
    return {column: float(entry["Drift score"]) for column, entry in result.value.items()}


def _gate_functions_at(train: pd.DataFrame, rows: int) -> dict[str, float]:
    """What FeatureDrift computes per column, by the functions it calls, on `rows` shifted rows
    (arrays, not a DataFrame: a million rows stay cheap)."""
    from deepchecks.utils.distribution.drift import cramers_v, kolmogorov_smirnov

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return {
            "payment_method": float(
                cramers_v(
                    train["payment_method"].to_numpy(),
                    _column(SHIFTED["payment_method"], rows),
                    min_category_size_ratio=0.01,  # FeatureDrift's default, the gate's
                    sort_by="difference",  # FeatureDrift's show_categories_by default
                )
            ),
            "num_products": float(
                kolmogorov_smirnov(
                    train["num_products"].to_numpy(dtype=float),
                    _column(SHIFTED["num_products"], rows).astype(float),
                )
            ),
        }


def _monitor(
    profile: ReferenceProfile, counts: Mapping[str, Mapping[str, float]]
) -> dict[str, Finding]:
    window = Window(end=0.0, seconds=86_400.0, features=counts, scores={})
    found = judge_drift(profile, window, limits(PARAMS))
    return {f.subject: f for f in found if f.criterion == "feature_drift"}


def _judge(
    training: Mapping[str, Mapping[str, float]], counts: Mapping[str, Mapping[str, float]]
) -> dict[str, JudgeFinding]:
    def track(features: Mapping[str, Mapping[str, float]]) -> TrackCounts:
        rows = sum(next(iter(features.values())).values())
        return TrackCounts(
            requests=rows, predicted=rows, features=features, bins=dict.fromkeys(features, "p")
        )

    evidence = Evidence(track(counts), track(training), step_seconds=3600.0, weight=10)
    verdict = judge(evidence, CanaryParams(), drift=PARAMS.gates.drift)
    return {f.criterion.removeprefix("inputs: "): f for f in verdict.findings}


def test_the_gate_monitor_and_judge_read_one_drift_at_every_size(
    train: pd.DataFrame, profile: ReferenceProfile
) -> None:
    # Given the training rows as the gate's train set, the profile's reference and stable's
    # track, and the shifted rows as the gate's test set, a window and the canary's track
    training = _counts(profile, TRAINING, TRAIN_ROWS)
    real = _gate_check_at(train, _frame(SHIFTED, 10**4, seed=2))
    read: dict[str, list[float]] = {"payment_method": [], "num_products": []}
    for rows in SIZES:
        counts = _counts(profile, SHIFTED, rows)
        gate = _gate_functions_at(train, rows)
        if rows == 10**4:
            assert gate == pytest.approx(real, abs=1e-12), "the functions are what the check runs"
        monitor, judged = _monitor(profile, counts), _judge(training, counts)
        for feature, value in gate.items():
            # When the monitor and the judge read the same two samples
            found, seen = monitor[feature], judged[feature]
            assert found.value is not None, found
            # Then each reads the gate's own value, and each is sure it is beyond the limit
            assert found.value.estimate == pytest.approx(value, abs=1e-6), (rows, found.text())
            assert seen.estimate == pytest.approx(value, abs=1e-6), (rows, seen)
            assert (found.status, seen.status) == ("breach", "fail"), (rows, found, seen)
            read[feature].append(found.value.estimate)
    # And the number is the same at a thousand rows as at a million
    assert np.ptp(read["payment_method"]) < 3e-3, read
    assert np.ptp(read["num_products"]) == pytest.approx(0.0, abs=1e-6), read
    assert read["payment_method"][-1] == pytest.approx(0.522, abs=1e-3)

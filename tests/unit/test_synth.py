"""The built-in churn generator: deterministic, plausible, imbalanced, with realistic gaps."""

from __future__ import annotations

import pandas as pd

from modelops.synth import CATEGORICAL, ID, LABEL, NUMERIC, TIMESTAMP, generate_churn


def test_the_same_rows_and_seed_give_the_same_frame() -> None:
    pd.testing.assert_frame_equal(generate_churn(500, seed=1), generate_churn(500, seed=1))
    assert not generate_churn(500, seed=1).equals(generate_churn(500, seed=2))


def test_columns_types_and_ranges_are_plausible() -> None:
    frame = generate_churn(20_000, seed=42)
    assert list(frame.columns) == [ID, TIMESTAMP, *CATEGORICAL, *NUMERIC, LABEL]
    assert frame[ID].is_unique
    assert frame["age"].between(18, 85).all()
    assert frame["tenure_months"].between(0, 72).all()
    assert frame["monthly_charges"].between(15, 150).all()
    assert frame["satisfaction_score"].dropna().isin([1, 2, 3, 4, 5]).all()
    assert set(frame["contract"]) == {"month-to-month", "one-year", "two-year"}
    assert frame[TIMESTAMP].min() >= pd.Timestamp("2024-01-01")


def test_the_label_is_imbalanced_and_driven_by_the_features() -> None:
    frame = generate_churn(20_000, seed=42)
    assert 0.15 < frame[LABEL].mean() < 0.3, "about one customer in five churns"
    by_contract = frame.groupby("contract")[LABEL].mean()
    assert by_contract["month-to-month"] > 2 * by_contract["two-year"]
    assert frame[LABEL].corr(frame["tenure_months"]) < -0.1
    assert frame[LABEL].corr(frame["support_calls_90d"]) > 0.1


def test_some_values_are_missing_as_in_real_exports() -> None:
    missing = generate_churn(20_000, seed=42).isna().mean()
    assert 0.1 < missing["satisfaction_score"] < 0.25
    assert 0 < missing["region"] < 0.03
    assert missing[[ID, TIMESTAMP, LABEL, "plan", "age"]].sum() == 0

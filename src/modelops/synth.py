"""A deterministic, realistic customer-churn dataset: the template's default data.

Rows are customers at a snapshot time. Churn is drawn from a hidden logistic model of the observed
features plus two latent traits (engagement, dissatisfaction) that the features only partly reveal,
so a good model does clearly better than the base rate but is far from perfect. Some values are
missing the way they are in real exports, and churn creeps up over time, so a time split is a
little harder than a random one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from modelops.errors import ModelopsError
from modelops.io import commit

LABEL = "churned"
ID = "customer_id"
TIMESTAMP = "snapshot_at"
CATEGORICAL = ("plan", "contract", "payment_method", "region", "paperless_billing")
NUMERIC = (
    "age",
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "num_products",
    "support_calls_90d",
    "avg_session_minutes",
    "days_since_last_login",
    "satisfaction_score",
)

_START = np.datetime64("2024-01-01T00:00:00")
_SPAN_SECONDS = 2 * 365 * 24 * 3600
_PLANS = np.array(["basic", "standard", "premium"])
_CONTRACTS = np.array(["month-to-month", "one-year", "two-year"])
_PAYMENTS = np.array(["credit_card", "bank_transfer", "electronic_check", "mailed_check"])
_REGIONS = np.array(["north", "south", "east", "west", "central"])
_INTERCEPT = -2.45  # tuned so about one customer in five churns


def generate_churn(rows: int, *, seed: int) -> pd.DataFrame:
    """Generate `rows` customers; the same `rows` and `seed` always give the same frame."""
    rng = np.random.default_rng(seed)
    engagement = rng.normal(size=rows)
    dissatisfaction = rng.normal(size=rows)
    elapsed = rng.integers(0, _SPAN_SECONDS, size=rows)
    years = elapsed / (365 * 24 * 3600)

    plan = rng.choice(3, size=rows, p=[0.45, 0.35, 0.20])
    contract = rng.choice(3, size=rows, p=[0.55, 0.25, 0.20])
    payment = rng.choice(4, size=rows, p=[0.35, 0.25, 0.28, 0.12])
    region = rng.choice(5, size=rows, p=[0.22, 0.20, 0.18, 0.25, 0.15])
    paperless = rng.random(rows) < 0.6

    age = np.clip(rng.normal(46, 14, rows), 18, 85).round()
    loyalty = 14 + 10 * contract + 4 * engagement
    tenure = np.clip(rng.gamma(1.6, np.clip(loyalty, 2, None) / 1.6), 0, 72).round()
    monthly = np.clip(
        np.array([32.0, 64.0, 98.0])[plan] + rng.normal(0, 9, rows) + 4 * paperless, 15, 150
    ).round(2)
    total = (monthly * tenure * rng.normal(1.0, 0.04, rows)).round(2)
    single_product = (rng.random(rows) < 0.3).astype(np.int64)
    products = np.clip(1 + plan + rng.poisson(0.6, rows) - single_product, 1, 6)
    calls = rng.poisson(np.exp(0.2 + 0.55 * dissatisfaction + 0.15 * (plan == 0)))
    session = np.clip(rng.gamma(4, np.exp(1.9 + 0.35 * engagement) / 4), 0.5, 240).round(1)
    last_login = np.clip(rng.exponential(np.exp(1.6 - 0.6 * engagement)), 0, 365).round()
    satisfaction = np.clip(np.round(3.4 - 0.9 * dissatisfaction + rng.normal(0, 0.6, rows)), 1, 5)

    logit = (
        _INTERCEPT
        + np.array([1.1, -0.3, -1.0])[contract]
        - 0.035 * tenure
        + 0.012 * (monthly - 60)
        + 0.28 * calls
        + 0.035 * np.minimum(last_login, 60)
        - 0.35 * (satisfaction - 3)
        + 0.45 * (payment == 2)
        - 0.12 * (products - 2)
        + 0.5 * dissatisfaction
        - 0.45 * engagement
        + 0.15 * years
        + rng.normal(0, 0.5, rows)
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)

    frame = pd.DataFrame(
        {
            ID: [f"C{i:08d}" for i in range(1, rows + 1)],
            TIMESTAMP: _START + elapsed.astype("timedelta64[s]"),
            "plan": _PLANS[plan],
            "contract": _CONTRACTS[contract],
            "payment_method": _PAYMENTS[payment],
            "region": _REGIONS[region].astype(object),
            "paperless_billing": np.where(paperless, "yes", "no"),
            "age": age,
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "num_products": products.astype(np.float64),
            "support_calls_90d": calls.astype(np.float64),
            "avg_session_minutes": session,
            "days_since_last_login": last_login,
            "satisfaction_score": satisfaction,
            LABEL: churned,
        }
    )
    _blank_like_real_exports(frame, rng, tenure=tenure)
    return frame


def write_churn(out: Path, rows: int, *, seed: int) -> None:
    """Write `generate_churn(rows, seed=seed)` to `out`, a .csv or .parquet file (atomically)."""
    suffix = out.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise ModelopsError(f"{out}: use a .csv or .parquet file name")
    if rows < 1:
        raise ModelopsError(f"--rows must be at least 1, got {rows}")
    frame = generate_churn(rows, seed=seed)

    def write(path: Path) -> None:
        if suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)

    commit({out: write})


def _blank_like_real_exports(
    frame: pd.DataFrame, rng: np.random.Generator, *, tenure: npt.NDArray[np.float64]
) -> None:
    """Blank values the way real CRM exports do: new accounts, skipped surveys, tracking gaps."""
    rows = len(frame)
    frame.loc[(tenure == 0) | (rng.random(rows) < 0.005), "total_charges"] = np.nan
    frame.loc[rng.random(rows) < 0.18, "satisfaction_score"] = np.nan
    frame.loc[rng.random(rows) < 0.04, "avg_session_minutes"] = np.nan
    frame.loc[rng.random(rows) < 0.01, "region"] = None

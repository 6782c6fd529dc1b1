"""The name of every recording rule, as the rules write it and the dashboards and runbooks read it.

Most names hold the window they are computed over (an objective's window from
`monitoring.objectives`, e.g. `modelops:feature_psi:1h`): a `RuleFamily` gives the name for a
window. The rules (`modelops.observability.recording`) record each of them; the alerts, the
dashboards and the budget check read them by these names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelops_contract.series import ContractError

_WINDOW = re.compile(r"[1-9][0-9]*[smhdwy]")
_RULE = re.compile(r"modelops:[a-z0-9_]+:[a-z0-9_]*")


@dataclass(frozen=True)
class RuleFamily:
    """Recording rules named `<stem><window>`, one per window they are computed over."""

    stem: str

    def __post_init__(self) -> None:
        if not _RULE.fullmatch(self.stem):
            raise ContractError(f"recording rule stem {self.stem!r} is not modelops:<what>:<how>")

    def at(self, window: str) -> str:
        """The rule's name over `window` (a Prometheus duration such as 5m or 28d).

        Raises:
            ContractError: `window` is not a duration.
        """
        if not _WINDOW.fullmatch(window):
            raise ContractError(f"{self.stem}: window {window!r} is not a duration such as 1h")
        return f"{self.stem}{window}"


@dataclass(frozen=True)
class DriftRules:
    """The rules behind one PSI: rows per bin, rows, share per bin, and the PSI itself."""

    bin_rows: RuleFamily
    rows: RuleFamily
    bin_share: RuleFamily
    psi: RuleFamily


@dataclass(frozen=True)
class LastRunDriftRules:
    """The rules behind one PSI of a batch environment's last successful run (no window: the
    run is the window)."""

    rows: str
    bin_share: str
    psi: str


@dataclass(frozen=True)
class QualityRules:
    """A realized rate from feedback (recall, precision) and the rows behind it."""

    ratio: RuleFamily
    rows: RuleFamily


# Service level: the SLIs at every burn-rate window, and the budget left over the SLO window.
SLI_ERROR = RuleFamily("modelops:sli_error:ratio_rate")
"""Share of bad predict requests (label `slo`: availability or latency)."""
SLI_EVENTS = RuleFamily("modelops:sli_events:increase")
"""Predict requests: the minimum-event guard of the burn-rate alerts."""
SLO_ERROR_BUDGET_REMAINING = "modelops:slo_error_budget_remaining:ratio"
"""1 - (bad share over the SLO window) / (1 - target), per `slo`."""
REQUESTS_RATE = RuleFamily("modelops:requests:rate")
"""Requests per second by track, endpoint and outcome (for the dashboards)."""
REQUEST_DURATION_QUANTILES = {
    "50": RuleFamily("modelops:request_duration_seconds:p50_"),
    "95": RuleFamily("modelops:request_duration_seconds:p95_"),
    "99": RuleFamily("modelops:request_duration_seconds:p99_"),
}
"""Predict latency quantiles by track, per percentile."""

# Drift against the reference profile.
FEATURE_DRIFT = DriftRules(
    bin_rows=RuleFamily("modelops:feature_bin_rows:increase"),
    rows=RuleFamily("modelops:feature_rows:increase"),
    bin_share=RuleFamily("modelops:feature_bin_share:"),
    psi=RuleFamily("modelops:feature_psi:"),
)
SCORE_DRIFT = DriftRules(
    bin_rows=RuleFamily("modelops:score_bin_rows:increase"),
    rows=RuleFamily("modelops:score_rows:increase"),
    bin_share=RuleFamily("modelops:score_bin_share:"),
    psi=RuleFamily("modelops:score_psi:"),
)
FEATURE_ALL_ROWS = RuleFamily("modelops:feature_all_rows:increase")
"""Rows per feature, missing values included."""
FEATURE_MISSING = RuleFamily("modelops:feature_missing:ratio_")
FEATURE_UNSEEN = RuleFamily("modelops:feature_unseen:ratio_")
POSITIVE_RATE = RuleFamily("modelops:positive_rate:ratio_")
"""Share of rows predicted positive at the threshold."""

# Quality from feedback.
FEEDBACK_CELLS = RuleFamily("modelops:feedback_cells:increase")
"""Feedback rows per confusion cell."""
LABELS = RuleFamily("modelops:labels:increase")
"""Feedback rows (labels received)."""
RECALL = QualityRules(
    ratio=RuleFamily("modelops:recall:ratio_"),
    rows=RuleFamily("modelops:recall_rows:increase"),
)
PRECISION = QualityRules(
    ratio=RuleFamily("modelops:precision:ratio_"),
    rows=RuleFamily("modelops:precision_rows:increase"),
)
QUALITY = {"recall": RECALL, "precision": PRECISION}
"""The realized rates by the name of their objective (`monitoring.objectives.<name>`)."""
BUSINESS_VALUE_PER_LABEL = RuleFamily("modelops:business_value_per_label:")
BUSINESS_VALUE_PER_LABEL_VARIANCE = RuleFamily("modelops:business_value_per_label_variance:")
MODEL_AGE = "modelops:model_age:days"
"""Days since the served model finished training."""

# A batch environment's last successful run, from what it pushed (modelops_contract.batch).
BATCH_FEATURE_DRIFT = LastRunDriftRules(
    rows="modelops:batch_feature_rows:last_run",
    bin_share="modelops:batch_feature_bin_share:last_run",
    psi="modelops:batch_feature_psi:last_run",
)
BATCH_SCORE_DRIFT = LastRunDriftRules(
    rows="modelops:batch_score_rows:last_run",
    bin_share="modelops:batch_score_bin_share:last_run",
    psi="modelops:batch_score_psi:last_run",
)

FAMILIES: tuple[RuleFamily, ...] = (
    SLI_ERROR,
    SLI_EVENTS,
    REQUESTS_RATE,
    *REQUEST_DURATION_QUANTILES.values(),
    *(
        family
        for drift in (FEATURE_DRIFT, SCORE_DRIFT)
        for family in (drift.bin_rows, drift.rows, drift.bin_share, drift.psi)
    ),
    FEATURE_ALL_ROWS,
    FEATURE_MISSING,
    FEATURE_UNSEEN,
    POSITIVE_RATE,
    FEEDBACK_CELLS,
    LABELS,
    *(family for quality in QUALITY.values() for family in (quality.ratio, quality.rows)),
    BUSINESS_VALUE_PER_LABEL,
    BUSINESS_VALUE_PER_LABEL_VARIANCE,
)
"""Every family of windowed names."""
FIXED: tuple[str, ...] = (
    SLO_ERROR_BUDGET_REMAINING,
    MODEL_AGE,
    *(
        name
        for drift in (BATCH_FEATURE_DRIFT, BATCH_SCORE_DRIFT)
        for name in (drift.rows, drift.bin_share, drift.psi)
    ),
)
"""Every name without a window."""


def family_of(name: str) -> RuleFamily | str | None:
    """The family (or the fixed name) a recording rule's name belongs to; None if none.

    Each name belongs to at most one: no stem followed by a window is another family's name.
    """
    if name in FIXED:
        return name
    for family in FAMILIES:
        window = name.removeprefix(family.stem)
        if window != name and _WINDOW.fullmatch(window):
            return family
    return None


def _unique() -> None:
    stems = [family.stem for family in FAMILIES]
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        raise ContractError(f"recording rule families declared twice: {repeated}")


_unique()

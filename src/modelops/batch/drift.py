"""A batch run's drift: its rows against the model's reference profile, as the monitor judges.

The engine counts every scored row in the profile's bins (`_run.json`); those counts are one
window for `monitoring.drift.judge_drift`, the definitions that judge production's windows and
the pull request's drift gate: per-feature KS and Cramér's V, the score's KS, missing values
and unseen categories, each an interval with `breach` only when it is wholly beyond the limit
and `inconclusive` when the run is too small to say.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from modelops_contract.batch import DRIFT_FILE

from modelops.monitoring.drift import Finding, Window, judge_drift
from modelops.monitoring.monitor import limits
from modelops.params import Params
from modelops.telemetry.profile import ReferenceProfile

_SHOWN = 5
"""Inconclusive criteria printed; all of them are in the output's _drift.json."""


def run_window(record: Mapping[str, Any]) -> Window:
    """A run record's bin counts as a monitor window."""
    return Window(
        end=time.time(),
        seconds=float(record["seconds"]["total"]),
        features={name: dict(bins) for name, bins in record["bins"].items()},
        scores=dict(record["score_bins"]),
    )


def judge_run(
    record: Mapping[str, Any], profile: ReferenceProfile, params: Params
) -> list[Finding]:
    """Every drift criterion of the run (pure)."""
    return judge_drift(profile, run_window(record), limits(params))


def summary(findings: Sequence[Finding]) -> list[str]:
    """One line of counts, then each breach, then the first inconclusive criteria."""
    counts = {status: sum(f.status == status for f in findings) for status in ("breach", "ok")}
    unsure = [f for f in findings if f.status == "inconclusive"]
    lines = [
        f"drift: {counts['breach']} breach(es), {counts['ok']} ok, {len(unsure)} inconclusive "
        "(against the model's reference profile; runbooks/batch-scoring.md#drift)"
    ]
    lines += [
        f"drift: breach: {f.criterion} {f.subject}: {f.text()}"
        for f in findings
        if f.status == "breach"
    ]
    lines += [
        f"drift: inconclusive: {f.criterion} {f.subject}: {f.reason}" for f in unsure[:_SHOWN]
    ]
    if len(unsure) > _SHOWN:
        lines.append(f"drift: ... and {len(unsure) - _SHOWN} more inconclusive ({DRIFT_FILE})")
    return lines


def document(findings: Sequence[Finding]) -> dict[str, Any]:
    """`_drift.json`: every finding, with its interval and the rows it rests on."""
    return {
        "status": "breach"
        if any(f.status == "breach" for f in findings)
        else ("inconclusive" if any(f.status == "inconclusive" for f in findings) else "ok"),
        "findings": [
            {
                "criterion": f.criterion,
                "subject": f.subject,
                "status": f.status,
                "statistic": f.statistic,
                "value": None
                if f.value is None
                else {"estimate": f.value.estimate, "low": f.value.low, "high": f.value.high},
                "limit": f.limit,
                "rows": f.rows,
                "reference_rows": f.reference_rows,
                "reason": f.reason,
            }
            for f in findings
        ],
    }

"""Shadow scoring for batch: the candidate scores the same table as stable, and the canary judge
says whether it may take over.

Both runs are the real engine's output (`_run.json` and the scores beside it). Their scores are
paired row by row (on the key columns) and counted as the canary judge counts a shadow's
traffic: the score histogram on the server's fixed grid, the share predicted positive (each
model at its own threshold), the rows both classify alike, and the concordant and discordant
pairs of rows (Kendall's tau). The judge (`canary.judge`) then tests, with its confidence
sequences at `canary.alpha`: score distribution (`canary.scores.max_psi`), positive rate
(`canary.positive_rate`), agreement at the threshold and rank agreement (`canary.shadow`), all
required; errors, latency, inputs and quality are skipped with why. Too few rows (under
`canary.min_requests`) hold, as in a canary step: an undecided comparison never reads as a pass.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from modelops_contract import SCORE_GRID
from modelops_contract.batch import RECORD_FILE

from modelops.canary.evidence import Evidence, TrackCounts
from modelops.canary.judge import Verdict, judge
from modelops.errors import BatchError
from modelops.params import Params, duration_seconds

SCORE = "score"

_NOT_IN_A_BATCH = {
    "errors": "a batch run answers no requests: a failed run stops before any comparison",
    "latency": "a batch run answers no requests: its speed is in each run's _run.json",
    "inputs": "both models scored the very same rows: their inputs are identical",
    "quality": "a batch has no feedback; judge the candidate's quality in its pull request",
}


@dataclass(frozen=True)
class ScoredRun:
    """A finished run's keys, scores and threshold, read from its output folder."""

    folder: Path
    keys: list[str]
    threshold: float
    model_hash: str
    frame: pd.DataFrame


def read_run(folder: Path) -> ScoredRun:
    """The run written to `folder` (its record and its scores).

    Raises:
        BatchError: `folder` holds no finished run.
    """
    record_path = folder / RECORD_FILE
    if not record_path.is_file():
        raise BatchError(f"{folder}: no {RECORD_FILE}; it is not a finished batch run's output")
    record = json.loads(record_path.read_text(encoding="utf-8"))
    keys = list(record["keys"])
    frame = pd.read_parquet(folder, columns=[*keys, SCORE])
    return ScoredRun(folder, keys, float(record["threshold"]), record["model"]["hash"], frame)


def paired_scores(
    stable: ScoredRun, candidate: ScoredRun
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Both runs' scores of the rows both scored, in the same order.

    Raises:
        BatchError: the runs have different keys, or keys that do not name one row each.
    """
    if stable.keys != candidate.keys:
        raise BatchError(
            f"the runs are keyed differently ({stable.keys} and {candidate.keys}): score the "
            "same input with the same --id-column"
        )
    left, right = stable.frame, candidate.frame
    same_rows = len(left) == len(right) and left[stable.keys].equals(right[stable.keys])
    if same_rows:
        return left[SCORE].to_numpy(np.float64), right[SCORE].to_numpy(np.float64)
    if left.duplicated(stable.keys).any() or right.duplicated(stable.keys).any():
        raise BatchError(
            f"the runs refused different rows and their keys {stable.keys} repeat, so rows "
            "cannot be paired: give --id-column a unique key"
        )
    both = left.merge(right, on=stable.keys, suffixes=("_stable", "_candidate"))
    return (
        both[f"{SCORE}_stable"].to_numpy(np.float64),
        both[f"{SCORE}_candidate"].to_numpy(np.float64),
    )


def kendall_pairs(
    first: npt.NDArray[np.float64], second: npt.NDArray[np.float64]
) -> tuple[float, float]:
    """Concordant and discordant pairs of rows, in the proportions of Kendall's tau-b (ties
    counted as neither: O(n log n), for millions of rows)."""
    from scipy.stats import kendalltau

    rows = len(first)
    if rows < 2:
        return 0.0, 0.0
    tau = float(kendalltau(first, second).statistic)
    if math.isnan(tau):  # one of them is constant: no pair is ordered
        return 0.0, 0.0
    pairs = rows * (rows - 1) / 2
    return pairs * (1 + tau) / 2, pairs * (1 - tau) / 2


def track_counts(
    scores: npt.NDArray[np.float64],
    threshold: float,
    *,
    agreement: tuple[float, float] = (0.0, 0.0),
    pairs: tuple[float, float] = (0.0, 0.0),
) -> TrackCounts:
    """One model's rows as the judge counts a track's traffic (pure)."""
    cumulative = np.searchsorted(np.sort(scores), np.asarray(SCORE_GRID), side="right")
    return TrackCounts(
        requests=float(len(scores)),
        scores=tuple(
            (bound, float(count)) for bound, count in zip(SCORE_GRID, cumulative, strict=True)
        ),
        positive=float(np.count_nonzero(scores >= threshold)),
        predicted=float(len(scores)),
        agreement=agreement,
        pairs=pairs,
    )


def compare(stable: ScoredRun, candidate: ScoredRun, params: Params) -> Verdict:
    """The canary judge's verdict on the candidate's run against stable's (pure but for the
    scores it was given)."""
    ours, theirs = paired_scores(stable, candidate)
    agree = float(np.count_nonzero((ours >= stable.threshold) == (theirs >= candidate.threshold)))
    rows = float(len(ours))
    shadow = track_counts(
        theirs,
        candidate.threshold,
        agreement=(agree, rows - agree),
        pairs=kendall_pairs(ours, theirs),
    )
    canary = params.canary
    judged = canary.model_copy(
        update={
            "planned_requests": max(int(rows), 1),  # one look, at every row the batch has
            "errors": canary.errors.model_copy(update={"skip": _NOT_IN_A_BATCH["errors"]}),
            "latency": canary.latency.model_copy(update={"skip": _NOT_IN_A_BATCH["latency"]}),
            "inputs": canary.inputs.model_copy(update={"skip": _NOT_IN_A_BATCH["inputs"]}),
            "quality": canary.quality.model_copy(update={"skip": _NOT_IN_A_BATCH["quality"]}),
            # Every row is paired: agreement is decided like the rest, never only advisory.
            "shadow": canary.shadow.model_copy(update={"required": True}),
        }
    )
    evidence = Evidence(
        canary=shadow,
        stable=track_counts(ours, stable.threshold),
        step_seconds=float(duration_seconds(canary.min_soak)),  # a batch has no soak
        weight=50,
        shadow=True,
    )
    return judge(evidence, judged, drift=params.gates.drift)


DECISION_WORDS = {"promote": "take over", "hold": "hold", "rollback": "reject"}
"""The judge's decisions as a batch candidate's."""


def decision_text(verdict: Verdict, *, min_rows: int) -> str:
    """The verdict in a batch's words (the judge speaks of requests and traffic)."""
    word = DECISION_WORDS[verdict.decision]
    if verdict.decision != "hold":
        return f"{word}: {_batch_words(verdict.summary.split(': ', 1)[1])}"
    rows = verdict.canary_requests
    if rows < min_rows:
        return (
            f"hold: {rows:,.0f} rows paired, fewer than canary.min_requests ({min_rows:,}): "
            "shadow-score a larger batch"
        )
    open_ = [f.criterion for f in verdict.findings if f.status == "inconclusive"]
    return (
        f"hold: not enough rows to decide {', '.join(open_)} (each interval still straddles "
        f"its bound at {rows:,.0f} rows): shadow-score a larger batch"
    )


def _batch_words(text: str) -> str:
    """The judge's words for its tracks, as a batch comparison names them."""
    return text.replace("the shadow", "the candidate").replace("canary", "candidate")


def summary(verdict: Verdict, *, min_rows: int) -> list[str]:
    """The verdict, then one line per criterion: its interval, bound and sample."""
    lines = [f"shadow: {decision_text(verdict, min_rows=min_rows)}"]
    for finding in verdict.findings:
        if finding.status == "skipped":
            lines.append(f"shadow: skipped {finding.criterion}: {finding.reason}")
            continue
        lines.append(
            f"shadow: {finding.status} {finding.criterion}: {finding.estimate:.4f} "
            f"[{finding.low:.4f}, {finding.high:.4f}] (bound {finding.threshold}, "
            f"{finding.canary_samples:,.0f} rows, alpha {finding.alpha:.3g}); "
            + _batch_words(finding.reason)
        )
    return lines


def document(
    verdict: Verdict, stable: ScoredRun, candidate: ScoredRun, *, min_rows: int
) -> dict[str, Any]:
    """`_shadow.json`: the decision, both models, and every finding with its interval."""
    return {
        "decision": DECISION_WORDS[verdict.decision],
        "summary": decision_text(verdict, min_rows=min_rows),
        "stable": {"model_hash": stable.model_hash, "output": str(stable.folder)},
        "candidate": {"model_hash": candidate.model_hash, "output": str(candidate.folder)},
        "alpha": verdict.alpha,
        "findings": [
            {
                "criterion": f.criterion,
                "status": f.status,
                "statistic": _batch_words(f.statistic),
                "estimate": None if math.isnan(f.estimate) else f.estimate,
                "low": None if math.isnan(f.low) else f.low,
                "high": None if math.isnan(f.high) else f.high,
                "bound": f.threshold,
                "rows": f.canary_samples,
                "alpha": f.alpha,
                "reason": _batch_words(f.reason),
            }
            for f in verdict.findings
        ],
    }

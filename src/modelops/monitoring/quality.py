"""Quality in production: realized from feedback, estimated before labels arrive (pure).

- Realized: recall and precision from the feedback's confusion counts at the deployment's
  threshold, each with its Wilson interval, against the test set's value minus the allowed
  drop (`monitoring.objectives.recall` / `precision`). Feedback arrives `monitoring.labels.delay`
  after the prediction, so a window's labels are about predictions made a delay earlier; the
  newest delay of predictions has no labels yet and only the estimate speaks for it.
- Estimated: confidence-based performance estimation (CBPE). Each score bucket's chance of a
  true positive is read off the profile's calibration map (the test rows' positive share per
  score bin, interpolated at the bucket's midpoint), and expected confusion counts follow from
  the score histogram. It assumes the relation between score and label is the one on the test
  set (no concept drift): valid under covariate shift, blind to a changed label relation. The
  range comes from moving every bin of the map to its Wilson bounds together (conservative).
- Concept drift: once labels land, each score bin's labelled rows should be positive as often
  as the test set's rows of that bin were (the calibration map). A gap beyond
  `max_calibration_gap` in any bin (interval and all) means the label relation changed while
  the inputs may not have, which no input statistic can show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from modelops_contract import CELLS, FALSE_NEGATIVE, FALSE_POSITIVE, TRUE_POSITIVE, bin_label

from modelops.monitoring.drift import Finding, Limits, Window, status_of
from modelops.statistics import (
    Interval,
    decide_at_least,
    decide_at_most,
    difference,
    wilson,
    z_value,
)
from modelops.telemetry.profile import ScoreProfile


@dataclass(frozen=True)
class Estimate:
    """Quality expected from the scores alone (CBPE), with the calibration map's range."""

    recall: Interval
    precision: Interval
    positive_share: Interval
    rows: int
    method: str


def realized(expected: dict[str, float], window: Window, limits: Limits) -> list[Finding]:
    """Recall and precision from the window's feedback, against the test set's values."""
    cells = dict.fromkeys(CELLS, 0.0) | dict(window.cells or {})
    tp, fp, fn = (round(cells[c]) for c in (TRUE_POSITIVE, FALSE_POSITIVE, FALSE_NEGATIVE))
    labels = round(sum(cells.values()))
    z = z_value(limits.confidence, tests=2)
    findings = []
    for name, events, n, drop in (
        ("recall", tp, tp + fn, limits.recall_max_drop),
        ("precision", tp, tp + fp, limits.precision_max_drop),
    ):
        test_value = expected.get(name)
        if test_value is None:
            findings.append(_unknown(name, labels, "the profile has no test-set value"))
            continue
        limit = round(max(test_value - drop, 0.0), 6)
        if labels < limits.min_labels or n == 0:
            findings.append(
                _unknown(
                    name,
                    labels,
                    f"{labels} labels in the window, fewer than the {limits.min_labels} it needs "
                    f"(monitoring.objectives.{name}.min_labels)",
                )
            )
            continue
        found = wilson(events, n, z=z)
        decision = decide_at_least(found, limit)
        findings.append(
            Finding(
                name,
                name,
                status_of(decision),
                f"{name} (test set {test_value:.3f})",
                found,
                limit,
                n,
                0,
                "" if decision != "inconclusive" else "more labels would tell",
            )
        )
    return findings


def concept_drift(score: ScoreProfile, window: Window, limits: Limits) -> Finding:
    """Per score bin, the labelled rows' positive share against the test set's (calibration).

    The effect is the largest gap over bins with enough labels, each gap's interval combining
    the window's Wilson interval and the test bin's (Newcombe), the bins sharing the error rate.
    """
    by_class = window.labelled or {}
    size = len(score.shares)
    positive = _padded(by_class.get("positive", ()), size)
    negative = _padded(by_class.get("negative", ()), size)
    counts = [p + n for p, n in zip(positive, negative, strict=True)]
    rows = round(sum(counts))
    if rows < limits.min_labels or not score.positive_shares:
        why = (
            "the model's profile has no calibration map (retrain to get one)"
            if not score.positive_shares
            else f"{rows} labelled rows in the window, fewer than the {limits.min_labels} it needs"
        )
        return Finding(
            "concept_drift", "label relation", "inconclusive", "gap", None, None, rows, 0, why
        )
    judged = [b for b in range(size) if counts[b] >= MIN_BIN_LABELS]
    z = z_value(limits.confidence, tests=max(len(judged), 1))
    worst: tuple[Interval, int] | None = None
    decisions = []
    for b in judged:
        realized = wilson(round(positive[b]), round(counts[b]), z=z)
        tested = round(score.shares[b] * score.rows)
        expected = wilson(round(score.positive_shares[b] * tested), tested, z=z)
        gap = _absolute(difference(realized, expected))
        decisions.append(decide_at_most(gap, limits.max_calibration_gap))
        if worst is None or gap.estimate > worst[0].estimate:
            worst = (gap, b)
    if worst is None:
        return Finding(
            "concept_drift",
            "label relation",
            "inconclusive",
            "gap",
            None,
            None,
            rows,
            0,
            f"no score bin has {MIN_BIN_LABELS} labelled rows yet",
        )
    decision = (
        "fail" if "fail" in decisions else "inconclusive" if "inconclusive" in decisions else "pass"
    )
    gap, b = worst
    realized_share = positive[b] / counts[b]
    return Finding(
        "concept_drift",
        "label relation",
        status_of(decision),
        f"largest calibration gap (score bin {bin_label(b)}: positive share {realized_share:.3f} "
        f"against {score.positive_shares[b]:.3f} on the test set)",
        gap,
        limits.max_calibration_gap,
        rows,
        score.rows,
        "" if decision != "inconclusive" else "more labels would tell",
    )


MIN_BIN_LABELS = 30
"""A score bin needs this many labelled rows before its calibration gap is judged."""


def _padded(values: Sequence[float], size: int) -> list[float]:
    found = [float(v) for v in list(values)[:size]]
    return found + [0.0] * (size - len(found))


def _absolute(gap: Interval) -> Interval:
    """|gap| with its interval (0 at the low end when the interval spans 0)."""
    if gap.low >= 0:
        return gap
    if gap.high <= 0:
        return Interval(-gap.estimate, -gap.high, -gap.low)
    return Interval(abs(gap.estimate), 0.0, max(-gap.low, gap.high))


def estimate(score: ScoreProfile, window: Window, *, confidence: float) -> Estimate | None:
    """CBPE recall, precision and positive share from the window's score histogram."""
    buckets = _buckets(window.grid)
    rows = round(sum(count for _, _, count in buckets))
    if rows == 0:
        return None
    means, rates, sizes = _calibration(score)
    z = z_value(confidence)
    bounds = [
        wilson(round(r * n), n, z=z) if n else Interval(r, 0.0, 1.0)
        for r, n in zip(rates, sizes, strict=True)
    ]
    low = np.asarray([b.low for b in bounds])
    high = np.asarray([b.high for b in bounds])

    def chance(levels: npt.NDArray[np.float64]) -> list[float]:
        return [float(np.interp((a + b) / 2, means, levels)) for a, b, _ in buckets]

    above = np.asarray([_above(a, b, score.threshold) for a, b, _ in buckets])
    counts = np.asarray([c for _, _, c in buckets], dtype=np.float64)

    def metrics(p_above: list[float], p_below: list[float]) -> tuple[float, float, float]:
        pa, pb = np.asarray(p_above), np.asarray(p_below)
        true_positive = float((counts * above * pa).sum())
        missed = float((counts * (1 - above) * pb).sum())
        flagged = float((counts * above).sum())
        recall = true_positive / (true_positive + missed) if true_positive + missed else 0.0
        precision = true_positive / flagged if flagged else 0.0
        return recall, precision, (true_positive + missed) / rows

    point, lows, highs = chance(np.asarray(rates)), chance(low), chance(high)
    centre = metrics(point, point)
    recall_range = sorted((metrics(lows, highs)[0], metrics(highs, lows)[0]))
    precision_range = sorted((metrics(lows, lows)[1], metrics(highs, highs)[1]))
    share_range = sorted((metrics(lows, lows)[2], metrics(highs, highs)[2]))
    return Estimate(
        recall=Interval(centre[0], recall_range[0], recall_range[1]),
        precision=Interval(centre[1], precision_range[0], precision_range[1]),
        positive_share=Interval(centre[2], share_range[0], share_range[1]),
        rows=rows,
        method=(
            "CBPE: each score bucket's chance of a positive from the profile's calibration map "
            "(assumes the test set's score-label relation still holds)"
            if score.positive_shares
            else "CBPE on raw scores (this profile has no calibration map: assumes calibration)"
        ),
    )


def _calibration(score: ScoreProfile) -> tuple[list[float], list[float], list[int]]:
    if score.positive_shares and score.mean_scores:
        sizes = [round(share * score.rows) for share in score.shares]
        return list(score.mean_scores), list(score.positive_shares), sizes
    return [0.0, 1.0], [0.0, 1.0], [0, 0]


def _buckets(grid: Sequence[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """(lower, upper, rows) of each bucket from cumulative (upper bound, rows)."""
    found, lower, below = [], 0.0, 0.0
    for bound, cumulative in grid:
        upper = min(bound, 1.0)
        found.append((lower, upper, max(cumulative - below, 0.0)))
        lower, below = upper, max(cumulative, below)
    return found


def _above(lower: float, upper: float, threshold: float) -> float:
    """The share of a bucket at or over the threshold (uniform inside the bucket)."""
    if lower >= threshold:
        return 1.0
    if upper <= threshold:
        return 0.0
    return (upper - threshold) / (upper - lower)


def _unknown(name: str, labels: int, why: str) -> Finding:
    return Finding(name, name, "inconclusive", name, None, None, labels, 0, why)

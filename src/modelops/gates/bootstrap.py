"""Paired bootstrap of classification metrics on one test set (vectorised NumPy, pure).

Resamples are Poisson(1) row weights, the same weights for every model scored on the rows, so
the interval of a difference between two models reflects only how the rows were drawn. Metrics
are computed for all resamples at once from weighted sums over score-sorted rows (ties share a
group), in chunks that bound memory to about 32 MB. Weights are small integers held as float32:
sums stay exact well past any test set's size, and memory traffic halves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from modelops.statistics import Interval

Array: TypeAlias = npt.NDArray[np.floating[Any]]
Metric: TypeAlias = Callable[[Array, Array, Array, float], Array]
"""(weights B x n, truth n, positive-class score n, threshold) -> B metric values."""
_EPSILON = 1e-15
_CHUNK_CELLS = 8_000_000
"""Weights per chunk: 8 million float32 cells, 32 MB."""


def roc_auc(weights: Array, truth: Array, score: Array, threshold: float) -> Array:
    """Weighted Mann-Whitney AUC: pairs (positive, negative) ordered right, ties count half."""
    order, groups = _sorted_groups(score, descending=False)
    ordered, truth_ordered = weights[:, order], truth[order].astype(weights.dtype)
    positive = _group_sums(ordered * truth_ordered, groups)
    negative = _group_sums(ordered, groups) - positive
    below = np.cumsum(negative, axis=1) - negative
    pairs = (positive * (below + 0.5 * negative)).sum(axis=1)
    total: Array = positive.sum(axis=1) * negative.sum(axis=1)
    return np.divide(pairs, total, out=np.full(len(weights), np.nan), where=total > 0)


def average_precision(weights: Array, truth: Array, score: Array, threshold: float) -> Array:
    """Weighted average precision, as scikit-learn defines it (ties as one threshold)."""
    order, groups = _sorted_groups(score, descending=True)
    ordered = weights[:, order]
    positive = _group_sums(ordered * truth[order].astype(weights.dtype), groups)
    everything = _group_sums(ordered, groups)
    precision = np.divide(
        np.cumsum(positive, axis=1),
        np.cumsum(everything, axis=1),
        out=np.zeros_like(positive),
        where=np.cumsum(everything, axis=1) > 0,
    )
    total = positive.sum(axis=1)
    value: Array = np.divide(
        (positive * precision).sum(axis=1),
        total,
        out=np.full(len(weights), np.nan),
        where=total > 0,
    )
    return value


def log_loss(weights: Array, truth: Array, score: Array, threshold: float) -> Array:
    """Weighted mean log loss (scores clipped away from 0 and 1, as the metrics module does)."""
    clipped = np.clip(score, _EPSILON, 1 - _EPSILON)
    losses = -(truth * np.log(clipped) + (1 - truth) * np.log(1 - clipped))
    return _mean(weights, losses)


def brier_score(weights: Array, truth: Array, score: Array, threshold: float) -> Array:
    """Weighted mean squared error of the score."""
    return _mean(weights, (score - truth) ** 2)


def accuracy(weights: Array, truth: Array, score: Array, threshold: float) -> Array:
    """Weighted share of rows predicted right at `threshold`."""
    return _mean(weights, ((score >= threshold) == (truth > 0.5)).astype(np.float64))


def recall(weights: Array, truth: Array, score: Array, threshold: float) -> Array:
    """Weighted share of positives predicted positive."""
    hits = weights @ (truth * (score >= threshold))
    return _ratio(hits, weights @ truth)


def precision(weights: Array, truth: Array, score: Array, threshold: float) -> Array:
    """Weighted share of predicted positives that are positive."""
    predicted = (score >= threshold).astype(np.float64)
    return _ratio(weights @ (truth * predicted), weights @ predicted)


def f1(weights: Array, truth: Array, score: Array, threshold: float) -> Array:
    """Weighted F1 of the positive class."""
    predicted = (score >= threshold).astype(np.float64)
    hits = weights @ (truth * predicted)
    return _ratio(2.0 * hits, weights @ predicted + weights @ truth)


METRICS: Mapping[str, Metric] = {
    "roc_auc": roc_auc,
    "average_precision": average_precision,
    "log_loss": log_loss,
    "brier_score": brier_score,
    "accuracy": accuracy,
    "recall": recall,
    "precision": precision,
    "f1": f1,
}


def paired_differences(
    truth: npt.ArrayLike,
    candidate: npt.ArrayLike,
    champion: npt.ArrayLike,
    metrics: Sequence[str],
    *,
    threshold: float,
    resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Interval]:
    """For each metric: candidate minus champion on the same rows, with its percentile interval."""
    y = np.asarray(truth, dtype=np.float64)
    first, second = np.asarray(candidate, dtype=np.float64), np.asarray(champion, dtype=np.float64)
    observed = np.ones((1, len(y)), dtype=np.float32)
    found: dict[str, list[Array]] = {name: [] for name in metrics}
    for weights in _weights(len(y), resamples=resamples, seed=seed):
        for name in metrics:
            metric = METRICS[name]
            found[name].append(
                metric(weights, y, first, threshold) - metric(weights, y, second, threshold)
            )
    return {
        name: _percentile_interval(
            float(METRICS[name](observed, y, first, threshold)[0])
            - float(METRICS[name](observed, y, second, threshold)[0]),
            np.concatenate(found[name]),
            confidence,
        )
        for name in metrics
    }


def interval(
    truth: npt.ArrayLike,
    score: npt.ArrayLike,
    metric: str,
    *,
    threshold: float,
    resamples: int,
    confidence: float,
    seed: int,
) -> Interval:
    """One model's metric on the test rows, with its bootstrap percentile interval."""
    y, s = np.asarray(truth, dtype=np.float64), np.asarray(score, dtype=np.float64)
    function = METRICS[metric]
    values = np.concatenate(
        [
            function(weights, y, s, threshold)
            for weights in _weights(len(y), resamples=resamples, seed=seed)
        ]
    )
    estimate = float(function(np.ones((1, len(y)), dtype=np.float32), y, s, threshold)[0])
    return _percentile_interval(estimate, values, confidence)


def _weights(n: int, *, resamples: int, seed: int) -> Iterator[Array]:
    generator = np.random.default_rng(seed)
    chunk = max(1, min(resamples, _CHUNK_CELLS // max(n, 1)))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        yield generator.poisson(1.0, size=(size, n)).astype(np.float32)


def _percentile_interval(estimate: float, values: Array, confidence: float) -> Interval:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Interval(estimate, -np.inf, np.inf)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return Interval(estimate, float(low), float(high))


def _sorted_groups(
    score: Array, *, descending: bool
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Row order by score, and the start of each run of equal scores in that order."""
    order = np.argsort(-score if descending else score, kind="stable")
    ordered = score[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return order, starts


def _group_sums(values: Array, starts: npt.NDArray[np.intp]) -> Array:
    if len(starts) == values.shape[1]:
        return values  # no ties: each row is its own group
    sums: Array = np.add.reduceat(values, starts, axis=1)
    return sums


def _mean(weights: Array, values: Array) -> Array:
    return _ratio(weights @ values, weights.sum(axis=1))


def _ratio(numerator: Array, denominator: Array) -> Array:
    result: Array = np.divide(
        numerator, denominator, out=np.full(numerator.shape, np.nan), where=denominator > 0
    )
    return result

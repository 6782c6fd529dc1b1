"""Custom Prometheus metrics for one batch, in the form seldon-core's `metrics()` expects.

Only non-zero increments are sent: each request's metrics cross a process boundary (seldon-core
keeps them in a multiprocessing manager shared by the gunicorn workers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

PREDICTIONS = "modelops_predictions"
ROWS_WITH_MISSING = "modelops_rows_with_missing_values"
POSITIVE_SCORE = "modelops_positive_score"


def batch_metrics(
    predicted: Sequence[str], positive_scores: npt.NDArray[np.float64], *, rows_with_missing: int
) -> list[dict[str, Any]]:
    """Counters of predicted classes and rows with missing values, and the score distribution.

    The score goes in as a seldon-core TIMER, which Prometheus receives as a histogram with
    `_bucket`, `_sum` and `_count` series. TIMER values are milliseconds that seldon-core divides
    by 1000, hence the factor: the histogram is of the positive-class probability itself.
    """
    metrics: list[dict[str, Any]] = [
        {"type": "COUNTER", "key": PREDICTIONS, "value": count, "tags": {"class": label}}
        for label, count in sorted(Counter(predicted).items())
    ]
    if rows_with_missing:
        metrics.append({"type": "COUNTER", "key": ROWS_WITH_MISSING, "value": rows_with_missing})
    metrics.extend(
        {"type": "TIMER", "key": POSITIVE_SCORE, "value": float(score) * 1000}
        for score in positive_scores
    )
    return metrics

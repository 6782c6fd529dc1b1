"""Classification metrics from labels and positive-class probabilities (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn import metrics as skm

from modelops.io import Nested, flatten

_DIGITS = 6
# Clip probabilities away from 0 and 1 so log loss stays finite for a constant baseline.
_EPSILON = 1e-15


@dataclass(frozen=True)
class ClassMetrics:
    """Figures for one class, treating it as the positive one."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Baseline:
    """What predicting the training base rate for every row would score (`baseline.*` keys)."""

    accuracy: float
    log_loss: float
    roc_auc: float = 0.5


@dataclass(frozen=True)
class ClassificationMetrics:
    """Test-set metrics of a binary classifier; `positive` figures are for the positive class."""

    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float
    average_precision: float
    log_loss: float
    brier_score: float
    threshold: float
    rows: int
    positive_rate: float
    baseline: Baseline
    per_class: Mapping[str, ClassMetrics]

    def to_dict(self) -> Nested[float]:
        """Nested, JSON-ready form (what `dvc metrics diff` and the report read)."""
        return asdict(self)

    def flat(self) -> dict[str, float]:
        """Dotted keys to numbers, for MLflow."""
        return {key: float(value) for key, value in flatten(self.to_dict()).items()}


def classification_metrics(
    is_positive: npt.NDArray[np.bool_],
    positive_proba: npt.NDArray[np.float64],
    *,
    classes: tuple[str, str],
    threshold: float,
    train_positive_rate: float,
) -> ClassificationMetrics:
    """Score positive-class probabilities against the truth.

    Args:
        is_positive: boolean truth per row.
        positive_proba: predicted probability of the positive class per row.
        classes: (negative, positive) class names, for the per-class figures.
        threshold: probability at or above which a row is predicted positive.
        train_positive_rate: base rate the majority baseline predicts.
    """
    truth = np.asarray(is_positive, dtype=bool)
    proba = np.clip(np.asarray(positive_proba, dtype=np.float64), _EPSILON, 1 - _EPSILON)
    predicted = proba >= threshold
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        truth, predicted, labels=[False, True], zero_division=0.0
    )
    per_class = {
        name: ClassMetrics(
            precision=_round(precision[i]),
            recall=_round(recall[i]),
            f1=_round(f1[i]),
            support=int(support[i]),
        )
        for i, name in enumerate(classes)
    }
    return ClassificationMetrics(
        accuracy=_round(skm.accuracy_score(truth, predicted)),
        precision=per_class[classes[1]].precision,
        recall=per_class[classes[1]].recall,
        f1=per_class[classes[1]].f1,
        roc_auc=_round(skm.roc_auc_score(truth, proba)),
        average_precision=_round(skm.average_precision_score(truth, proba)),
        log_loss=_round(skm.log_loss(truth, proba, labels=[False, True])),
        brier_score=_round(skm.brier_score_loss(truth, proba)),
        threshold=threshold,
        rows=int(truth.size),
        positive_rate=_round(truth.mean()),
        baseline=majority_baseline(truth, train_positive_rate=train_positive_rate),
        per_class=per_class,
    )


def majority_baseline(truth: npt.NDArray[np.bool_], *, train_positive_rate: float) -> Baseline:
    """Scores of a model that ignores the features and predicts the training base rate."""
    rate = float(np.clip(train_positive_rate, _EPSILON, 1 - _EPSILON))
    majority_is_positive = rate >= 0.5
    constant = np.full(truth.shape, rate)
    return Baseline(
        accuracy=_round(np.mean(truth == majority_is_positive)),
        log_loss=_round(skm.log_loss(truth, constant, labels=[False, True])),
    )


def _round(value: float | np.floating[Any]) -> float:
    return round(float(value), _DIGITS)

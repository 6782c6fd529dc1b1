"""Classification metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from modelops.metrics import classification_metrics, majority_baseline


def test_metrics_match_a_hand_computed_confusion_matrix() -> None:
    truth = np.array([True, True, False, False, False])
    proba = np.array([0.9, 0.4, 0.6, 0.1, 0.2])
    metrics = classification_metrics(
        truth, proba, classes=("no", "yes"), threshold=0.5, train_positive_rate=0.4
    )
    # predicted positive: rows 0 and 2 -> TP=1, FP=1, FN=1, TN=2
    assert metrics.accuracy == pytest.approx(0.6)
    assert metrics.precision == pytest.approx(0.5)
    assert metrics.recall == pytest.approx(0.5)
    assert metrics.per_class["no"].recall == pytest.approx(2 / 3, abs=1e-6)
    assert metrics.per_class["yes"].support == 2
    assert metrics.roc_auc == pytest.approx(5 / 6, abs=1e-6)
    assert metrics.rows == 5
    assert metrics.positive_rate == pytest.approx(0.4)


def test_a_perfect_model_scores_one_and_beats_the_baseline() -> None:
    truth = np.array([True, False] * 50)
    metrics = classification_metrics(
        truth, truth.astype(float), classes=("0", "1"), threshold=0.5, train_positive_rate=0.5
    )
    assert metrics.roc_auc == 1.0
    assert metrics.accuracy == 1.0
    assert metrics.log_loss < 1e-6
    assert metrics.log_loss < metrics.baseline.log_loss


def test_the_majority_baseline_predicts_the_training_base_rate() -> None:
    truth = np.array([True] + [False] * 4)
    baseline = majority_baseline(truth, train_positive_rate=0.2)
    assert baseline.accuracy == pytest.approx(0.8)
    expected = -(np.log(0.2) + 4 * np.log(0.8)) / 5
    assert baseline.log_loss == pytest.approx(expected, abs=1e-6)
    assert baseline.roc_auc == 0.5


def test_flat_metrics_have_dotted_keys_for_mlflow() -> None:
    metrics = classification_metrics(
        np.array([True, False, True, False]),
        np.array([0.8, 0.3, 0.4, 0.1]),
        classes=("0", "1"),
        threshold=0.5,
        train_positive_rate=0.5,
    )
    flat = metrics.flat()
    assert flat["roc_auc"] == 1.0
    assert flat["per_class.1.recall"] == 0.5
    assert flat["baseline.accuracy"] == 0.5
    assert all(isinstance(value, float) for value in flat.values())

"""Plots are valid PNGs and byte-identical for identical inputs (so git only sees real changes)."""

from __future__ import annotations

import numpy as np
import pytest

from modelops import plots
from modelops.plots import Importance

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    truth = rng.random(400) < 0.3
    proba = np.clip(truth * 0.4 + rng.random(400) * 0.6, 0, 1)
    return truth, proba


def _all_plots() -> dict[str, bytes]:
    truth, proba = _data()
    importances = [Importance("a", 0.1, 0.01), Importance("b", 0.02, 0.005)]
    return {
        "confusion": plots.confusion_matrix_png(truth, proba >= 0.5, classes=("0", "1")),
        "roc": plots.roc_png(truth, proba),
        "pr": plots.precision_recall_png(truth, proba, threshold=0.5),
        "calibration": plots.calibration_png(truth, proba, bins=10),
        "importance": plots.importance_png(importances, scoring="roc_auc"),
    }


def test_every_plot_is_a_png_and_is_reproducible_to_the_byte() -> None:
    first, second = _all_plots(), _all_plots()
    for name, png in first.items():
        assert png.startswith(PNG_SIGNATURE), name
        assert png == second[name], f"{name} differs between identical runs"


@pytest.mark.parametrize("threshold", [0.3, 0.7])
def test_the_operating_point_moves_with_the_threshold(threshold: float) -> None:
    truth, proba = _data()
    assert plots.precision_recall_png(
        truth, proba, threshold=threshold
    ) != plots.precision_recall_png(truth, proba, threshold=0.5)

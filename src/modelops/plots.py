"""Evaluation plots as PNG bytes: the same inputs give byte-identical files.

Uses matplotlib's object API (no pyplot global state) and strips PNG metadata, so plots committed
to git only change when the numbers do.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

_DPI = 100
_SIZE = (6.0, 4.5)
_ACCENT = "#1f6feb"
_MUTED = "#8b949e"


@dataclass(frozen=True)
class Importance:
    """Permutation importance of one input column: mean and spread of the score drop."""

    feature: str
    mean: float
    std: float


def confusion_matrix_png(
    is_positive: npt.NDArray[np.bool_],
    predicted_positive: npt.NDArray[np.bool_],
    *,
    classes: tuple[str, str],
) -> bytes:
    """Counts and row percentages of true (rows) against predicted (columns) classes."""
    counts = skm.confusion_matrix(is_positive, predicted_positive, labels=[False, True])
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(5.0, 4.5))
    ax = fig.subplots()
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for (row, col), count in np.ndenumerate(counts):
        colour = "white" if shares[row, col] > 0.5 else "black"
        text = f"{count}\n{shares[row, col]:.1%}"
        ax.text(col, row, text, ha="center", va="center", color=colour, fontsize=12)
    ax.set_xticks([0, 1], labels=list(classes))
    ax.set_yticks([0, 1], labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("Confusion matrix (test set)")
    return _png(fig)


def roc_png(is_positive: npt.NDArray[np.bool_], positive_proba: npt.NDArray[np.float64]) -> bytes:
    """ROC curve with its area, against the chance diagonal."""
    fpr, tpr, _ = skm.roc_curve(is_positive, positive_proba)
    auc = skm.roc_auc_score(is_positive, positive_proba)
    fig, ax = _figure()
    ax.plot(fpr, tpr, color=_ACCENT, label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color=_MUTED, linestyle="--", label="chance (AUC 0.5)")
    _square(ax, "false positive rate", "true positive rate (recall)", "ROC curve (test set)")
    ax.legend(loc="lower right")
    return _png(fig)


def precision_recall_png(
    is_positive: npt.NDArray[np.bool_], positive_proba: npt.NDArray[np.float64], *, threshold: float
) -> bytes:
    """Precision-recall curve, the base rate, and the operating point at `threshold`."""
    precision, recall, _ = skm.precision_recall_curve(is_positive, positive_proba)
    average_precision = skm.average_precision_score(is_positive, positive_proba)
    predicted = positive_proba >= threshold
    point_precision = skm.precision_score(is_positive, predicted, zero_division=0.0)
    point_recall = skm.recall_score(is_positive, predicted, zero_division=0.0)
    fig, ax = _figure()
    ax.plot(recall, precision, color=_ACCENT, label=f"model (AP {average_precision:.3f})")
    base_rate = float(np.mean(is_positive))
    ax.axhline(base_rate, color=_MUTED, linestyle="--", label=f"base rate ({base_rate:.3f})")
    ax.plot(
        [point_recall], [point_precision], "o", color="#d1242f", label=f"threshold {threshold:g}"
    )
    _square(ax, "recall", "precision", "Precision-recall curve (test set)")
    ax.legend(loc="upper right")
    return _png(fig)


def calibration_png(
    is_positive: npt.NDArray[np.bool_], positive_proba: npt.NDArray[np.float64], *, bins: int
) -> bytes:
    """Reliability diagram (quantile bins) above a histogram of predicted probabilities."""
    observed, predicted = calibration_curve(
        is_positive, positive_proba, n_bins=bins, strategy="quantile"
    )
    fig = Figure(figsize=(6.0, 6.0))
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], color=_MUTED, linestyle="--", label="perfectly calibrated")
    top.plot(predicted, observed, "o-", color=_ACCENT, label="model")
    top.set_ylabel("observed positive rate")
    top.set_ylim(0.0, 1.0)
    top.set_title("Calibration (test set)")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.hist(positive_proba, bins=20, range=(0.0, 1.0), color=_ACCENT, alpha=0.8)
    bottom.set_xlabel("predicted probability of the positive class")
    bottom.set_ylabel("rows")
    bottom.set_xlim(0.0, 1.0)
    return _png(fig)


def importance_png(importances: Sequence[Importance], *, scoring: str) -> bytes:
    """Horizontal bars of permutation importance, largest at the top, with one-std error bars."""
    ordered = sorted(importances, key=lambda item: (item.mean, item.feature))
    fig = Figure(figsize=(6.5, max(2.5, 0.35 * len(ordered) + 1.2)))
    ax = fig.subplots()
    positions = np.arange(len(ordered))
    means = [item.mean for item in ordered]
    ax.barh(positions, means, xerr=[item.std for item in ordered], color=_ACCENT, ecolor=_MUTED)
    ax.set_yticks(positions, labels=[item.feature for item in ordered])
    ax.axvline(0.0, color=_MUTED, linewidth=0.8)
    ax.set_xlabel(f"drop in {scoring} when the column is shuffled")
    ax.set_title("Permutation feature importance (test sample)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=_SIZE)
    return fig, fig.subplots()


def _square(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()

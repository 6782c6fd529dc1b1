"""Every metric of `metrics/model.json`, declared once: its name, which way is better, where shown.

`metrics.py` computes them; the report orders them and says whether a change is better or
worse, the champion gate compares the ones with a direction (its `max_drop` and `max_rise` keys
come from here), and MLflow, `make exp-show` and the reference profile list a few. Adding a
metric is one entry in `METRICS` plus the code that computes it (`metrics.py`, and
`gates/bootstrap.py` when it has a direction, so the champion gate can compare it; tests hold
both). No dependencies: `params` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Better: TypeAlias = Literal["higher", "lower"]


@dataclass(frozen=True)
class Metric:
    """One metric: its key in `metrics/model.json` (and in each `per_class` entry)."""

    name: str
    better: Better | None
    """Which way is an improvement; None for counts and settings (rows, threshold)."""
    headline: bool = False
    """Shown in the report's first metrics table, in `METRICS` order; the rest fold away."""


METRICS: tuple[Metric, ...] = (
    Metric("roc_auc", "higher", headline=True),
    Metric("average_precision", "higher", headline=True),
    Metric("accuracy", "higher", headline=True),
    Metric("precision", "higher", headline=True),
    Metric("recall", "higher", headline=True),
    Metric("f1", "higher", headline=True),
    Metric("log_loss", "lower", headline=True),
    Metric("brier_score", "lower", headline=True),
    Metric("positive_rate", None),
    Metric("threshold", None),
    Metric("rows", None),
    Metric("support", None),
)
_BY_NAME = {metric.name: metric for metric in METRICS}


def _registered(*names: str) -> tuple[str, ...]:
    unknown = [name for name in names if name not in _BY_NAME]
    if unknown:
        raise ValueError(f"not in metric_registry.METRICS: {', '.join(unknown)}")
    return names


HEADLINE: tuple[str, ...] = tuple(metric.name for metric in METRICS if metric.headline)
"""The report's first metrics table, in order."""
SUMMARY = _registered("roc_auc", "recall", "precision", "log_loss")
"""The one line under the report's verdict, in order."""
EXPERIMENT_COLUMNS = _registered("roc_auc", "average_precision", "recall", "log_loss")
"""The metric columns `make exp-show` keeps (the Makefile's EXP_METRICS; a test holds it)."""
RUN_NOTE = _registered("roc_auc", "accuracy", "precision", "recall", "f1", "log_loss")
"""The MLflow run's description, in order."""
EXPECTED = _registered(
    "roc_auc", "average_precision", "precision", "recall", "log_loss", "positive_rate"
)
"""What the reference profile expects of production (`profile.json`'s `expected`)."""


def better(name: str) -> Better | None:
    """Which way `name` improves: None for a count, a setting, or a name not registered."""
    metric = _BY_NAME.get(name)
    return metric.better if metric is not None else None


def with_direction(direction: Better) -> tuple[str, ...]:
    """The metrics that improve in `direction`, in `METRICS` order."""
    return tuple(metric.name for metric in METRICS if metric.better == direction)

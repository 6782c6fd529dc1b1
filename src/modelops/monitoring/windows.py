"""What the monitor asks Prometheus for one window, and its answers as a `Window` (pure).

Every count is `increase(...)` over the window, summed over the served model's series in the
environment's namespace (`model_version` of the release's stable model; a shadow's mirrored
traffic is left out so no request counts twice). A batch environment's window is its last
successful run's pushed counts; an edge environment's is what its devices running the stable
bundle pushed, summed over devices. The PromQL is built here once, so the report shows exactly
what each window was judged on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import modelops_contract as contract
import numpy as np
import numpy.typing as npt
import pandas as pd
from modelops_contract import (
    ACTUAL,
    BIN,
    CELL,
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    FEATURE,
    NAMESPACE,
    SCORE_GRID,
    SHADOW,
    TRUE_NEGATIVE,
    TRUE_POSITIVE,
    batch,
    bin_labels,
    edge,
)
from modelops_contract.fleet import F_STABLE

from modelops.monitoring.drift import Window
from modelops.telemetry.profile import ReferenceProfile, bin_counts, bin_index
from modelops.telemetry.promql import Vector, cumulative_buckets, sample_value
from modelops.telemetry.selector import Selector


def _scraped(namespace: str, model_version: str) -> str:
    """The label matchers of the served model's series, scraped from its pods."""
    return f'namespace="{namespace}", model_version="{model_version}", track!="{SHADOW}"'


def window_queries(where: Selector, model_version: str, window: str) -> dict[str, str]:
    """The PromQL of each kind of count over one window (a Prometheus duration) in the
    environment `where` selects, as its telemetry reaches Prometheus."""
    if where.kind == "batch":
        return _batch_queries(where, model_version)
    if where.kind == "edge":
        return _edge_queries(where, model_version, window)
    namespace = where.value(NAMESPACE) or ""
    matchers = _scraped(namespace, model_version)

    def increase(metric: str, by: str) -> str:
        return f"sum by ({by}) (increase({metric}{{{matchers}}}[{window}]))"

    return {
        "features": increase(contract.FEATURE_BIN.total, "feature, bin"),
        "scores": increase(contract.SCORE_BIN.total, "bin"),
        "grid": increase(contract.SCORE.bucket, "le"),
        "cells": increase(contract.FEEDBACK_ROWS.total, "cell"),
        "labelled": increase(contract.FEEDBACK_SCORE.bucket, "actual, le"),
    }


def _batch_queries(where: Selector, model_version: str) -> dict[str, str]:
    """A batch environment's window: the counts its last successful run pushed (gauges, read as
    they stood at the window's end; `modelops_contract.batch`). No feedback comes back to a
    batch run, so there are no labelled counts."""
    matchers = f'{where.matchers()}, model_version="{model_version}"'
    return {
        "features": f"max by (feature, bin) ({batch.FEATURE_BIN_ROWS.name}{{{matchers}}})",
        "scores": f"max by (bin) ({batch.SCORE_BIN_ROWS.name}{{{matchers}}})",
    }


def _edge_queries(where: Selector, model_version: str, window: str) -> dict[str, str]:
    """An edge environment's window: what the devices running the stable bundle counted in it,
    summed over devices (`modelops_contract.edge`), and each device's rows, so the report can
    say how many reported. A device that pushed nothing new in the window adds zero."""
    matchers = f'{where.matchers()}, model_version="{model_version}", {edge.TRACK}="{F_STABLE}"'

    def increase(metric: str, by: str) -> str:
        return f"sum by ({by}) (increase({metric}{{{matchers}}}[{window}]))"

    return {
        "features": increase(edge.FEATURE_BIN.total, f"{FEATURE}, {BIN}"),
        "scores": increase(edge.SCORE_BIN.total, BIN),
        "devices": increase(edge.ROWS.total, edge.DEVICE),
    }


def trained_query(where: Selector, model_version: str) -> str | None:
    """When the served model finished training (seconds since the epoch), as its pods say;
    None where no pods serve it (runs and devices do not push it)."""
    if where.kind != "pods":
        return None
    namespace = where.value(NAMESPACE) or ""
    return f"max({contract.MODEL_TRAINED.name}{{{_scraped(namespace, model_version)}}})"


def to_window(
    answers: Mapping[str, Vector], profile: ReferenceProfile, *, end: float, seconds: float
) -> Window:
    """One window's counts from the answers to `window_queries`."""
    features: dict[str, dict[str, float]] = {}
    for labels, value in _rows(answers, "features"):
        features.setdefault(labels.get(FEATURE, ""), {})[labels.get(BIN, "")] = value
    scores = {labels.get(BIN, ""): value for labels, value in _rows(answers, "scores")}
    cells = {labels.get(CELL, ""): value for labels, value in _rows(answers, "cells")}
    devices = None
    if "devices" in answers:
        devices = {labels.get(edge.DEVICE, ""): v for labels, v in _rows(answers, "devices")}
    grid = cumulative_buckets(_rows(answers, "grid"))
    labelled: dict[str, list[float]] = {}
    cuts = profile.score.cuts
    for actual in ("positive", "negative"):
        rows = [
            (labels, value)
            for labels, value in _rows(answers, "labelled")
            if (labels.get(ACTUAL) == profile.positive_label) == (actual == "positive")
        ]
        labelled[actual] = _per_bin(cumulative_buckets(rows), cuts)
    return Window(
        end=end,
        seconds=seconds,
        features=features,
        scores=scores,
        grid=grid,
        cells=cells,
        labelled=labelled,
        devices=devices,
    )


def _rows(answers: Mapping[str, Vector], name: str) -> list[tuple[Mapping[str, str], float]]:
    found = [(sample.get("metric", {}), sample_value(sample)) for sample in answers.get(name, ())]
    return [(labels, value) for labels, value in found if value > 0]


def _per_bin(buckets: tuple[tuple[float, float], ...], cuts: tuple[float, ...]) -> list[float]:
    """Rows per profile bin from cumulative buckets at the cuts (then +Inf)."""
    counts, below = [], 0.0
    for bound in (*cuts, math.inf):
        total = next((v for b, v in buckets if math.isclose(b, bound)), below)
        counts.append(max(total - below, 0.0))
        below = max(total, below)
    return counts


def window_of(
    profile: ReferenceProfile,
    frame: pd.DataFrame,
    scores: npt.NDArray[np.float64],
    positive: npt.NDArray[np.bool_] | None = None,
    *,
    end: float = 0.0,
    seconds: float = 86_400.0,
) -> Window:
    """The window a server would count for these rows (scores, and truths when given): for
    replaying recorded or simulated traffic through the monitor without Prometheus."""
    cuts = profile.score.cuts
    bins = np.bincount(bin_index(cuts, scores), minlength=len(cuts) + 1)
    grid = tuple(
        (bound, float(np.count_nonzero(scores <= bound))) for bound in (*SCORE_GRID, math.inf)
    )
    cells = None
    labelled = None
    if positive is not None:
        flagged = scores >= profile.score.threshold
        cells = {
            TRUE_POSITIVE: float(np.count_nonzero(flagged & positive)),
            FALSE_POSITIVE: float(np.count_nonzero(flagged & ~positive)),
            TRUE_NEGATIVE: float(np.count_nonzero(~flagged & ~positive)),
            FALSE_NEGATIVE: float(np.count_nonzero(~flagged & positive)),
        }
        labelled = {
            name: [
                float(c)
                for c in np.bincount(bin_index(cuts, scores[mask]), minlength=len(cuts) + 1)
            ]
            for name, mask in (("positive", positive), ("negative", ~positive))
        }
    return Window(
        end=end,
        seconds=seconds,
        features=bin_counts(profile, frame),
        scores=dict(zip(bin_labels(len(bins)), map(float, bins), strict=True)),
        grid=grid,
        cells=cells,
        labelled=labelled,
    )

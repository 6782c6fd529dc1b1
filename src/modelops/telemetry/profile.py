"""The reference profile: what normal looks like for a model, written beside it at training time.

One definition used everywhere after the deploy: the server bins each request's features and
scores on the profile's bins (so its counters compare with the profile directly), and the
dashboards, the canary judge and the drift monitor compare those counts with the profile's
expected shares. It travels in the model directory, so a server always bins exactly as the model
it serves was profiled.

- numeric feature: interior cut points at the training data's deciles (deduplicated), the share
  of training rows in each bin, the missing rate; bin i holds the values in (cut[i-1], cut[i]],
  upper bound included as Prometheus' `le` buckets are, so the server's score histogram and the
  profile agree bin for bin (`bin_index`);
- categorical feature: its most frequent training categories (their shares: the top 20, and
  every one holding the share of training rows the drift gate keeps apart from the rare ones,
  so the monitor reads the gate's Cramér's V), the other ones seen in training (grouped as
  `other`), and the missing rate; a value never seen is `unseen`;
- score: cut points at the deciles of the test set's positive-class scores, the share per bin,
  the positive rate at the deployment's threshold, the expected test metrics, and the
  calibration map: per score bin, the test rows' mean score and their share of true positives
  (what the drift monitor estimates quality with before labels arrive).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from modelops_contract import MISSING, OTHER, UNSEEN, bin_labels

from modelops.io import JSONObject
from modelops.statistics import OTHER_SHARE

PROFILE_FILE = "profile.json"
FORMAT = 1
BINS = 10
TOP_CATEGORIES = 20
"""Categories named per feature at least; more when more hold `OTHER_SHARE` of the training
rows (at most 1 / OTHER_SHARE of them can)."""
KNOWN_CATEGORIES = 1000
"""Categories kept per feature (top ones named, the rest grouped as `other`); past this many a
value counts as `unseen`, which keeps the file and the server's lookups bounded."""


@dataclass(frozen=True)
class NumericProfile:
    """Bins of one numeric feature: `cuts` between them, training `shares` per bin."""

    name: str
    cuts: tuple[float, ...]
    shares: tuple[float, ...]
    missing: float

    @property
    def bins(self) -> tuple[str, ...]:
        """Bin names, in order: b00, b01, ... (one more than there are cuts)."""
        return bin_labels(len(self.cuts) + 1)


@dataclass(frozen=True)
class CategoricalProfile:
    """One categorical feature: named top categories and their shares, the rest of those seen."""

    name: str
    categories: tuple[str, ...]
    shares: tuple[float, ...]
    other: tuple[str, ...]
    other_share: float
    missing: float


@dataclass(frozen=True)
class ScoreProfile:
    """The positive-class score on the test set, and its rate at the deployment's threshold."""

    cuts: tuple[float, ...]
    shares: tuple[float, ...]
    threshold: float
    positive_rate: float
    rows: int
    mean_scores: tuple[float, ...] = ()
    """Per bin, the mean score of its test rows (empty in profiles written before the map)."""
    positive_shares: tuple[float, ...] = ()
    """Per bin, the share of its test rows whose label is the positive class."""


@dataclass(frozen=True)
class ReferenceProfile:
    """What normal looks like for one model."""

    numeric: tuple[NumericProfile, ...]
    categorical: tuple[CategoricalProfile, ...]
    score: ScoreProfile
    expected: Mapping[str, float]
    train_rows: int
    positive_label: str
    format: int = FORMAT

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (deterministic: the same data gives the same file)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: JSONObject) -> Self:
        """Inverse of `to_dict`, from profile.json as parsed."""
        return cls(
            numeric=tuple(NumericProfile(**_tuples(n)) for n in raw["numeric"]),
            categorical=tuple(CategoricalProfile(**_tuples(c)) for c in raw["categorical"]),
            score=ScoreProfile(**_tuples(raw["score"])),
            expected=dict(raw["expected"]),
            train_rows=int(raw["train_rows"]),
            positive_label=str(raw["positive_label"]),
            format=int(raw.get("format", FORMAT)),
        )

    def to_json(self) -> bytes:
        return (
            json.dumps(self.to_dict(), indent=1, sort_keys=True, allow_nan=False) + "\n"
        ).encode()


def build_profile(
    train: pd.DataFrame,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    test_scores: npt.ArrayLike,
    test_positive: npt.ArrayLike,
    threshold: float,
    expected: Mapping[str, float],
    positive_label: str,
) -> ReferenceProfile:
    """Profile the training features and the test set's scores."""
    scores = np.asarray(test_scores, dtype=np.float64)
    truth = np.asarray(test_positive, dtype=bool)
    score_cuts = quantile_cuts(scores)
    score_bins = bin_index(score_cuts, scores)
    means, positives = _calibration(score_bins, scores, truth, len(score_cuts) + 1)
    return ReferenceProfile(
        numeric=tuple(_numeric(train[name], name) for name in numeric),
        categorical=tuple(_categorical(train[name], name) for name in categorical),
        score=ScoreProfile(
            cuts=score_cuts,
            shares=_shares(score_bins, len(score_cuts) + 1),
            threshold=float(threshold),
            positive_rate=_round(float(np.mean(scores >= threshold))) if scores.size else 0.0,
            rows=int(scores.size),
            mean_scores=means,
            positive_shares=positives,
        ),
        expected={key: _round(float(value)) for key, value in sorted(expected.items())},
        train_rows=len(train),
        positive_label=positive_label,
    )


def bin_counts(profile: ReferenceProfile, frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Rows per profile bin of each feature, labelled as the server counts them
    (`modelops_feature_bin_total`): b00... and __missing__ for a numeric feature; its
    categories, __other__, __unseen__ and __missing__ for a categorical one."""
    counts: dict[str, dict[str, float]] = {}
    for numeric in profile.numeric:
        values = pd.to_numeric(frame[numeric.name], errors="coerce").to_numpy(dtype=np.float64)
        known = values[np.isfinite(values)]
        found = np.bincount(bin_index(numeric.cuts, known), minlength=len(numeric.cuts) + 1)
        counts[numeric.name] = {
            **{label: float(c) for label, c in zip(numeric.bins, found, strict=True)},
            MISSING: float(values.size - known.size),
        }
    for categorical in profile.categorical:
        column = frame[categorical.name]
        present = column[column.notna()].astype(str)
        labels = present.map(_category_bin(categorical)).value_counts()
        counts[categorical.name] = {str(k): float(v) for k, v in labels.items()} | {
            MISSING: float(len(column) - len(present))
        }
    return counts


def _category_bin(profile: CategoricalProfile) -> Callable[[str], str]:
    named, other = frozenset(profile.categories), frozenset(profile.other)

    def label(value: str) -> str:
        if value in named:
            return value
        return OTHER if value in other else UNSEEN

    return label


def bin_index(cuts: Sequence[float], values: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """The bin of each value: 0 for values up to cuts[0], i for (cuts[i-1], cuts[i]], the last
    for values above every cut (the same bins as `le` buckets at the cuts)."""
    found: npt.NDArray[np.intp] = np.searchsorted(
        np.asarray(cuts, dtype=np.float64), values, side="left"
    )
    return found


def quantile_cuts(values: npt.NDArray[np.float64], bins: int = BINS) -> tuple[float, ...]:
    """Interior cut points at the quantiles of the finite values, deduplicated."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return ()
    cuts = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
    # A cut at the maximum leaves the bin above it empty by construction: drop it.
    return tuple(_round(float(c)) for c in cuts if c < finite.max())


def _numeric(column: pd.Series, name: str) -> NumericProfile:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    known = values[np.isfinite(values)]
    cuts = quantile_cuts(known)
    counts = np.bincount(bin_index(cuts, known), minlength=len(cuts) + 1)
    return NumericProfile(
        name=name,
        cuts=cuts,
        shares=tuple(_round(c / max(known.size, 1)) for c in counts),
        missing=_round(1.0 - known.size / max(len(values), 1)),
    )


def _categorical(column: pd.Series, name: str) -> CategoricalProfile:
    present = column[column.notna()].astype(str)
    counts = present.value_counts(sort=True)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    total = max(len(present), 1)
    # The drift gate pools a category under OTHER_SHARE of the training rows with the other
    # rare ones: every category above it is named, or `other` would pool one the gate keeps.
    common = sum(count >= OTHER_SHARE * len(present) for _, count in ordered)
    named = max(TOP_CATEGORIES, common)
    top, rest = ordered[:named], ordered[named:KNOWN_CATEGORIES]
    return CategoricalProfile(
        name=name,
        categories=tuple(str(value) for value, _ in top),
        shares=tuple(_round(count / total) for _, count in top),
        other=tuple(sorted(str(value) for value, _ in rest)),
        other_share=_round(sum(count for _, count in rest) / total),
        missing=_round(1.0 - len(present) / max(len(column), 1)),
    )


def _calibration(
    bins: npt.NDArray[np.intp],
    scores: npt.NDArray[np.float64],
    truth: npt.NDArray[np.bool_],
    size: int,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per bin, the mean score and the positive share of its rows (0.5 for both in an empty
    bin, which only a test set smaller than the bins can have)."""
    counts = np.bincount(bins, minlength=size)
    totals = np.bincount(bins, weights=scores, minlength=size)
    positives = np.bincount(bins, weights=truth.astype(np.float64), minlength=size)
    means = [t / c if c else float("nan") for t, c in zip(totals, counts, strict=True)]
    shares = [p / c if c else m for p, c, m in zip(positives, counts, means, strict=True)]
    filled = [m if np.isfinite(m) else 0.5 for m in means]
    return (
        tuple(_round(m) for m in filled),
        tuple(_round(s if np.isfinite(s) else m) for s, m in zip(shares, filled, strict=True)),
    )


def _shares(bins: npt.NDArray[np.intp], size: int) -> tuple[float, ...]:
    counts = np.bincount(bins, minlength=size)
    return tuple(_round(c / max(bins.size, 1)) for c in counts)


def _round(value: float) -> float:
    return round(float(value), 6)


def _tuples(raw: JSONObject) -> JSONObject:
    return {key: tuple(value) if isinstance(value, list) else value for key, value in raw.items()}

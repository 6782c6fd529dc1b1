"""Count scored rows in the bins of the bundle's reference profile (`profile.json`).

A device reports these counts instead of its rows (`modelops_contract.edge`). The bins are the
model server's, bin for bin (`modelops_serving.profile`; the labels are the contract's,
`modelops_contract.bins`):

- numeric feature: `b00`, `b01`, ... between the cuts, a value on a cut in the bin it closes
  (Prometheus' `le`); None or NaN is `__missing__`;
- categorical feature: each top category its own bin, the other categories seen in training
  `__other__`, any other value `__unseen__`, None or NaN `__missing__` (a value that is not a
  string is looked up as its text, as the pipeline's profile reads a column);
- score: `b00`, ... between the profile's score cuts, the same way as a numeric feature.

numpy and the standard library only: pure functions over rows, profile and scores.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from modelops_contract.bins import MISSING, OTHER, UNSEEN, bin_labels

from modelops_device.encode import Rows, is_missing


class ProfileError(ValueError):
    """profile.json is not a reference profile this device can count in."""


@dataclass(frozen=True)
class NumericFeature:
    """A numeric feature's bins: between `cuts`, then missing."""

    name: str
    cuts: tuple[float, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return (*bin_labels(len(self.cuts) + 1), MISSING)

    def counts(self, values: Sequence[Any]) -> list[int]:
        """Rows per bin, in the order of `labels`."""
        column = np.array([math.nan if is_missing(v) else float(v) for v in values], dtype=float)
        index = np.searchsorted(np.asarray(self.cuts, dtype=float), column, side="left")
        index[np.isnan(column)] = len(self.cuts) + 1
        return [int(n) for n in np.bincount(index, minlength=len(self.labels))]


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical feature's bins: its top categories, then other, unseen, missing."""

    name: str
    categories: tuple[str, ...]
    other: frozenset[str]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = dict.fromkeys(self.other, len(self.categories))
        index.update({category: at for at, category in enumerate(self.categories)})
        object.__setattr__(self, "_index", index)

    @property
    def labels(self) -> tuple[str, ...]:
        return (*self.categories, OTHER, UNSEEN, MISSING)

    def counts(self, values: Sequence[Any]) -> list[int]:
        """Rows per bin, in the order of `labels`."""
        unseen = len(self.categories) + 1
        found = [0] * len(self.labels)
        for value in values:
            found[unseen + 1 if is_missing(value) else self._index.get(_text(value), unseen)] += 1
        return found


Feature = NumericFeature | CategoricalFeature


@dataclass(frozen=True)
class ProfileBins:
    """The bins a device counts in: every feature's, and the score's."""

    features: tuple[Feature, ...]
    score_cuts: tuple[float, ...]

    @property
    def score_labels(self) -> tuple[str, ...]:
        return bin_labels(len(self.score_cuts) + 1)

    def score_counts(self, scores: npt.NDArray[np.float64]) -> list[int]:
        """Scores per bin, in the order of `score_labels`."""
        index = np.searchsorted(np.asarray(self.score_cuts, dtype=float), scores, side="left")
        return [int(n) for n in np.bincount(index, minlength=len(self.score_cuts) + 1)]


def parse_profile(raw: bytes, *, where: str) -> ProfileBins:
    """The bins of profile.json's bytes; raises ProfileError naming the file and the field."""
    try:
        loaded = json.loads(raw)
        numeric = [
            NumericFeature(str(n["name"]), _cuts(n["cuts"], f"numeric {n['name']}"))
            for n in loaded["numeric"]
        ]
        categorical = [
            CategoricalFeature(
                str(c["name"]),
                tuple(str(v) for v in c["categories"]),
                frozenset(str(v) for v in c["other"]),
            )
            for c in loaded["categorical"]
        ]
        return ProfileBins((*numeric, *categorical), _cuts(loaded["score"]["cuts"], "score"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ProfileError(f"{where}: not a reference profile ({exc})") from None


def _cuts(raw: Any, what: str) -> tuple[float, ...]:
    cuts = tuple(float(value) for value in raw)
    if any(not math.isfinite(c) for c in cuts) or list(cuts) != sorted(set(cuts)):
        raise ValueError(f"the {what} cuts must be finite and strictly increasing, got {cuts}")
    return cuts


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class Counts:
    """What a device has counted since it installed its bundle on its track."""

    rows: int
    positive_rows: int
    features: Mapping[str, tuple[int, ...]]
    """Per feature, rows per bin in the order of its labels."""
    score: tuple[int, ...]

    @classmethod
    def zero(cls, bins: ProfileBins) -> Self:
        """No rows yet."""
        return cls(
            0,
            0,
            {f.name: (0,) * len(f.labels) for f in bins.features},
            (0,) * len(bins.score_labels),
        )

    def __add__(self, other: Counts) -> Counts:
        if set(self.features) != set(other.features) or len(self.score) != len(other.score):
            raise ValueError("counts of different profiles cannot be added")
        return Counts(
            self.rows + other.rows,
            self.positive_rows + other.positive_rows,
            {
                name: tuple(a + b for a, b in zip(bins, other.features[name], strict=True))
                for name, bins in self.features.items()
            },
            tuple(a + b for a, b in zip(self.score, other.score, strict=True)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "positive_rows": self.positive_rows,
            "features": {name: list(bins) for name, bins in self.features.items()},
            "score": list(self.score),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(
            int(raw["rows"]),
            int(raw["positive_rows"]),
            {str(name): tuple(int(n) for n in bins) for name, bins in raw["features"].items()},
            tuple(int(n) for n in raw["score"]),
        )


def count(
    bins: ProfileBins, rows: Rows, scores: npt.NDArray[np.float64], *, threshold: float
) -> Counts:
    """The counts of scored `rows` (raw, as the scorer took them) and their `scores`."""
    columns = _columns(rows, [feature.name for feature in bins.features])
    return Counts(
        rows=int(scores.size),
        positive_rows=int(np.count_nonzero(scores >= threshold)),
        features={f.name: tuple(f.counts(columns[f.name])) for f in bins.features},
        score=tuple(bins.score_counts(scores)),
    )


def _columns(rows: Rows, names: Sequence[str]) -> dict[str, list[Any]]:
    if isinstance(rows, Mapping):
        return {name: list(rows[name]) for name in names}
    return {name: [row[name] for row in rows] for name in names}

"""The model's reference profile (`profile.json`), read here without the pipeline's package.

Training writes the profile beside the model (`src/modelops/telemetry/profile.py` defines it);
this environment cannot import `modelops`, so this is a small reader of the same JSON and the
binning that must agree with it, bin for bin (the bin labels are the contract's,
`modelops_contract.bins`):

- numeric feature: bin i (`b00`, `b01`, ...) holds the values in (cuts[i-1], cuts[i]], upper
  bound included as Prometheus' `le` buckets are; a missing value is `__missing__`;
- categorical feature: each top category is its own bin, the other categories seen in training
  are `__other__`, anything else `__unseen__`, a missing value `__missing__`;
- score: `score.cuts` are the `le` buckets of the score histograms (+Inf added).

Counting is per request, per feature: `nonzero` gives (bin, rows) for the non-empty bins only,
so the caller makes one counter increment per non-empty bin whatever the number of rows. Small
batches (most requests are one row) are counted in plain Python, larger ones with numpy: numpy's
per-call overhead (microseconds) would otherwise dominate a one-row request.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from modelops_contract import MISSING, OTHER, PREDICTED_POSITIVE_RATE, UNSEEN, bin_labels

from modelops_serving.coded import CodedText

# Below this many rows, plain Python binning beats numpy's per-call overhead (same bins: a
# unit test checks both paths agree).
_NUMPY_FROM_ROWS = 16


class ProfileError(Exception):
    """profile.json is there but is not a profile this server can bin with."""


@dataclass(frozen=True)
class NumericBins:
    """One numeric feature's bins: `b00`... between the cuts, then `__missing__`."""

    name: str
    cuts: tuple[float, ...]
    shares: tuple[float, ...] = ()
    """Training share of each bin among rows with a value (no `__missing__`)."""
    missing: float = 0.0
    """Training share of rows without a value."""
    _array: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_array", np.asarray(self.cuts, dtype=np.float64))

    @property
    def labels(self) -> tuple[str, ...]:
        return (*bin_labels(len(self.cuts) + 1), MISSING)

    def counts(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Rows per bin, in the order of `labels` (NaN is a missing value)."""
        return _dense(self.nonzero(values), len(self.cuts) + 2)

    def nonzero(self, values: npt.NDArray[np.float64]) -> list[tuple[int, int]]:
        """(bin index in `labels`, rows) for every bin that has rows."""
        missing = len(self.cuts) + 1
        if values.size == 1:  # most requests
            value = float(values[0])
            return [(missing if math.isnan(value) else bisect.bisect_left(self.cuts, value), 1)]
        if values.size < _NUMPY_FROM_ROWS:
            # bisect_left: the first cut >= value, so a value on a cut is in the bin it closes.
            cuts = self.cuts
            return _tally(
                missing if math.isnan(v) else bisect.bisect_left(cuts, v) for v in values.tolist()
            )
        index = np.searchsorted(self._array, values, side="left")
        index[np.isnan(values)] = missing
        return _sparse(np.bincount(index, minlength=missing + 1))


@dataclass(frozen=True)
class CategoricalBins:
    """One categorical feature's bins: its top categories, then other, unseen, missing."""

    name: str
    categories: tuple[str, ...]
    other: frozenset[str]
    shares: tuple[float, ...] = ()
    """Training share of each top category, `__other__` and `__unseen__` among rows with a value."""
    missing: float = 0.0
    _index: Mapping[str | None, int] = field(init=False, repr=False, compare=False)
    _lookup: pd.Index = field(init=False, repr=False, compare=False)
    _bin_of: npt.NDArray[np.intp] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        top = len(self.categories)
        index: dict[str | None, int] = dict.fromkeys(self.other, top)
        index.update({value: position for position, value in enumerate(self.categories)})
        index[None] = top + 2
        object.__setattr__(self, "_index", index)
        known = [value for value in index if value is not None]
        object.__setattr__(self, "_lookup", pd.Index(known, dtype=object))
        object.__setattr__(self, "_bin_of", np.array([index[v] for v in known], dtype=np.intp))

    @property
    def labels(self) -> tuple[str, ...]:
        return (*self.categories, OTHER, UNSEEN, MISSING)

    def counts(self, values: Sequence[str | None] | CodedText) -> npt.NDArray[np.int64]:
        """Rows per bin, in the order of `labels` (None is a missing value)."""
        return _dense(self.nonzero(values), len(self.categories) + 3)

    def nonzero(self, values: Sequence[str | None] | CodedText) -> list[tuple[int, int]]:
        """(bin index in `labels`, rows) for every bin that has rows."""
        unseen = len(self.categories) + 1
        if isinstance(values, CodedText):  # one lookup per distinct value
            found = self._lookup.get_indexer(values.values)
            per_value = np.where(found >= 0, self._bin_of[found], unseen)
            index = values.looked_up(per_value, unseen + 1)
            return _sparse(np.bincount(index, minlength=len(self.categories) + 3))
        get = self._index.get
        if len(values) == 1:  # most requests
            return [(get(values[0], unseen), 1)]
        if len(values) < _NUMPY_FROM_ROWS:
            return _tally(get(v, unseen) for v in values)
        column = np.asarray(values, dtype=object)
        found = self._lookup.get_indexer(column)
        index = np.where(found >= 0, self._bin_of[found], unseen)
        index[column == None] = unseen + 1  # noqa: E711 (elementwise: which values are None)
        return _sparse(np.bincount(index, minlength=len(self.categories) + 3))


@dataclass(frozen=True)
class Profile:
    """What the server bins with: every feature's bins, and the score's cuts."""

    numeric: tuple[NumericBins, ...]
    categorical: tuple[CategoricalBins, ...]
    score_cuts: tuple[float, ...]
    threshold: float
    score_shares: tuple[float, ...] = ()
    """Test-set share of each score bin (`b00`... on `score_cuts`, upper bound included)."""
    expected: Mapping[str, float] = field(default_factory=dict)
    """The test set's metrics at the threshold (recall, precision, positive_rate, ...)."""

    @property
    def features(self) -> tuple[NumericBins | CategoricalBins, ...]:
        """Every feature's bins, numeric ones first."""
        return (*self.numeric, *self.categorical)


def bins_fingerprint(feature: NumericBins | CategoricalBins) -> str:
    """A short digest of how `feature` is binned (its cuts, or its categories and `other`)."""
    if isinstance(feature, NumericBins):
        definition: object = ["numeric", [repr(float(cut)) for cut in feature.cuts]]
    else:
        definition = ["categorical", list(feature.categories), sorted(feature.other)]
    digest = hashlib.sha256(json.dumps(definition).encode()).hexdigest()
    return digest[:12]


def score_buckets(cuts: Sequence[float], scores: npt.NDArray[np.float64]) -> list[tuple[int, int]]:
    """(bucket index, scores) per non-empty `le` bucket at `cuts`, the last index for +Inf.

    Not cumulative. A score equal to a cut counts in that cut's bucket, as `Histogram.observe`
    counts it.
    """
    if scores.size < _NUMPY_FROM_ROWS:
        return _tally(bisect.bisect_left(cuts, s) for s in scores.tolist())
    index = np.searchsorted(np.asarray(cuts, dtype=np.float64), scores, side="left")
    return _sparse(np.bincount(index, minlength=len(cuts) + 1))


def _tally(indices: Iterable[int]) -> list[tuple[int, int]]:
    found: dict[int, int] = {}
    for index in indices:
        found[index] = found.get(index, 0) + 1
    return sorted(found.items())


def _sparse(counts: npt.NDArray[np.intp]) -> list[tuple[int, int]]:
    index = np.flatnonzero(counts)
    return list(zip(index.tolist(), counts[index].tolist(), strict=True))


def _dense(pairs: Iterable[tuple[int, int]], size: int) -> npt.NDArray[np.int64]:
    counts = np.zeros(size, dtype=np.int64)
    for index, count in pairs:
        counts[index] = count
    return counts


def parse_profile(raw: bytes, *, where: str) -> Profile:
    """Read profile.json's bytes; raises ProfileError naming the file and the field."""
    try:
        loaded = json.loads(raw.decode("utf-8"))
        return Profile(
            numeric=tuple(
                NumericBins(
                    str(n["name"]),
                    _cuts(n["cuts"], f"numeric {n['name']}"),
                    _shares(n["shares"], len(n["cuts"]) + 1, f"numeric {n['name']}"),
                    _share(n["missing"], f"numeric {n['name']} missing"),
                )
                for n in loaded["numeric"]
            ),
            categorical=tuple(
                CategoricalBins(
                    str(c["name"]),
                    tuple(str(v) for v in c["categories"]),
                    frozenset(str(v) for v in c["other"]),
                    (
                        *_shares(c["shares"], len(c["categories"]), f"categorical {c['name']}"),
                        _share(c["other_share"], f"categorical {c['name']} other_share"),
                        0.0,  # __unseen__: no training row is unseen
                    ),
                    _share(c["missing"], f"categorical {c['name']} missing"),
                )
                for c in loaded["categorical"]
            ),
            score_cuts=_cuts(loaded["score"]["cuts"], "score"),
            threshold=float(loaded["score"]["threshold"]),
            score_shares=_shares(
                loaded["score"]["shares"], len(loaded["score"]["cuts"]) + 1, "score"
            ),
            # `positive_rate` of the metrics is the test set's share of positives; the share
            # predicted positive at the threshold is the score's, beside the predictions counted.
            expected={str(k): float(v) for k, v in loaded["expected"].items()}
            | {PREDICTED_POSITIVE_RATE: float(loaded["score"]["positive_rate"])},
        )
    except ProfileError as exc:
        raise ProfileError(f"{where}: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ProfileError(
            f"{where}: not a reference profile ({type(exc).__name__}: {exc}); retrain the model "
            "with the modelops pipeline"
        ) from None


def _cuts(raw: Any, what: str) -> tuple[float, ...]:
    cuts = tuple(float(value) for value in raw)
    if any(not math.isfinite(c) for c in cuts) or list(cuts) != sorted(set(cuts)):
        raise ProfileError(f"the {what} cuts must be finite and strictly increasing, got {cuts}")
    return cuts


def _share(raw: Any, what: str) -> float:
    share = float(raw)
    if not 0.0 <= share <= 1.0:
        raise ProfileError(f"the {what} must be a number in [0, 1], got {share}")
    return share


def _shares(raw: Any, size: int, what: str) -> tuple[float, ...]:
    shares = tuple(float(value) for value in raw)
    if len(shares) != size or any(not 0.0 <= share <= 1.0 for share in shares):
        raise ProfileError(f"the {what} shares must be {size} numbers in [0, 1], got {shares}")
    return shares

"""Score rows with the trained pipeline: exact, and fast for the shape the pipeline trains.

scikit-learn's generic machinery costs about 2.5 ms per call whatever the batch size (pandas
column selection, estimator tags, input checks in every step, and HistGradientBoosting
re-encoding categories it was already given as codes), while the trees take 0.2 ms. For the
default pipeline (categorical columns through imputers and an ordinal encoder, numbers passed
through, HistGradientBoosting), every category's final code is computed once at load by the
fitted encoders themselves; requests are then encoded by table lookup and scored by the trees.

That last step uses HistGradientBoosting's private prediction methods (scikit-learn is pinned
to the training version in serving/uv.lock). It is used only after it reproduced the public
`predict_proba` exactly at load, on rows that cover every known category, missing values and
unknown ones; otherwise the server falls back to the public path, and logs why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from modelops_serving.coded import CodedText, plain

logger = logging.getLogger(__name__)

Scorer = Callable[[Mapping[str, Any]], npt.NDArray[np.float64]]
"""Scores columns (name -> values, in any sequence type) of equal length."""

_UNKNOWN = "\0unknown"
# From this many rows a category column is encoded with one hash lookup over the column (the
# per-value loop is faster below it: most requests are a few rows).
_VECTOR_FROM_ROWS = 512
_HGB_INTERNALS = (
    "_preprocessor",
    "_baseline_prediction",
    "_predictors",
    "_predict_iterations",
    "_loss",
)


@dataclass(frozen=True)
class Scoring:
    """How the server scores columns: `path` is "trees", "lookup" or "pipeline"."""

    predict_proba: Scorer
    path: str


def scoring(
    pipeline: Any, columns: Sequence[str], *, probe: Mapping[str, Any], threads: int = 1
) -> Scoring:
    """The fastest path that gives exactly `pipeline.predict_proba` on `probe` and on edge rows.

    `threads`: how many threads walk the trees (a server worker answers one request at a time
    with one; a batch run uses every core). Rows are scored independently: same scores.
    """

    def generic(values: Mapping[str, Any]) -> npt.NDArray[np.float64]:
        frame = pd.DataFrame({name: plain(column) for name, column in values.items()})
        proba: npt.NDArray[np.float64] = pipeline.predict_proba(frame)
        return proba

    shape = _default_shape(pipeline, columns)
    if shape is None:
        return Scoring(generic, "pipeline")
    categorical, numeric, tables, classifier = shape
    candidates = [("lookup", _lookup(categorical, numeric, tables, classifier.predict_proba))]
    trees = _tree_scorer(classifier, categorical, tables, threads=threads)
    if trees is not None:
        internal_tables, predict = trees
        candidates.insert(0, ("trees", _lookup(categorical, numeric, internal_tables, predict)))
    rows = _probe_rows(probe, categorical, tables)
    expected = generic(rows)
    for path, candidate in candidates:
        try:
            exact = np.array_equal(candidate(rows), expected)
        except Exception as exc:  # any failure means: do not use this path
            logger.warning("scoring path %s failed its check: %s", path, exc)
            continue
        if exact:
            return Scoring(candidate, path)
        logger.warning("scoring path %s differs from the pipeline; not used", path)
    return Scoring(generic, "pipeline")


Tables = list[tuple[float, dict[str, float]]]
"""Per categorical column: (code of a missing value, category -> code, with _UNKNOWN)."""


def _default_shape(
    pipeline: Any, columns: Sequence[str]
) -> tuple[list[str], list[str], Tables, Any] | None:
    steps = getattr(pipeline, "named_steps", {})
    preprocess, classifier = steps.get("preprocess"), steps.get("classifier")
    fitted = getattr(preprocess, "named_transformers_", None)
    if preprocess is None or classifier is None or fitted is None:
        return None
    if getattr(preprocess, "remainder", None) != "drop":
        return None
    # The declared spec says "passthrough"; once fitted it is an identity FunctionTransformer.
    declared = {name: (spec, list(cols)) for name, spec, cols in preprocess.transformers}
    if set(declared) - {"categorical", "numeric"}:
        return None
    categorical = declared.get("categorical", (None, []))[1]
    numeric_spec, numeric = declared.get("numeric", ("passthrough", []))
    if numeric_spec != "passthrough" or sorted([*categorical, *numeric]) != sorted(columns):
        return None
    tables = [_codes(fitted.get("categorical"), column, categorical) for column in categorical]
    if any(table is None for table in tables):
        return None
    return categorical, numeric, tables, classifier  # type: ignore[return-value]


def _codes(
    transformer: Any, column: str, columns: Sequence[str]
) -> tuple[float, dict[str, float]] | None:
    """(code of a missing value, category -> code), computed by the fitted transformer itself."""
    encoder = transformer[-1] if hasattr(transformer, "steps") else transformer
    categories = getattr(encoder, "categories_", None)
    if categories is None or type(encoder).__name__ != "OrdinalEncoder":
        return None
    index = list(columns).index(column)
    known = [value for value in categories[index] if isinstance(value, str)]
    probe = [*known, None, _UNKNOWN]
    frame = pd.DataFrame({c: [_UNKNOWN] * len(probe) for c in columns}, dtype=object)
    frame[column] = pd.Series(probe, dtype=object)
    encoded = np.asarray(transformer.transform(frame), dtype=np.float64)[:, index]
    codes = dict(zip([*known, _UNKNOWN], [*encoded[: len(known)], encoded[-1]], strict=True))
    return float(encoded[len(known)]), codes


def _tree_scorer(
    classifier: Any, categorical: Sequence[str], tables: Tables, *, threads: int
) -> tuple[Tables, Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]] | None:
    """HistGradientBoosting without per-call checks: tables in its internal codes, and the trees."""
    if type(classifier).__name__ != "HistGradientBoostingClassifier":
        return None
    if not all(hasattr(classifier, name) for name in _HGB_INTERNALS):
        return None
    internal = classifier._preprocessor
    if internal is None:
        remapped = tables
    else:
        # Feed every code we produce through the classifier's own encoder, column by column.
        width = internal.n_features_in_
        remapped = []
        for position, (missing, codes) in enumerate(tables):
            ours = np.array([missing, *codes.values()], dtype=np.float64)
            block = np.zeros((len(ours), width), dtype=np.float64)
            block[:, position] = ours
            theirs = np.asarray(internal.transform(block), dtype=np.float64)[:, position]
            remapped.append((float(theirs[0]), dict(zip(codes, theirs[1:], strict=True))))
    baseline, trees = classifier._baseline_prediction, classifier._predictors
    outputs = classifier.n_trees_per_iteration_

    def predict(encoded: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        raw = np.zeros((encoded.shape[0], outputs), dtype=baseline.dtype, order="F")
        raw += baseline
        classifier._predict_iterations(encoded, trees, raw, False, threads)
        proba: npt.NDArray[np.float64] = classifier._loss.predict_proba(raw)
        return proba

    return remapped, predict


def _lookup(
    categorical: Sequence[str],
    numeric: Sequence[str],
    tables: Tables,
    predict: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]],
) -> Scorer:
    order = [*categorical, *numeric]
    indexes = [_Index(missing, codes) for missing, codes in tables]

    def predict_proba(values: Mapping[str, Any]) -> npt.NDArray[np.float64]:
        rows = len(values[order[0]])
        encoded = np.empty((rows, len(order)), dtype=np.float64)
        for position, (column, (missing, codes), index) in enumerate(
            zip(categorical, tables, indexes, strict=True)
        ):
            if rows >= _VECTOR_FROM_ROWS:
                encoded[:, position] = index.codes(values[column])
                continue
            unknown = codes[_UNKNOWN]
            encoded[:, position] = [
                missing if value is None or value != value else codes.get(value, unknown)
                for value in values[column]
            ]
        for position, column in enumerate(numeric, start=len(categorical)):
            encoded[:, position] = np.asarray(values[column], dtype=np.float64)
        return predict(encoded)

    return predict_proba


class _Index:
    """A category table as a hash index: many rows encoded in one vectorised lookup."""

    def __init__(self, missing: float, codes: Mapping[str, float]) -> None:
        known = [value for value in codes if value != _UNKNOWN]
        self.index = pd.Index(known, dtype=object)
        # Position -1 (not found) reads the last entry: the unknown category's code.
        self.table = np.array([*(codes[value] for value in known), codes[_UNKNOWN]])
        self.missing = missing

    def codes(self, values: Any) -> npt.NDArray[np.float64]:
        """Same codes as the per-value lookup: None and NaN missing, anything else unknown."""
        if isinstance(values, CodedText):  # one lookup per distinct value
            return values.looked_up(self.table[self.index.get_indexer(values.values)], self.missing)
        column = np.asarray(values, dtype=object)
        found: npt.NDArray[np.float64] = self.table[self.index.get_indexer(column)]
        found[pd.isna(column)] = self.missing
        return found


def _probe_rows(
    probe: Mapping[str, Any], categorical: Sequence[str], tables: Tables
) -> dict[str, list[Any]]:
    """`probe`'s rows, then rows trying every known category, a missing and an unknown one."""
    rows = {column: list(values) for column, values in probe.items()}
    extra = max([len(codes) for _, codes in tables] + [0]) + 1
    for values in rows.values():
        values.extend([values[0]] * extra)
    for column, (_, codes) in zip(categorical, tables, strict=True):
        trial = [*[c for c in codes if c != _UNKNOWN], None, "never seen before"]
        start = len(rows[column]) - extra
        for offset, value in enumerate(trial[:extra]):
            rows[column][start + offset] = value
    for column in rows:
        if column not in categorical:
            rows[column][-1] = float("nan")  # a missing number too
    return rows

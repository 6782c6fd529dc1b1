"""Raw rows to the model's inputs, with the tables of a bundle's `encoding.json`.

The tables say, per raw column in order: a categorical column's known categories and the code
(format `ordinal`) or the one-hot column (format `one_hot`) each maps to, and what an unseen
category becomes; a numeric column's imputed value for a missing one, and its centre and scale.
A missing category (None or NaN) is first replaced by the pipeline's missing category, then
looked up like any other value: exactly the trained pipeline's order of steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
from modelops_contract.bundle import INPUTS_AS_FLOAT32, ONE_HOT, ORDINAL

Rows: TypeAlias = Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]
"""Raw rows: a list of {column: value}, or {column: values} (one sequence per column)."""


def encode(rows: Rows, encoding: Mapping[str, Any]) -> npt.NDArray[np.float64]:
    """The model's input matrix (float64; NaN where the model takes a missing value).

    Raises:
        ValueError: a column the tables name is absent from `rows`; the message names it.
    """
    columns = _columns(rows, [column["name"] for column in encoding["columns"]])
    blocks = [_encode_column(columns[spec["name"]], spec) for spec in encoding["columns"]]
    if not blocks:
        return np.empty((0, 0))
    inputs = np.concatenate(blocks, axis=1)
    if encoding.get(INPUTS_AS_FLOAT32):
        return inputs.astype(np.float32).astype(np.float64)
    return inputs


def _columns(rows: Rows, names: Sequence[str]) -> dict[str, list[Any]]:
    """Rows as {column: values}, refusing a missing column or columns of unequal length."""
    if isinstance(rows, Mapping):
        absent = [name for name in names if name not in rows]
        if absent:
            raise ValueError(f"the rows have no column {', '.join(absent)}")
        columns = {name: list(rows[name]) for name in names}
    else:
        absent = sorted({name for row in rows for name in names if name not in row})
        if absent:
            raise ValueError(f"some rows have no column {', '.join(absent)}")
        columns = {name: [row[name] for row in rows] for name in names}
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"the columns have different lengths: {sorted(lengths)}")
    return columns


def is_missing(value: object) -> bool:
    """None or a float NaN: both are missing to the trained pipeline."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _encode_column(values: list[Any], spec: Mapping[str, Any]) -> npt.NDArray[np.float64]:
    if spec["kind"] == "numeric":
        return _numeric(values, spec)[:, None]
    missing = spec["missing_category"]
    codes = dict(zip(_keys(spec["categories"]), spec["codes"], strict=True))
    looked_up = [codes.get(_key(missing if is_missing(v) else v), spec["unknown"]) for v in values]
    if spec["encoding"] == ORDINAL:
        return np.array([math.nan if c is None else c for c in looked_up], dtype=np.float64)[
            :, None
        ]
    if spec["encoding"] != ONE_HOT:
        raise ValueError(f"unknown encoding {spec['encoding']!r} for column {spec['name']}")
    block = np.zeros((len(values), int(spec["width"])))
    for row, column in enumerate(looked_up):
        if column is not None:  # an unseen category with no infrequent column: all zeros
            block[row, column] = 1.0
    return block


def _numeric(values: list[Any], spec: Mapping[str, Any]) -> npt.NDArray[np.float64]:
    column = np.array([math.nan if is_missing(v) else float(v) for v in values], dtype=np.float64)
    if spec.get("impute") is not None:
        column = np.where(np.isnan(column), float(spec["impute"]), column)
    if spec.get("mean") is not None:
        column = (column - float(spec["mean"])) / float(spec["scale"])
    return column


def _key(value: object) -> tuple[str, object]:
    """A lookup key that tells "1" from 1 (the pipeline's encoders do) but 1 from 1.0."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float | np.integer | np.floating):
        return ("number", float(value))
    if isinstance(value, str):  # numpy's str_ too
        return ("str", str(value))
    return (type(value).__name__, value)


def _keys(values: Sequence[object]) -> list[tuple[str, object]]:
    return [_key(value) for value in values]

"""The rows the parity gate scores besides the test set: the edge cases a device will meet.

Built from the schema and the training data alone (pure): every known category of every
categorical column, an unseen category, a missing value in every column (and in all at once),
and extreme numbers in every numeric column. Each case changes one column of a typical row
(the most common category, the median number), so a difference points at that column.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from modelops.data import Schema

UNSEEN_CATEGORY = "__modelops_unseen__"
# Very large and very small magnitudes that float32 (the ONNX inputs) still holds, zero, and
# negatives where the data may have none.
EXTREME_NUMBERS = (1e12, -1e12, 1e-12, -1e-12, 0.0, -1.0)

Columns = dict[str, list[Any]]
"""A table as {column: values}: what the exporter's request carries (JSON)."""


def typical_row(schema: Schema, train: pd.DataFrame) -> dict[str, Any]:
    """The most common category and the median of each feature."""
    row: dict[str, Any] = {}
    for column in schema.categorical:
        counts = train[column].dropna().value_counts()
        row[column] = _plain(counts.index[0]) if len(counts) else None
    for column in schema.numeric:
        median = train[column].median()
        row[column] = None if pd.isna(median) else float(median)
    return row


def edge_cases(schema: Schema, train: pd.DataFrame) -> Columns:
    """The edge-case rows, as columns."""
    base = typical_row(schema, train)
    rows: list[dict[str, Any]] = []
    for column in schema.categorical:
        known = sorted((_plain(v) for v in train[column].dropna().unique()), key=str)
        rows += [{**base, column: value} for value in [*known, UNSEEN_CATEGORY]]
    rows += [{**base, column: None} for column in schema.features]
    rows.append(dict.fromkeys(schema.features))
    for column in schema.numeric:
        rows += [{**base, column: value} for value in EXTREME_NUMBERS]
    return {column: [row[column] for row in rows] for column in schema.features}


def table_columns(schema: Schema, frame: pd.DataFrame) -> Columns:
    """A data frame's features as JSON-ready columns (missing values as None)."""
    columns: Columns = {}
    for column in schema.categorical:
        columns[column] = [None if pd.isna(v) else _plain(v) for v in frame[column]]
    for column in schema.numeric:
        columns[column] = [None if pd.isna(v) else float(v) for v in frame[column]]
    return columns


def _plain(value: Any) -> Any:
    """A category as JSON carries it: numpy scalars as Python's, strings as they are."""
    return value.item() if hasattr(value, "item") else value

"""Turn a Seldon request into model input, or refuse it with a message that names the field.

Accepted: `{"data": {"names": [...], "ndarray": [[...], ...]}}`. `names` is optional; when given
it must be exactly the model's inputs, in any order. Numbers go in numeric inputs, strings in
categorical ones, `null` anywhere for a missing value; NaN and infinity are refused (JSON has
no such numbers and the model treats them as data, not as missing).

Every check costs time linear in the request's size (a body at the size limit is refused in
milliseconds, whatever its shape), and a message quotes at most a short excerpt of a bad value.

The Open Inference Protocol's requests (`modelops_serving.v2`) become this same request before
these checks; `Fields` names the parts of a request in the protocol the client spoke, so a V2
client reads `the input 'age' at row 3`, not `data.ndarray[3]['age']`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelops_serving import quote
from modelops_serving.artifact import Column

EXPECTED_FORM = '{"data": {"names": [...], "ndarray": [[...], ...]}}'
_SHOWN = 20
_DATA_KEYS = ("names", "ndarray")
LARGEST_NUMBER = sys.float_info.max
"""The largest number an input may hold (a double's): beyond it a value cannot be scored."""


@dataclass(frozen=True)
class Fields:
    """How a refusal names the parts of a request: the input names, a row, a row's value."""

    names: str
    """The list of input names, e.g. `'data.names'`."""
    row_at: str
    """A row, formatted with `row`."""
    value_at: str
    """A row's value of an input, formatted with `row` and `column`."""

    def row(self, row: int) -> str:
        return self.row_at.format(row=row)

    def value(self, row: int, column: str) -> str:
        return self.value_at.format(row=row, column=column)


SELDON = Fields(
    names="'data.names'",
    row_at="'data.ndarray[{row}]'",
    value_at="'data.ndarray[{row}]['{column}']'",
)
"""Seldon's protocol: `{"data": {"names": [...], "ndarray": [[...], ...]}}`."""


class RequestError(Exception):
    """A request the server refuses; `status` is the HTTP status to answer with.

    `reason` is one stable snake_case name per kind of refusal: the `outcome` label of
    `modelops_requests_total` (messages change, the reasons stay).
    """

    def __init__(self, message: str, *, status: int = 400, reason: str = "bad_request") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Batch:
    """Validated rows, column by column in the model's order, and rows with a missing value."""

    columns: dict[str, Any]
    rows_with_missing: int

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as the pipeline's input frame (the fast scorer does not need it)."""
        return pd.DataFrame(self.columns)


def to_batch(
    payload: Any, columns: Sequence[Column], *, max_rows: int, fields: Fields = SELDON
) -> Batch:
    """Validate a parsed JSON request against the model's inputs.

    Raises:
        RequestError: what is wrong, where (`data.ndarray[row]['column']`, or as `fields` names
            it), and the expected form.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        raise RequestError(
            f"the request needs a 'data' object: send {EXPECTED_FORM}", reason="no_data"
        )
    data = payload["data"]
    if "ndarray" not in data:
        unsupported = [key for key in data if key not in _DATA_KEYS]
        raise RequestError(
            f"'data' needs 'ndarray' (a list of rows){_unsupported(unsupported)}: "
            f"send {EXPECTED_FORM}",
            reason="no_ndarray",
        )
    rows = data["ndarray"]
    if not isinstance(rows, list):
        raise RequestError(
            f"'data.ndarray' must be a list of rows, got {_kind(rows)}", reason="rows_not_a_list"
        )
    if not rows:
        raise RequestError("'data.ndarray' is empty: send at least one row", reason="no_rows")
    check_row_count(len(rows), max_rows=max_rows)
    order = _order(data.get("names"), columns, fields)
    width = len(columns)
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            size = f"{len(row)} values" if isinstance(row, list) else _kind(row)
            raise RequestError(
                f"{fields.row(index)} has {size}; each row needs {width} values, for "
                f"{_names(c.name for c in columns)}",
                reason="wrong_row_length",
            )
    values = list(zip(*rows, strict=True))
    by_column = {
        column.name: _column(values[order[position]], column, fields)
        for position, column in enumerate(columns)
    }
    missing = np.zeros(len(rows), dtype=bool)
    for column in columns:
        values_of = by_column[column.name]
        if column.kind == "number":
            missing |= np.isnan(values_of)
        else:
            missing |= np.fromiter((v is None for v in values_of), dtype=bool, count=len(rows))
    return Batch(columns=by_column, rows_with_missing=int(missing.sum()))


def check_row_count(rows: int, *, max_rows: int) -> None:
    """Refuse a batch over the row limit (413), whatever the protocol."""
    if rows > max_rows:
        raise RequestError(
            f"the batch has {rows} rows, over the limit of {max_rows}: split it",
            status=413,
            reason="too_many_rows",
        )


def _order(names: Any, columns: Sequence[Column], fields: Fields) -> list[int]:
    """For each model input, its position in the request's rows.

    A list longer than the model's inputs is refused on its length alone; every later step then
    works on at most that many names, with sets and dicts instead of list searches.
    """
    expected = [column.name for column in columns]
    if names is None:
        return list(range(len(columns)))
    if not isinstance(names, list):
        raise RequestError(
            f"{fields.names} must be a list of input names (strings)", reason="names_not_strings"
        )
    if len(names) > len(expected):
        raise RequestError(
            f"{fields.names} has {len(names)} names, more than the model's {len(expected)} "
            f"inputs. Expected, in any order: {_names(expected)}",
            reason="too_many_names",
        )
    if not all(isinstance(n, str) for n in names):
        raise RequestError(
            f"{fields.names} must be a list of input names (strings)", reason="names_not_strings"
        )
    position: dict[str, int] = {}
    repeated: dict[str, None] = {}
    for index, name in enumerate(names):
        if name in position:
            repeated[name] = None
        else:
            position[name] = index
    known = set(expected)
    unknown = [n for n in position if n not in known]
    missing = [n for n in expected if n not in position]
    if unknown or missing or repeated:
        problems = [
            f"unknown {_names(unknown)}" if unknown else "",
            f"missing {_names(missing)}" if missing else "",
            f"repeated {_names(repeated)}" if repeated else "",
        ]
        found = "; ".join(problem for problem in problems if problem)
        raise RequestError(
            f"{fields.names} does not match the model's inputs ({found}). "
            f"Expected, in any order: {_names(expected)}",
            reason="unknown_name" if unknown else "missing_name" if missing else "repeated_name",
        )
    return [position[name] for name in expected]


def _column(values: Sequence[Any], column: Column, fields: Fields) -> Any:
    if column.kind == "string":
        for index, value in enumerate(values):
            if value is not None and not isinstance(value, str):
                raise RequestError(
                    f"{fields.value(index, column.name)} must be a string or null, "
                    f"got {quote.excerpt(value)}",
                    reason="not_a_string",
                )
        return list(values)
    for index, value in enumerate(values):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RequestError(
                f"{fields.value(index, column.name)} must be a number or null, "
                f"got {quote.excerpt(value)}",
                reason="not_a_number",
            )
        if isinstance(value, int) and abs(value) > LARGEST_NUMBER:
            raise RequestError(
                f"{fields.value(index, column.name)} is too large for a number "
                f"(an integer of {value.bit_length()} bits)",
                reason="number_too_large",
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise RequestError(
                f"{fields.value(index, column.name)} is {value!r}: NaN and infinity are not "
                "numbers here; send null for a missing value",
                reason="not_finite",
            )
    return np.array([np.nan if value is None else value for value in values], dtype=np.float64)


def _unsupported(keys: list[str]) -> str:
    return f" ({_names(keys)} not supported)" if keys else ""


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _names(names: Iterable[str]) -> str:
    listed = list(names)
    shown = ", ".join(quote.name(name) for name in listed[:_SHOWN])
    return shown + (f" and {len(listed) - _SHOWN} more" if len(listed) > _SHOWN else "")

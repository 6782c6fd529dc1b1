"""Section `prepare`: where the data comes from, how it is read, its columns, and the split."""

from __future__ import annotations

import codecs
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from modelops.params.base import Frozen

SYNTHETIC_SOURCE = "synthetic"


def label_text(value: object) -> str:
    """Return the canonical text of a label value, so `1`, `1.0` and `"1"` name one class."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class SyntheticParams(Frozen):
    """The built-in churn data generator, used when `prepare.source` is `synthetic`."""

    rows: int = Field(20_000, ge=200, le=20_000_000, description="Rows to generate.")
    seed: int = Field(42, ge=0, description="Random seed; the same seed gives the same rows.")


class ColumnsParams(Frozen):
    """Column roles. Leave `categorical` and `numeric` unset to infer them from the data."""

    label: str = Field(description="Binary target column.")
    positive_label: bool | str | None = Field(
        None,
        description="Label value of the positive class; inferred when unset "
        "(1/True/yes if present, else the rarer class). YAML reads unquoted yes/no, on/off and "
        "true/false as booleans: a boolean matches the label's yes/no, y/n, on/off, true/false "
        "or 1/0 values (any case).",
    )
    id: str | None = Field(None, description="Row identifier; never used as a feature.")
    timestamp: str | None = Field(
        None, description="Event time; never used as a feature, needed by the time split."
    )
    categorical: tuple[str, ...] | None = Field(None, description="Categorical features.")
    numeric: tuple[str, ...] | None = Field(None, description="Numeric features.")
    drop: tuple[str, ...] = Field((), description="Columns to ignore entirely.")

    @field_validator("positive_label", mode="before")
    @classmethod
    def _label_as_text(cls, value: object) -> object:
        """Numbers become their label text (`1.0` -> `1`); booleans stay booleans for matching."""
        return value if value is None or isinstance(value, bool) else label_text(value)

    @model_validator(mode="after")
    def _roles_are_disjoint(self) -> Self:
        roles: dict[str, list[str]] = {}
        singles = {"label": self.label, "id": self.id, "timestamp": self.timestamp}
        for role, column in singles.items():
            if column is not None:
                roles.setdefault(column, []).append(role)
        for role in ("categorical", "numeric", "drop"):
            for column in getattr(self, role) or ():
                roles.setdefault(column, []).append(role)
        clashes = {column: found for column, found in roles.items() if len(found) > 1}
        if clashes:
            detail = "; ".join(f"'{c}' is {' and '.join(r)}" for c, r in sorted(clashes.items()))
            raise ValueError(f"a column can have one role only: {detail}")
        return self


class SplitParams(Frozen):
    """How rows are divided into train and test sets."""

    strategy: Literal["stratified", "time"] = Field(
        "stratified",
        description="`stratified`: random, keeping the label balance; "
        "`time`: the latest rows (by `columns.timestamp`) are the test set.",
    )
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = Field(42, ge=0)


CSV_DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t"}


class CsvParams(Frozen):
    """How CSV files are read; Parquet files ignore this section."""

    delimiter: Literal["auto", ",", ";", "\t", "|"] = Field(
        "auto",
        description="Field separator: `auto` sniffs it from the file's first lines among "
        '`,` `;` tab `|`; or one of those (write tab as `tab` or "\\t").',
    )
    decimal: Literal[".", ","] = Field(
        ".",
        description="Decimal mark of numbers: `,` for files written as 1,5 (usually with "
        "delimiter `;`); numbers with the other mark are read as text.",
    )
    encoding: str = Field(
        "utf-8",
        description="Text encoding of the file, e.g. utf-8 (also reads a byte-order mark), "
        "latin-1 or cp1252 for older spreadsheet exports.",
    )

    @field_validator("delimiter", mode="before")
    @classmethod
    def _delimiter_by_name(cls, value: object) -> object:
        return _DELIMITER_NAMES.get(value, value) if isinstance(value, str) else value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown text encoding '{value}'; use e.g. utf-8, latin-1 or cp1252"
            ) from None
        return value

    @model_validator(mode="after")
    def _decimal_is_not_the_delimiter(self) -> Self:
        if self.delimiter == self.decimal:
            raise ValueError(
                f"decimal '{self.decimal}' cannot also be the delimiter: with decimal ',' "
                "set delimiter to ';' (or tab, or 'auto')"
            )
        return self


class PrepareParams(Frozen):
    """Stage `prepare`: load or generate the data, validate it, split it."""

    source: str = Field(
        SYNTHETIC_SOURCE,
        description="`synthetic`, or a CSV/Parquet file: a local path (keep it under data/raw/ "
        "so DVC sees changes) or an http(s) URL.",
    )
    format: Literal["auto", "csv", "parquet"] = Field(
        "auto", description="File format; `auto` goes by the file extension."
    )
    csv: CsvParams = CsvParams()
    synthetic: SyntheticParams = SyntheticParams()
    columns: ColumnsParams
    split: SplitParams = SplitParams()

    @model_validator(mode="after")
    def _time_split_needs_timestamp(self) -> Self:
        if self.split.strategy == "time" and self.columns.timestamp is None:
            raise ValueError(
                "split.strategy 'time' needs columns.timestamp: name the event-time column, "
                "or use strategy 'stratified'"
            )
        return self

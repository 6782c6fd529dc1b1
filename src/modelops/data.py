"""Pure functions from a raw table to a validated, typed, split dataset.

`resolve_schema` decides each column's role (declared in params or inferred), `coerce` makes the
values match it strictly, `split` divides rows into train and test. Each raises `DataError` with
the column, the offending rows and the fix; none of them reads or writes files.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api import types as ptypes
from sklearn.model_selection import train_test_split

from modelops.errors import DataError
from modelops.params import ColumnsParams, SplitParams, label_text

_POSITIVE_NAMES = ("1", "True", "true", "yes", "Yes", "YES", "y", "Y", "positive", "pos")
_EXAMPLES = 5
_ID_LIKE_DISTINCT_FRACTION = 0.5
_ID_LIKE_MIN_DISTINCT = 100


@dataclass(frozen=True)
class Schema:
    """The role of every column the pipeline uses; stored with the prepared data."""

    label: str
    positive_label: str
    negative_label: str
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    id: str | None = None
    timestamp: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        """Model inputs, categorical first, in a fixed order."""
        return self.categorical + self.numeric

    @property
    def columns(self) -> tuple[str, ...]:
        """Every kept column: id and timestamp, features, label."""
        keys = tuple(c for c in (self.id, self.timestamp) if c is not None)
        return keys + self.features + (self.label,)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Inverse of `to_dict`."""
        return cls(
            label=data["label"],
            positive_label=data["positive_label"],
            negative_label=data["negative_label"],
            categorical=tuple(data["categorical"]),
            numeric=tuple(data["numeric"]),
            id=data.get("id"),
            timestamp=data.get("timestamp"),
        )


@dataclass(frozen=True)
class Resolved:
    """A schema and what was decided on the user's behalf (printed for them)."""

    schema: Schema
    notes: tuple[str, ...]


def resolve_schema(frame: pd.DataFrame, columns: ColumnsParams, *, source: str) -> Resolved:
    """Assign roles to columns: declared ones are checked, unset feature lists are inferred."""
    _require_columns(frame, columns, source=source)
    taken = {c for c in (columns.label, columns.id, columns.timestamp) if c is not None}
    taken |= set(columns.drop) | set(columns.categorical or ()) | set(columns.numeric or ())
    free = [str(c) for c in frame.columns if c not in taken]
    notes: list[str] = []

    numeric = columns.numeric
    if numeric is None:
        numeric = tuple(c for c in free if _is_numeric(frame[c]))
        notes.append(f"inferred numeric features: {_names(numeric)}")
    categorical = columns.categorical
    if categorical is None:
        categorical = tuple(c for c in free if c not in numeric and _is_categorical(frame[c]))
        notes.append(f"inferred categorical features: {_names(categorical)}")
        notes.extend(_id_like_warnings(frame, categorical))
    ignored = [c for c in free if c not in numeric and c not in categorical]
    if ignored:
        notes.append(
            f"ignored columns (declare them in prepare.columns to use them): {_names(ignored)}"
        )
    if not numeric and not categorical:
        raise DataError(
            f"{source}: no feature columns left after label/id/timestamp/drop; "
            "list features in prepare.columns.categorical or prepare.columns.numeric"
        )

    labels = _label_values(frame[columns.label], column=columns.label, source=source)
    positive, negative, inferred = _positive_class(labels, columns, source=source)
    if inferred:
        notes.append(
            f"inferred positive class of '{columns.label}': '{positive}' (negative: '{negative}'); "
            "set prepare.columns.positive_label to choose"
        )
    schema = Schema(
        label=columns.label,
        positive_label=positive,
        negative_label=negative,
        categorical=tuple(categorical),
        numeric=tuple(numeric),
        id=columns.id,
        timestamp=columns.timestamp,
    )
    return Resolved(schema=schema, notes=tuple(notes))


def coerce(frame: pd.DataFrame, schema: Schema, *, source: str) -> pd.DataFrame:
    """Return a new frame with only the schema's columns, strictly typed.

    Numeric features become float64, categorical features text (missing stays missing), the
    timestamp a naive UTC datetime, the label text. Values that do not fit are an error, not NaN.
    """
    out: dict[str, pd.Series] = {}
    if schema.id is not None:
        out[schema.id] = frame[schema.id].astype(str)
    if schema.timestamp is not None:
        out[schema.timestamp] = _timestamps(frame[schema.timestamp], schema.timestamp, source)
    for column in schema.categorical:
        out[column] = _as_text(frame[column])
    for column in schema.numeric:
        out[column] = _numbers(frame[column], column, source)
    out[schema.label] = _label_values(frame[schema.label], column=schema.label, source=source)
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


def split(
    frame: pd.DataFrame, schema: Schema, params: SplitParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Divide rows into (train, test) as `params` says; both keep both classes."""
    if params.strategy == "time":
        assert schema.timestamp is not None, "params validation guarantees a timestamp column"
        order = frame[schema.timestamp].sort_values(kind="mergesort")
        cutoff = order.iloc[min(int(len(order) * (1 - params.test_fraction)), len(order) - 1)]
        is_test = frame[schema.timestamp] >= cutoff
        train, test = frame[~is_test], frame[is_test]
        where = f"time split at {cutoff}"
    else:
        try:
            train, test = train_test_split(
                frame,
                test_size=params.test_fraction,
                random_state=params.seed,
                stratify=frame[schema.label],
            )
        except ValueError as exc:
            raise DataError(
                f"cannot split {len(frame)} rows by label ({exc}); add rows of the rarer class "
                "or lower prepare.split.test_fraction"
            ) from None
        where = "stratified split"
    for name, part in (("train", train), ("test", test)):
        present = set(part[schema.label].unique())
        if len(present) < 2:
            raise DataError(
                f"{where}: the {name} set has {len(part)} rows and only the class(es) "
                f"{_names(sorted(present))}; both classes are needed. Adjust "
                "prepare.split.test_fraction or use strategy 'stratified'"
            )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def fingerprint(*frames: pd.DataFrame) -> str:
    """A content hash of the frames' values, column names and dtypes (not of any file format)."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def features(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The model's input columns, in the schema's order."""
    return frame.loc[:, list(schema.features)]


def _require_columns(frame: pd.DataFrame, columns: ColumnsParams, *, source: str) -> None:
    declared = {
        "label": [columns.label],
        "id": [columns.id] if columns.id else [],
        "timestamp": [columns.timestamp] if columns.timestamp else [],
        "categorical": list(columns.categorical or ()),
        "numeric": list(columns.numeric or ()),
        "drop": list(columns.drop),
    }
    present = [str(c) for c in frame.columns]
    for role, names in declared.items():
        for name in names:
            if name not in present:
                hint = difflib.get_close_matches(name, present, n=1)
                maybe = f" Did you mean '{hint[0]}'?" if hint else ""
                raise DataError(
                    f"{source}: column '{name}' (prepare.columns.{role}) is not in the data."
                    f"{maybe} Columns found: {_names(present)}"
                )


def _is_numeric(series: pd.Series) -> bool:
    return ptypes.is_numeric_dtype(series) and not ptypes.is_bool_dtype(series)


def _is_categorical(series: pd.Series) -> bool:
    return not ptypes.is_datetime64_any_dtype(series) and not _is_numeric(series)


def _id_like_warnings(frame: pd.DataFrame, categorical: Iterable[str]) -> list[str]:
    warnings = []
    for column in categorical:
        distinct = frame[column].nunique()
        if distinct >= _ID_LIKE_MIN_DISTINCT and distinct > _ID_LIKE_DISTINCT_FRACTION * len(frame):
            warnings.append(
                f"warning: categorical '{column}' has {distinct} distinct values in {len(frame)} "
                "rows: if it is an identifier or free text, set it as prepare.columns.id or drop it"
            )
    return warnings


def _label_values(series: pd.Series, *, column: str, source: str) -> pd.Series:
    missing = series.isna()
    if missing.any():
        raise DataError(
            f"{source}: label column '{column}' has {int(missing.sum())} missing value(s), "
            f"e.g. at row(s) {_rows(missing)}; fill them or remove those rows"
        )
    texts = _as_text(series)
    classes = sorted(texts.unique())
    if len(classes) == 1:
        raise DataError(
            f"{source}: label column '{column}' has a single class ('{classes[0]}'); a classifier "
            "needs examples of both classes: check the export or the label column"
        )
    if len(classes) > 2:
        shown = _names(classes[:10]) + (" ..." if len(classes) > 10 else "")
        raise DataError(
            f"{source}: label column '{column}' has {len(classes)} classes ({shown}); modelops "
            "trains binary classifiers: map the label to two classes"
        )
    return texts


def _positive_class(
    labels: pd.Series, columns: ColumnsParams, *, source: str
) -> tuple[str, str, bool]:
    classes = sorted(labels.unique())
    if columns.positive_label is not None:
        if columns.positive_label not in classes:
            raise DataError(
                f"{source}: prepare.columns.positive_label '{columns.positive_label}' is not a "
                f"value of '{columns.label}'; its values are {_names(classes)}"
            )
        positive = columns.positive_label
        inferred = False
    else:
        named = [c for c in classes if c in _POSITIVE_NAMES]
        counts = labels.value_counts()
        positive = named[0] if len(named) == 1 else str(counts.idxmin())
        inferred = True
    negative = next(c for c in classes if c != positive)
    return positive, negative, inferred


def _as_text(series: pd.Series) -> pd.Series:
    """Values as canonical text (`1.0` -> `1`), missing values kept as None."""
    uniques = series.dropna().unique()
    mapping = {value: label_text(value) for value in uniques}
    return series.map(mapping).astype(object).where(series.notna(), None)


def _numbers(series: pd.Series, column: str, source: str) -> pd.Series:
    if ptypes.is_bool_dtype(series):
        return series.astype(np.float64)
    if _is_numeric(series):
        values = series.astype(np.float64)
    else:
        text = series.astype(object).where(series.notna(), None)
        stripped = text.map(lambda v: v.strip() if isinstance(v, str) else v).replace("", None)
        values = pd.to_numeric(stripped, errors="coerce").astype(np.float64)
        bad = stripped.notna() & values.isna()
        if bad.any():
            examples = _names(repr(v) for v in stripped[bad].unique()[:_EXAMPLES])
            raise DataError(
                f"{source}: numeric column '{column}' has {int(bad.sum())} of {len(series)} values "
                f"that are not numbers ({examples}) at row(s) {_rows(bad)}. Fix the data, or list "
                f"'{column}' under prepare.columns.categorical if it is a category"
            )
    infinite = np.isinf(values)
    if infinite.any():
        raise DataError(
            f"{source}: numeric column '{column}' has {int(infinite.sum())} infinite value(s) at "
            f"row(s) {_rows(infinite)}; replace them with a number or leave them empty"
        )
    return values


def _timestamps(series: pd.Series, column: str, source: str) -> pd.Series:
    if ptypes.is_datetime64_any_dtype(series):
        parsed = pd.to_datetime(series, utc=True)
    else:
        parsed = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
        bad = series.notna() & parsed.isna()
        if bad.any():
            examples = _names(repr(v) for v in series[bad].unique()[:_EXAMPLES])
            raise DataError(
                f"{source}: timestamp column '{column}' has {int(bad.sum())} value(s) that do not "
                f"parse as a date/time ({examples}) at row(s) {_rows(bad)}. Use ISO 8601 such as "
                "2024-05-01 or 2024-05-01T13:45:00Z, or unset prepare.columns.timestamp"
            )
    if parsed.isna().any():
        raise DataError(
            f"{source}: timestamp column '{column}' has {int(parsed.isna().sum())} missing "
            f"value(s) at row(s) {_rows(parsed.isna())}; fill them or unset "
            "prepare.columns.timestamp"
        )
    return parsed.dt.tz_convert(None)


def _rows(mask: pd.Series | npt.NDArray[np.bool_]) -> str:
    """First offending row numbers, 1-based as in a spreadsheet's data rows."""
    positions = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(p + 1) for p in positions[:_EXAMPLES])
    return shown + (f" and {len(positions) - _EXAMPLES} more" if len(positions) > _EXAMPLES else "")


def _names(items: Iterable[object]) -> str:
    return ", ".join(str(i) for i in items) or "none"

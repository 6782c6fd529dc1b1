"""Pure functions from a raw table to a validated, typed, split dataset.

`validate` decides each column's role (declared in params or inferred) and makes the values match
it strictly. It collects every independent problem it finds (missing columns, an unusable label,
a positive class that names no value, text in a numeric column, unparseable timestamps) into one
`DataError`, so a new source is fixed in one round instead of one error per run. `resolve_schema`
and `coerce` are its two halves; `split` divides rows into train and test. Every message names
the column, the offending rows and the fix; none of these functions reads or writes files.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api import types as ptypes

from modelops.errors import DataError
from modelops.io import JSONObject
from modelops.params import ColumnsParams, SplitParams, label_text

_POSITIVE_NAMES = ("1", "True", "true", "yes", "Yes", "YES", "y", "Y", "positive", "pos")
# How label values read as booleans when `positive_label` is a YAML boolean (yes/on/true...).
_BOOLEAN_SPELLINGS = {
    True: frozenset({"true", "t", "yes", "y", "on", "1"}),
    False: frozenset({"false", "f", "no", "n", "off", "0"}),
}
_EXAMPLES = 5
_SHOWN_VALUES = 10
_SHOWN_COLUMNS = 40
_DECIMAL_COMMA_SCAN = 1000
_DECIMAL_COMMA = r"[+-]?\d*,\d+"
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

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: JSONObject) -> Self:
        """Inverse of `to_dict`, from meta.json as parsed."""
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


@dataclass(frozen=True)
class _Roles:
    """The columns, by role, that are in the frame: what coercion can work on."""

    label: str | None
    id: str | None
    timestamp: str | None
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]


@dataclass(frozen=True)
class _Choice:
    """The positive and negative class, and a note when they were not given verbatim."""

    positive: str
    negative: str
    note: str | None = None


@dataclass(frozen=True)
class _Draft:
    """What resolving found: roles, the class choice, notes, and every problem."""

    roles: _Roles
    choice: _Choice | None
    notes: tuple[str, ...]
    problems: tuple[str, ...]
    missing_columns: bool

    def schema(self) -> Schema:
        """The schema; only valid when there were no problems."""
        roles, choice = self.roles, self.choice
        assert roles.label is not None, "no problems: the label column is there"
        assert choice is not None, "no problems: the positive class is chosen"
        return Schema(
            label=roles.label,
            positive_label=choice.positive,
            negative_label=choice.negative,
            categorical=roles.categorical,
            numeric=roles.numeric,
            id=roles.id,
            timestamp=roles.timestamp,
        )


def validate(
    frame: pd.DataFrame, columns: ColumnsParams, *, source: str
) -> tuple[Resolved, pd.DataFrame]:
    """Resolve the schema and coerce the values; one `DataError` lists every problem found."""
    draft = _resolve(frame, columns)
    out, problems = _coerce(frame, draft.roles)
    _raise_if([*draft.problems, *problems], source=source, found=_found(frame, draft))
    return Resolved(schema=draft.schema(), notes=draft.notes), out


def resolve_schema(frame: pd.DataFrame, columns: ColumnsParams, *, source: str) -> Resolved:
    """Assign roles to columns: declared ones are checked, unset feature lists are inferred."""
    draft = _resolve(frame, columns)
    _raise_if(list(draft.problems), source=source, found=_found(frame, draft))
    return Resolved(schema=draft.schema(), notes=draft.notes)


def coerce(frame: pd.DataFrame, schema: Schema, *, source: str) -> pd.DataFrame:
    """Return a new frame with only the schema's columns, strictly typed.

    Numeric features become float64, categorical features text (missing stays missing), the
    timestamp a naive UTC datetime, the label text. Values that do not fit are an error, not NaN.
    """
    label_problems = _label_problems(frame[schema.label], about=f"label column '{schema.label}'")
    roles = _Roles(
        label=schema.label,
        id=schema.id,
        timestamp=schema.timestamp,
        categorical=schema.categorical,
        numeric=schema.numeric,
    )
    out, problems = _coerce(frame, roles)
    _raise_if([*label_problems, *problems], source=source)
    return out


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
        # Here, not at import: scikit-learn takes about 2 s to import, and the commands that
        # only read the prepared data's schema (`modelops summary`, the rehearsal) never split.
        from sklearn.model_selection import train_test_split

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


def _resolve(frame: pd.DataFrame, columns: ColumnsParams) -> _Draft:
    """Every role decision and every problem with them, without raising."""
    present = [str(c) for c in frame.columns]
    problems = _missing_columns(columns, present)
    missing_columns = bool(problems)
    singles = (columns.label, columns.id, columns.timestamp)
    taken = {c for c in singles if c is not None}
    taken |= set(columns.drop) | set(columns.categorical or ()) | set(columns.numeric or ())
    free = [c for c in present if c not in taken]
    notes: list[str] = []

    if columns.numeric is None:
        numeric = tuple(c for c in free if _is_numeric(frame[c]))
        notes.append(f"inferred numeric features: {_names(numeric)}")
    else:
        numeric = tuple(c for c in columns.numeric if c in present)
    if columns.categorical is None:
        categorical = tuple(c for c in free if c not in numeric and _is_categorical(frame[c]))
        notes.append(f"inferred categorical features: {_names(categorical)}")
        notes.extend(_id_like_warnings(frame, categorical))
        notes.extend(_decimal_comma_warnings(frame, categorical))
    else:
        categorical = tuple(c for c in columns.categorical if c in present)
    ignored = [c for c in free if c not in numeric and c not in categorical]
    if ignored:
        notes.append(
            f"ignored columns (declare them in prepare.columns to use them): {_names(ignored)}"
        )
    if not numeric and not categorical:
        problems.append(
            "no feature columns left after label/id/timestamp/drop; "
            "list features in prepare.columns.categorical or prepare.columns.numeric"
        )

    choice = None
    label, about = _label_column(columns.label, present, free)
    if label is not None:
        problems.extend(_label_problems(frame[label], about=about))
        labels = _as_text(frame[label]).dropna()
        picked = _positive_class(labels, columns, about=about.removeprefix("label column "))
        if isinstance(picked, str):
            problems.append(picked)
        elif picked is not None:
            choice = picked
            notes.extend([picked.note] if picked.note else [])

    roles = _Roles(
        label=columns.label if columns.label in present else None,
        id=columns.id if columns.id in present else None,
        timestamp=columns.timestamp if columns.timestamp in present else None,
        categorical=categorical,
        numeric=numeric,
    )
    return _Draft(
        roles=roles,
        choice=choice,
        notes=tuple(notes),
        problems=tuple(problems),
        missing_columns=missing_columns,
    )


def _coerce(frame: pd.DataFrame, roles: _Roles) -> tuple[pd.DataFrame, list[str]]:
    """The roles' columns strictly typed, and every value that does not fit its role."""
    out: dict[str, pd.Series] = {}
    problems: list[str] = []
    if roles.id is not None:
        out[roles.id] = frame[roles.id].astype(str)
    if roles.timestamp is not None:
        out[roles.timestamp], found = _timestamps(frame[roles.timestamp], roles.timestamp)
        problems.extend(found)
    for column in roles.categorical:
        out[column] = _as_text(frame[column])
    for column in roles.numeric:
        out[column], found = _numbers(frame[column], column)
        problems.extend(found)
    if roles.label is not None:
        out[roles.label] = _as_text(frame[roles.label])
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True), problems


def _raise_if(problems: Sequence[str], *, source: str, found: str | None = None) -> None:
    """Raise one `DataError` naming every problem; `found` (the columns) is said once."""
    if not problems:
        return
    if len(problems) == 1:
        raise DataError(f"{source}: {problems[0]}" + (f" {found}" if found else ""))
    listed = "\n".join(f"  - {problem}" for problem in problems)
    footer = f"\n  {found}" if found else ""
    raise DataError(
        f"{source}: {len(problems)} problems; fix them all, then run again:\n{listed}{footer}"
    )


def _found(frame: pd.DataFrame, draft: _Draft) -> str | None:
    """The columns the data has, said when a declared one is missing."""
    if not draft.missing_columns:
        return None
    present = [str(c) for c in frame.columns]
    shown = _names(present[:_SHOWN_COLUMNS])
    more = f" ... ({len(present)} columns)" if len(present) > _SHOWN_COLUMNS else ""
    return f"Columns found: {shown}{more}"


def _missing_columns(columns: ColumnsParams, present: Sequence[str]) -> list[str]:
    """One problem per declared column that the data lacks, with the closest name and the fix."""
    declared = {
        "label": [columns.label],
        "id": [columns.id] if columns.id else [],
        "timestamp": [columns.timestamp] if columns.timestamp else [],
        "categorical": list(columns.categorical or ()),
        "numeric": list(columns.numeric or ()),
        "drop": list(columns.drop),
    }
    problems = []
    for role, names in declared.items():
        for name in names:
            if name in present:
                continue
            hint = difflib.get_close_matches(name, present, n=1)
            maybe = f" Did you mean '{hint[0]}'?" if hint else ""
            if role == "label":
                fix = "Set prepare.columns.label to the binary target column."
            elif role in ("id", "timestamp"):
                fix = f"Set prepare.columns.{role} to one of the columns found, or null."
            else:
                fix = f"Correct the name in prepare.columns.{role} or remove it."
            problems.append(
                f"column '{name}' (prepare.columns.{role}) is not in the data.{maybe} {fix}"
            )
    return problems


def _label_column(
    label: str, present: Sequence[str], free: Sequence[str]
) -> tuple[str | None, str]:
    """The label column, or when it is missing its closest free match, and how to call it.

    Checking the closest match now means the positive class and the label values are right in
    the same round as the name.
    """
    if label in present:
        return label, f"label column '{label}'"
    hint = difflib.get_close_matches(label, free, n=1)
    if not hint:
        return None, ""
    return hint[0], (
        f"label column '{hint[0]}' (the closest match to prepare.columns.label '{label}')"
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


def _decimal_comma_warnings(frame: pd.DataFrame, categorical: Iterable[str]) -> list[str]:
    """One warning naming the text columns that are numbers written with a decimal comma."""
    flagged: dict[str, list[str]] = {}
    for column in categorical:
        values = [str(v).strip() for v in frame[column].dropna().unique()[:_DECIMAL_COMMA_SCAN]]
        with_comma = [v for v in values if "," in v]
        if with_comma and all(re.fullmatch(rf"{_DECIMAL_COMMA}|[+-]?\d+", v) for v in values):
            flagged[column] = with_comma
    if not flagged:
        return []
    first, examples = next(iter(flagged.items()))
    shown = _names(repr(v) for v in examples[:_EXAMPLES])
    return [
        f"warning: categorical {_names(repr(c) for c in flagged)} hold(s) numbers written with a "
        f"comma ({first}: {shown}) and were read as text: if ',' is the decimal mark, set "
        "prepare.csv.decimal: ','"
    ]


def _label_problems(series: pd.Series, *, about: str) -> list[str]:
    """What makes a label column unusable: missing values, one class, more than two classes."""
    problems = []
    missing = series.isna()
    if missing.any():
        problems.append(
            f"{about} has {int(missing.sum())} missing value(s), e.g. at row(s) {_rows(missing)}; "
            "fill them or remove those rows"
        )
    classes = sorted(_as_text(series).dropna().unique())
    if len(classes) == 1:
        problems.append(
            f"{about} has a single class ('{classes[0]}'); a classifier needs examples of both "
            "classes: check the export or the label column"
        )
    if len(classes) > 2:
        problems.append(
            f"{about} has {len(classes)} classes ({_shown(classes)}); modelops trains binary "
            "classifiers: map the label to two classes"
        )
    return problems


def _positive_class(
    labels: pd.Series, columns: ColumnsParams, *, about: str
) -> _Choice | str | None:
    """The positive class of `labels` (text, no missing values), or the problem with it.

    None when there is nothing to choose and nothing wrong with the choice: the label does not
    have two classes, which `_label_problems` reports.
    """
    classes = sorted(labels.unique())
    wanted = columns.positive_label
    if isinstance(wanted, bool):
        return _boolean_class(classes, wanted, about=about)
    if wanted is not None:
        if wanted not in classes:
            return (
                f"prepare.columns.positive_label '{wanted}' is not a value of {about}; its values "
                f"are {_shown(classes)}{_class_hint(wanted, classes)}"
            )
        return _Choice(wanted, _other(classes, wanted)) if len(classes) == 2 else None
    if len(classes) != 2:
        return None
    named = [c for c in classes if c in _POSITIVE_NAMES]
    positive = named[0] if len(named) == 1 else str(labels.value_counts().idxmin())
    negative = _other(classes, positive)
    return _Choice(
        positive,
        negative,
        note=f"inferred positive class of '{labels.name}': '{positive}' (negative: "
        f"'{negative}'); set prepare.columns.positive_label to choose",
    )


def _boolean_class(classes: list[str], wanted: bool, *, about: str) -> _Choice | str | None:
    """The class a YAML boolean names: `positive_label: yes` means the label value 'yes'."""
    word = "true" if wanted else "false"
    matches = [c for c in classes if c.lower() in _BOOLEAN_SPELLINGS[wanted]]
    read_as = (
        f"prepare.columns.positive_label is the boolean {word} (YAML reads unquoted yes/no, "
        "on/off and true/false as booleans)"
    )
    if not matches:
        example = classes[0] if classes else "..."
        return (
            f"{read_as}, and no value of {about} reads as {word}; its values are "
            f"{_shown(classes)}: quote the positive class as written in the data, e.g. "
            f'positive_label: "{example}"'
        )
    if len(matches) > 1:
        return (
            f"{read_as}, and several values of {about} read as {word} ({_shown(matches)}): "
            f'quote the one you mean, e.g. positive_label: "{matches[0]}"'
        )
    if len(classes) != 2:
        return None
    positive = matches[0]
    note = (
        f"positive class of {about}: '{positive}', the value that prepare.columns.positive_label "
        f"names (YAML read it as the boolean {word})"
    )
    return _Choice(positive, _other(classes, positive), note=note)


def _class_hint(wanted: str, classes: Sequence[str]) -> str:
    """A class the user probably meant: the same up to case, or the same boolean reading."""
    same_case = [c for c in classes if c.lower() == wanted.lower()]
    reading = [
        c
        for spelled in _BOOLEAN_SPELLINGS.values()
        if wanted.lower() in spelled
        for c in classes
        if c.lower() in spelled
    ]
    hint = same_case or reading
    return f"; did you mean '{hint[0]}'?" if len(hint) == 1 else ""


def _other(classes: Sequence[str], positive: str) -> str:
    return next(c for c in classes if c != positive)


def _as_text(series: pd.Series) -> pd.Series:
    """Values as canonical text (`1.0` -> `1`), missing values kept as None."""
    uniques = series.dropna().unique()
    mapping = {value: label_text(value) for value in uniques}
    return series.map(mapping).astype(object).where(series.notna(), None)


def _numbers(series: pd.Series, column: str) -> tuple[pd.Series, list[str]]:
    """The values as float64, and what is not a number or is infinite."""
    if ptypes.is_bool_dtype(series):
        return series.astype(np.float64), []
    problems = []
    if _is_numeric(series):
        values = series.astype(np.float64)
    else:
        text = series.astype(object).where(series.notna(), None)
        stripped = text.map(lambda v: v.strip() if isinstance(v, str) else v).replace("", None)
        values = pd.to_numeric(stripped, errors="coerce").astype(np.float64)
        bad = stripped.notna() & values.isna()
        if bad.any():
            shown = stripped[bad].unique()[:_EXAMPLES]
            commas = all(re.fullmatch(_DECIMAL_COMMA, str(v)) for v in shown)
            decimal = " (for numbers written 1,5 set prepare.csv.decimal: ',')" if commas else ""
            problems.append(
                f"numeric column '{column}' has {int(bad.sum())} of {len(series)} values that are "
                f"not numbers ({_names(repr(v) for v in shown)}) at row(s) {_rows(bad)}. Fix the "
                f"data{decimal}, or list '{column}' under prepare.columns.categorical if it is a "
                "category"
            )
    infinite = np.isinf(values)
    if infinite.any():
        problems.append(
            f"numeric column '{column}' has {int(infinite.sum())} infinite value(s) at "
            f"row(s) {_rows(infinite)}; replace them with a number or leave them empty"
        )
    return values, problems


def _timestamps(series: pd.Series, column: str) -> tuple[pd.Series, list[str]]:
    """The values as naive UTC datetimes, and what does not parse or is missing."""
    problems = []
    if ptypes.is_datetime64_any_dtype(series):
        parsed = pd.to_datetime(series, utc=True)
        bad = pd.Series(False, index=series.index)
    else:
        parsed = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
        bad = series.notna() & parsed.isna()
        if bad.any():
            examples = _names(repr(v) for v in series[bad].unique()[:_EXAMPLES])
            problems.append(
                f"timestamp column '{column}' has {int(bad.sum())} value(s) that do not parse as "
                f"a date/time ({examples}) at row(s) {_rows(bad)}. Use ISO 8601 such as "
                "2024-05-01 or 2024-05-01T13:45:00Z, or unset prepare.columns.timestamp"
            )
    missing = parsed.isna() & ~bad
    if missing.any():
        problems.append(
            f"timestamp column '{column}' has {int(missing.sum())} missing value(s) at "
            f"row(s) {_rows(missing)}; fill them or unset prepare.columns.timestamp"
        )
    return parsed.dt.tz_convert(None), problems


def _rows(mask: pd.Series | npt.NDArray[np.bool_]) -> str:
    """First offending row numbers, 1-based as in a spreadsheet's data rows."""
    positions = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(p + 1) for p in positions[:_EXAMPLES])
    return shown + (f" and {len(positions) - _EXAMPLES} more" if len(positions) > _EXAMPLES else "")


def _names(items: Iterable[object]) -> str:
    return ", ".join(str(i) for i in items) or "none"


def _shown(items: Sequence[object]) -> str:
    """The first values of a possibly long list."""
    more = f" ... ({len(items)} in all)" if len(items) > _SHOWN_VALUES else ""
    return _names(items[:_SHOWN_VALUES]) + more

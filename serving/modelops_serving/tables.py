"""The table a batch run scores: found, checked against the model's inputs, read in batches.

An input is a CSV or Parquet file, a folder of them, or a partitioned (`key=value/`) Parquet
dataset, at a local path or an fsspec URL (`s3://`, `gs://`, ... with the matching package
installed, as for the model store). Before a row is scored the input's columns are checked
against the model's signature: a missing input or a column of the wrong type fails the run,
naming the column, the type found and the type wanted.

Rows are then read in record batches, so memory holds one batch at a time whatever the
input's size. Within a batch a value the model cannot take refuses its row, not the run: text
in a numeric column of a CSV file (CSV has no types, so its numbers are parsed here, the way
`prepare` read the training data), or an infinite number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from modelops_serving.artifact import Column
from modelops_serving.coded import CodedText

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
# What pandas reads as missing in a CSV file (its default `na_values`), which is how `prepare`
# read the training data: "NA" is missing there, so it is missing here.
CSV_MISSING = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
_NUMBER = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
ROW_NUMBER = "row"
"""The output's key when no id column is named: the row's position in the input (0-based)."""


class InputError(Exception):
    """The input cannot be scored at all: missing, unreadable, empty, or not the model's shape."""


@dataclass(frozen=True)
class Refused:
    """Rows of one batch that cannot be scored: positions in the batch, and why."""

    positions: npt.NDArray[np.int64]
    reasons: list[str]


@dataclass(frozen=True)
class Input:
    """An input found and checked: its files, their format, rows (when known) and fingerprint."""

    location: str
    dataset: ds.Dataset
    format: str
    files: tuple[str, ...]
    rows: int | None
    fingerprint: str
    """sha256 of each file's path, size and modification time (not its bytes: a 10 GB input is
    fingerprinted from its listing), so a rerun on the same files is recognisable."""


def open_input(location: str, columns: Sequence[Column], *, keys: Sequence[str]) -> Input:
    """Find the input at `location` and check that it holds `columns` and the `keys`."""
    filesystem, path = _filesystem(location)
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"{location}: no such file or folder; point --input at a CSV or Parquet "
                         "file, a folder of them, or a partitioned Parquet dataset")  # fmt: skip
    if info.type == pafs.FileType.File:
        found = [info]
    else:
        selector = pafs.FileSelector(path, recursive=True)
        found = sorted(
            (
                item
                for item in filesystem.get_file_info(selector)
                if item.type == pafs.FileType.File and not _hidden(item.path, path)
            ),
            key=lambda item: item.path,
        )
    kind = _format(location, [item.path for item in found])
    try:
        dataset = ds.dataset(
            [item.path for item in found],
            filesystem=filesystem,
            format=_file_format(kind, columns),
            partitioning=None if info.type == pafs.FileType.File else "hive",
            partition_base_dir=None if info.type == pafs.FileType.File else path,
        )
        rows = dataset.count_rows() if kind == "parquet" else None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{location}: cannot be read ({_first_line(exc)})") from None
    if rows == 0:
        raise InputError(f"{location}: the input has no rows; nothing to score")
    _check_schema(location, dataset.schema, columns, keys, typed=kind == "parquet")
    digest = hashlib.sha256()
    for item in found:
        digest.update(f"{item.path}\0{item.size}\0{item.mtime_ns}\n".encode())
    return Input(
        location=location,
        dataset=dataset,
        format=kind,
        files=tuple(item.path for item in found),
        rows=rows,
        fingerprint=digest.hexdigest(),
    )


def batches(source: Input, names: Sequence[str], *, rows: int) -> Iterator[pa.RecordBatch]:
    """The input's `names` columns, `rows` at a time, in file order (a rerun reads the same).

    Read on this thread: pyarrow's threaded scan decodes row groups as fast as it can, far
    ahead of the scoring (1.5 GB held after 1 million of 10 million rows); this way memory
    holds the batch being scored and the next (benchmarks/results/batch.md).
    """
    try:
        scanner = source.dataset.scanner(
            columns=list(names),
            batch_size=rows,
            batch_readahead=1,
            fragment_readahead=1,
            use_threads=False,
        )
        for batch in scanner.to_batches():
            if batch.num_rows:
                yield batch
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{source.location}: cannot be read ({_first_line(exc)})") from None


def model_columns(
    batch: pa.RecordBatch, columns: Sequence[Column]
) -> tuple[dict[str, Any], Refused]:
    """The model's inputs from a batch (numbers as float64, NaN for missing; text as CodedText,
    codes into its distinct strings) and the rows refused, each with the first reason found."""
    values: dict[str, Any] = {}
    reasons: dict[int, str] = {}
    for column in columns:
        data = batch.column(column.name)
        if column.kind == "number":
            values[column.name] = _numbers(data, column.name, reasons)
        else:
            text = data.cast(pa.string()) if not pa.types.is_string(data.type) else data
            values[column.name] = _coded(text)
    positions = np.array(sorted(reasons), dtype=np.int64)
    return values, Refused(positions, [reasons[int(p)] for p in positions])


def _coded(text: pa.Array) -> CodedText:
    """A text column dictionary-encoded by Arrow: codes (-1 for null) into its distinct values."""
    encoded = pc.dictionary_encode(text)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
    values = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    return CodedText(codes, values)


def _numbers(data: pa.Array, name: str, reasons: dict[int, str]) -> npt.NDArray[np.float64]:
    """A column as float64: text parsed (what does not parse refuses its row), infinity refused."""
    if pa.types.is_string(data.type) or pa.types.is_large_string(data.type):
        parses = pc.fill_null(pc.match_substring_regex(data, _NUMBER), True)
        for position in np.flatnonzero(~parses.to_numpy(zero_copy_only=False)):
            reasons.setdefault(
                int(position), f"'{name}' is not a number: {_excerpt(data[position])}"
            )
        data = pc.if_else(parses, pc.utf8_trim_whitespace(data), None)
    numbers = data.cast(pa.float64()).to_numpy(zero_copy_only=False)
    numbers = np.asarray(numbers, dtype=np.float64)
    for position in np.flatnonzero(np.isinf(numbers)):
        reasons.setdefault(int(position), f"'{name}' is {numbers[position]!r}: not a finite number")
    return numbers


def _excerpt(value: pa.Scalar) -> str:
    text = str(value.as_py())
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _check_schema(
    location: str,
    schema: pa.Schema,
    columns: Sequence[Column],
    keys: Sequence[str],
    *,
    typed: bool,
) -> None:
    """Every input and key is there, each input of a type the model takes (CSV: read as text,
    its numbers parsed per row)."""
    names = set(schema.names)
    missing = [c.name for c in columns if c.name not in names]
    missing_keys = [key for key in keys if key not in names]
    problems = []
    if missing:
        problems.append(f"missing model input(s) {', '.join(map(repr, missing))}")
    if missing_keys:
        problems.append(f"missing id column(s) {', '.join(map(repr, missing_keys))} (--id-column)")
    for column in columns:
        if (
            typed
            and column.name in names
            and not _fits(schema.field(column.name).type, column.kind)
        ):
            found = schema.field(column.name).type
            problems.append(f"'{column.name}' is {found}, the model takes a {column.kind}")
    if problems:
        raise InputError(
            f"{location} does not fit the model's inputs: {'; '.join(problems)}. The model "
            f"takes {', '.join(f'{c.name} ({c.kind})' for c in columns)}"
        )


def _fits(found: pa.DataType, kind: str) -> bool:
    if pa.types.is_dictionary(found):
        found = found.value_type
    if pa.types.is_null(found):
        return True
    types = pa.types
    if kind == "number":
        return any(
            bool(test(found)) for test in (types.is_integer, types.is_floating, types.is_decimal)
        )
    return bool(types.is_string(found)) or bool(types.is_large_string(found))


def _file_format(kind: str, columns: Sequence[Column]) -> ds.FileFormat:
    if kind == "parquet":
        return ds.ParquetFileFormat()
    # Every model input is read as text: numbers are parsed per row (`_numbers`), so one bad
    # value refuses its row instead of failing the whole file.
    convert = pyarrow.csv.ConvertOptions(
        column_types={column.name: pa.string() for column in columns},
        null_values=list(CSV_MISSING),
        strings_can_be_null=True,
    )
    return ds.CsvFileFormat(convert_options=convert)


def _format(location: str, paths: Sequence[str]) -> str:
    if not paths:
        raise InputError(f"{location}: the folder holds no files; nothing to score")
    kinds = {_kind(path) for path in paths}
    if None in kinds:
        odd = next(path for path in paths if _kind(path) is None)
        raise InputError(
            f"{odd}: not a CSV ({', '.join(CSV_SUFFIXES)}) or Parquet "
            f"({', '.join(PARQUET_SUFFIXES)}) file; move it out of {location}"
        )
    if len(kinds) > 1:
        raise InputError(f"{location} mixes CSV and Parquet files: score each kind on its own")
    return str(kinds.pop())


def _kind(path: str) -> str | None:
    lowered = path.lower()
    if lowered.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lowered.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def _hidden(path: str, base: str) -> bool:
    """Files Spark and pyarrow skip: `_SUCCESS`, `.crc` files, anything under `_` or `.`."""
    relative = path[len(base) :].lstrip("/")
    return any(part.startswith(("_", ".")) for part in relative.split("/"))


def _filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in location or location.startswith("file://"):
        path = Path(location.removeprefix("file://")).resolve()
        return pafs.LocalFileSystem(), path.as_posix()
    try:
        import fsspec

        filesystem, path = fsspec.core.url_to_fs(location)
    except (ImportError, ValueError) as exc:
        raise InputError(f"{location}: cannot open this URL here ({_first_line(exc)})") from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(filesystem)), path


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

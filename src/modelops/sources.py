"""Where the raw table comes from: the built-in generator, a local file, or an http(s) URL.

CSV files are read with the delimiter `prepare.csv` names, or one sniffed from the first lines
(`csv.Sniffer`, choosing among `,` `;` tab `|`); a read that still yields a single column is
refused with the delimiter the header looks separated by.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import io
import lzma
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Literal, Protocol

import pandas as pd
import pyarrow

from modelops.errors import DataError
from modelops.params import CSV_DELIMITERS, SYNTHETIC_SOURCE, CsvParams, PrepareParams
from modelops.synth import generate_churn

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".csv.zst")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
# Enough lines for the sniffer to see a consistent pattern, little enough to read in a blink.
_SAMPLE_BYTES = 64 * 1024
_SHOWN_HEADER_CHARACTERS = 80
_DEFAULT_CSV = CsvParams()


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Table:
    """A raw table, a human-readable name for where it came from, and what was decided."""

    frame: pd.DataFrame
    name: str
    notes: tuple[str, ...] = ()


def load_source(params: PrepareParams, *, root: Path) -> Table:
    """Load the raw table named by `params.source`.

    Relative paths are resolved against `root`, the project directory.
    """
    if params.source == SYNTHETIC_SOURCE:
        rows, seed = params.synthetic.rows, params.synthetic.seed
        name = f"synthetic churn data ({rows} rows, seed {seed})"
        return Table(frame=generate_churn(rows, seed=seed), name=name)
    if is_url(params.source):
        return read_table(params.source, fmt=params.format, csv_params=params.csv)
    path = Path(params.source)
    location = str(path if path.is_absolute() else root / path)
    table = read_table(location, fmt=params.format, csv_params=params.csv)
    return replace(table, name=params.source)


def is_url(source: str) -> bool:
    """Whether `source` is an http(s) URL rather than a file path."""
    return source.startswith(("http://", "https://"))


def read_table(
    source: str,
    *,
    fmt: Literal["auto", "csv", "parquet"] = "auto",
    csv_params: CsvParams = _DEFAULT_CSV,
) -> Table:
    """Read a CSV or Parquet table from a path or URL, with errors that say how to fix them."""
    kind = fmt if fmt != "auto" else _format_from_name(source)
    if not is_url(source):
        path = Path(source)
        if not path.is_file():
            raise DataError(
                f"{source}: file not found. Set prepare.source in params.yaml to an existing CSV "
                "or Parquet file (relative to the project root), an http(s) URL, or 'synthetic'"
            )
        if path.stat().st_size == 0:
            raise DataError(f"{source}: the file is empty (0 bytes); export the data again")
    if kind == "parquet":
        return Table(frame=_read(source, kind, lambda: pd.read_parquet(source)), name=source)
    sample = _sample(source, encoding=csv_params.encoding)
    delimiter, notes = _choose_delimiter(sample, csv_params, name=Path(source).name)
    header = sample.split("\n", 1)[0].rstrip("\r")
    frame = _read(
        source,
        kind,
        lambda: pd.read_csv(
            source,
            sep=delimiter,
            decimal=csv_params.decimal,
            encoding=csv_params.encoding,
            low_memory=False,
        ),
        hint=_delimiter_hint(header, delimiter),
    )
    if frame.shape[1] == 1:
        raise DataError(_one_column(source, str(frame.columns[0]), delimiter))
    return Table(frame=frame, name=source, notes=notes)


def sniff_delimiter(sample: str, *, candidates: str = "".join(CSV_DELIMITERS)) -> str | None:
    """The delimiter `csv.Sniffer` finds in `sample` among `candidates`, or None."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=candidates).delimiter
    except csv.Error:
        return None


def show_delimiter(delimiter: str) -> str:
    """A delimiter as a user writes it in params.yaml."""
    return "tab" if delimiter == "\t" else f"'{delimiter}'"


def _choose_delimiter(sample: str, params: CsvParams, *, name: str) -> tuple[str, tuple[str, ...]]:
    """The delimiter to read with, and a note when it was sniffed as something other than ','."""
    if params.delimiter != "auto":
        return params.delimiter, ()
    candidates = "".join(d for d in CSV_DELIMITERS if d != params.decimal)
    sniffed = sniff_delimiter(sample, candidates=candidates) or candidates[0]
    if sniffed == ",":
        return sniffed, ()
    return sniffed, (
        f"read {name} as {show_delimiter(sniffed)}-separated (sniffed from its first lines); "
        "set prepare.csv.delimiter to choose",
    )


def _sample(source: str, *, encoding: str) -> str:
    """The first whole lines of a (possibly compressed) local or remote text file.

    Empty when they cannot be read here: pandas then reports what is wrong with the file.
    """
    try:
        with _opened(source) as raw, _decompressed(raw, source) as stream:
            head = stream.read(_SAMPLE_BYTES) if stream is not None else b""
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile, IndexError):
        return ""
    text = head.decode(encoding, errors="replace")
    if len(head) == _SAMPLE_BYTES and "\n" in text:
        text = text[: text.rindex("\n")]
    return text


@contextlib.contextmanager
def _opened(source: str) -> Iterator[IO[bytes]]:
    if not is_url(source):
        with Path(source).open("rb") as file:
            yield file
        return
    try:
        response = urllib.request.urlopen(source)
    except urllib.error.URLError as exc:
        raise DataError(f"{source}: download failed ({exc}); check the URL and network") from None
    with response:
        yield response


@contextlib.contextmanager
def _decompressed(raw: IO[bytes], source: str) -> Iterator[_Readable | None]:
    """`raw` decompressed as its name says; None when no standard module reads it (zstd)."""
    name = source.split("?", 1)[0].lower()
    if name.endswith(".gz"):
        with gzip.GzipFile(fileobj=raw) as unzipped:
            yield unzipped
    elif name.endswith(".bz2"):
        with bz2.BZ2File(raw) as unpacked:
            yield unpacked
    elif name.endswith(".xz"):
        with lzma.LZMAFile(raw) as unpacked:
            yield unpacked
    elif name.endswith(".zip"):
        seekable = raw if raw.seekable() else io.BytesIO(raw.read())
        with zipfile.ZipFile(seekable) as archive, archive.open(archive.namelist()[0]) as member:
            yield member
    elif name.endswith(".zst"):
        yield None
    else:
        yield raw


def _read(
    source: str, kind: str, read: Callable[[], pd.DataFrame], *, hint: str = ""
) -> pd.DataFrame:
    """Run one pandas read, turning its failures into errors that say what to do."""
    try:
        frame = read()
    except pd.errors.EmptyDataError:
        raise DataError(f"{source}: the file is empty: no header, no rows") from None
    except urllib.error.URLError as exc:
        raise DataError(f"{source}: download failed ({exc}); check the URL and network") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{source}: not valid {exc.encoding} text (byte {exc.start}); set "
            "prepare.csv.encoding to the file's encoding, e.g. latin-1 or cp1252"
        ) from None
    except (pd.errors.ParserError, pyarrow.ArrowException, OSError) as exc:
        fix = hint or "check the file, or set prepare.format"
        raise DataError(f"{source}: cannot be read as {kind} ({str(exc).strip()}); {fix}") from None
    if frame.empty:
        raise DataError(f"{source}: the file has no data rows (columns: {_names(frame.columns)})")
    return frame


def _likely_delimiter(header: str, *, used: str) -> str | None:
    """The candidate that splits `header` into more columns than `used` does, if any."""
    counts = {d: header.count(d) for d in CSV_DELIMITERS}
    likely = max(counts, key=lambda d: counts[d])
    return likely if likely != used and counts[likely] > counts[used] else None


def _delimiter_hint(header: str, used: str) -> str:
    """How to fix a parse failure when the header looks separated by another delimiter."""
    likely = _likely_delimiter(header, used=used)
    if likely is None:
        return ""
    return (
        f"the first line looks separated by {show_delimiter(likely)}, not "
        f"{show_delimiter(used)}: set prepare.csv.delimiter: {show_delimiter(likely)}"
    )


def _one_column(source: str, header: str, delimiter: str) -> str:
    """Why a CSV read gave one column: the classic symptom of the wrong delimiter."""
    shown = header if len(header) <= _SHOWN_HEADER_CHARACTERS else header[:77] + "..."
    read_as = (
        f"{source}: read as one column named '{shown}' (delimiter {show_delimiter(delimiter)})"
    )
    likely = _likely_delimiter(header, used=delimiter)
    if likely is None:
        return (
            f"{read_as}, and no delimiter among , ; tab | splits its header; a table needs a "
            "label and at least one feature column: check that the file is the right export"
        )
    return (
        f"{read_as}; it looks separated by {show_delimiter(likely)} "
        f"({header.count(likely) + 1} columns): set prepare.csv.delimiter: {show_delimiter(likely)}"
    )


def _format_from_name(source: str) -> Literal["csv", "parquet"]:
    name = source.split("?", 1)[0].lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    raise DataError(
        f"{source}: cannot tell the format from the name; set prepare.format to 'csv' or 'parquet'"
    )


def _names(columns: pd.Index) -> str:
    return ", ".join(str(c) for c in columns) or "none"

"""Where the raw table comes from: the built-in generator, a local file, or an http(s) URL."""

from __future__ import annotations

import urllib.error
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow

from modelops.errors import DataError
from modelops.params import SYNTHETIC_SOURCE, PrepareParams
from modelops.synth import generate_churn

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".csv.zst")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def load_source(params: PrepareParams, *, root: Path) -> tuple[pd.DataFrame, str]:
    """Load the raw table named by `params.source` and a human-readable name for it.

    Relative paths are resolved against `root`, the project directory.
    """
    if params.source == SYNTHETIC_SOURCE:
        rows, seed = params.synthetic.rows, params.synthetic.seed
        return generate_churn(rows, seed=seed), f"synthetic churn data ({rows} rows, seed {seed})"
    if is_url(params.source):
        return read_table(params.source, fmt=params.format), params.source
    path = Path(params.source)
    return read_table(str(path if path.is_absolute() else root / path), fmt=params.format), str(
        params.source
    )


def is_url(source: str) -> bool:
    """Whether `source` is an http(s) URL rather than a file path."""
    return source.startswith(("http://", "https://"))


def read_table(source: str, *, fmt: Literal["auto", "csv", "parquet"] = "auto") -> pd.DataFrame:
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
    try:
        frame = pd.read_csv(source, low_memory=False) if kind == "csv" else pd.read_parquet(source)
    except pd.errors.EmptyDataError:
        raise DataError(f"{source}: the file is empty: no header, no rows") from None
    except urllib.error.URLError as exc:
        raise DataError(f"{source}: download failed ({exc}); check the URL and network") from None
    except (pd.errors.ParserError, pyarrow.ArrowException, UnicodeDecodeError, OSError) as exc:
        raise DataError(
            f"{source}: cannot be read as {kind} ({exc}); check the file, or set prepare.format"
        ) from None
    if frame.empty:
        raise DataError(f"{source}: the file has no data rows (columns: {_names(frame.columns)})")
    return frame


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

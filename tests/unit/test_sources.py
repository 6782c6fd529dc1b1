"""Loading the raw table: CSV and Parquet files, http(s) URLs, and clear errors for bad files."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from modelops.errors import DataError
from modelops.params import PrepareParams
from modelops.sources import load_source, read_table
from modelops.synth import generate_churn


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return generate_churn(50, seed=5)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep test output clean."""


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on loopback serving `tmp_path`."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("name", ["data.csv", "data.parquet", "data.csv.gz"])
def test_a_local_file_is_read_whatever_its_format(
    tmp_path: Path, sample: pd.DataFrame, name: str
) -> None:
    path = tmp_path / name
    if ".csv" in name:
        sample.to_csv(path, index=False)
    else:
        sample.to_parquet(path, index=False)
    frame = read_table(str(path))
    assert len(frame) == 50
    assert list(frame.columns) == list(sample.columns)


@pytest.mark.parametrize("name", ["data.csv", "data.parquet"])
def test_a_file_is_downloaded_from_an_http_url(
    http_root: tuple[Path, str], sample: pd.DataFrame, name: str
) -> None:
    root, base = http_root
    if name.endswith(".csv"):
        sample.to_csv(root / name, index=False)
    else:
        sample.to_parquet(root / name, index=False)
    frame = read_table(f"{base}/{name}")
    assert frame["customer_id"].tolist() == sample["customer_id"].tolist()


def test_a_url_that_answers_404_is_a_clear_error(http_root: tuple[Path, str]) -> None:
    _, base = http_root
    with pytest.raises(DataError, match="download failed"):
        read_table(f"{base}/missing.csv")


def test_a_relative_source_is_resolved_against_the_project_root(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    (tmp_path / "data" / "raw").mkdir(parents=True)
    sample.to_csv(tmp_path / "data" / "raw" / "customers.csv", index=False)
    params = PrepareParams.model_validate(
        {"source": "data/raw/customers.csv", "columns": {"label": "churned"}}
    )
    frame, name = load_source(params, root=tmp_path)
    assert len(frame) == 50
    assert name == "data/raw/customers.csv"


def test_a_missing_file_says_how_to_point_at_the_data(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"file not found\. Set prepare.source"):
        read_table(str(tmp_path / "nope.csv"))


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"the file is empty \(0 bytes\)"):
        read_table(str(tmp_path / "empty.csv"))


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text("a,b,churned\n")
    with pytest.raises(DataError, match=r"no data rows \(columns: a, b, churned\)"):
        read_table(str(tmp_path / "header.csv"))


def test_a_corrupt_parquet_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"definitely not parquet")
    with pytest.raises(DataError, match="cannot be read as parquet"):
        read_table(str(tmp_path / "broken.parquet"))


def test_an_unknown_extension_asks_for_the_format(tmp_path: Path, sample: pd.DataFrame) -> None:
    path = tmp_path / "export.txt"
    sample.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"set prepare\.format"):
        read_table(str(path))
    assert len(read_table(str(path), fmt="csv")) == 50

"""Loading the raw table: CSV and Parquet files, http(s) URLs, and clear errors for bad files."""

from __future__ import annotations

import functools
import gzip
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from modelops.errors import DataError
from modelops.params import CsvParams, PrepareParams
from modelops.sources import load_source, read_table, sniff_delimiter
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
    frame = read_table(str(path)).frame
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
    frame = read_table(f"{base}/{name}").frame
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
    table = load_source(params, root=tmp_path)
    assert len(table.frame) == 50
    assert table.name == "data/raw/customers.csv"


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
    assert len(read_table(str(path), fmt="csv").frame) == 50


# Delimiters: sniffed among , ; tab |, or set in prepare.csv; the wrong one is named.


def _write_text(path: Path, frame: pd.DataFrame, *, sep: str, decimal: str = ".") -> None:
    text = frame.to_csv(index=False, sep=sep, decimal=decimal)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as file:
            file.write(text)
    else:
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("sep", "shown"), [(";", "';'"), ("\t", "tab"), ("|", "'|'")], ids=["semicolon", "tab", "pipe"]
)
def test_a_csv_with_another_delimiter_is_sniffed_and_said_so(
    tmp_path: Path, sample: pd.DataFrame, sep: str, shown: str
) -> None:
    path = tmp_path / "export.csv"
    _write_text(path, sample, sep=sep)
    table = read_table(str(path))
    assert list(table.frame.columns) == list(sample.columns)
    assert table.frame["age"].dtype == "float64"
    assert table.notes == (
        f"read export.csv as {shown}-separated (sniffed from its first lines); "
        "set prepare.csv.delimiter to choose",
    )


def test_a_comma_separated_file_is_read_without_a_note(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    sample.to_csv(tmp_path / "plain.csv", index=False)
    assert read_table(str(tmp_path / "plain.csv")).notes == ()


def test_a_compressed_semicolon_file_is_sniffed_after_decompressing(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    path = tmp_path / "export.csv.gz"
    _write_text(path, sample, sep=";")
    assert list(read_table(str(path)).frame.columns) == list(sample.columns)


def test_a_semicolon_file_at_a_url_is_sniffed(
    http_root: tuple[Path, str], sample: pd.DataFrame
) -> None:
    root, base = http_root
    _write_text(root / "export.csv", sample, sep=";")
    table = read_table(f"{base}/export.csv")
    assert table.frame["customer_id"].tolist() == sample["customer_id"].tolist()


def test_decimal_commas_are_read_as_numbers_when_prepare_csv_says_so(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    path = tmp_path / "european.csv"
    _write_text(path, sample, sep=";", decimal=",")
    assert "," in path.read_text().splitlines()[1], "the file really has decimal commas"
    table = read_table(str(path), csv_params=CsvParams(decimal=","))
    assert table.frame["monthly_charges"].dtype == "float64"
    assert table.frame["monthly_charges"].tolist() == pytest.approx(
        sample["monthly_charges"].tolist()
    )


def test_a_wrong_delimiter_that_gives_one_column_says_which_one_to_set(
    tmp_path: Path, sample: pd.DataFrame
) -> None:
    path = tmp_path / "export.csv"
    _write_text(path, sample.iloc[:, :3], sep=";")
    with pytest.raises(DataError) as caught:
        read_table(str(path), csv_params=CsvParams(delimiter=","))
    assert str(caught.value) == (
        f"{path}: read as one column named 'customer_id;snapshot_at;plan' (delimiter ','); "
        "it looks separated by ';' (3 columns): set prepare.csv.delimiter: ';'"
    )


def test_a_file_of_one_column_with_no_delimiter_at_all_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("churned\n0\n1\n")
    with pytest.raises(DataError, match=r"read as one column named 'churned' \(delimiter ','\), "):
        read_table(str(path))
    with pytest.raises(DataError, match=r"no delimiter among , ; tab \| splits its header"):
        read_table(str(path))


def test_a_parse_failure_with_the_wrong_delimiter_names_the_right_one(tmp_path: Path) -> None:
    # Given a ';' file whose numbers have decimal commas, read with ',': the rows then split
    # into different numbers of fields and pandas fails; the error says which delimiter to set.
    path = tmp_path / "export.csv"
    path.write_text("a;b;y\n1,5;2;0\n3,5;4,5;1,5\n")
    with pytest.raises(DataError) as caught:
        read_table(str(path), csv_params=CsvParams(delimiter=","))
    message = str(caught.value)
    assert "cannot be read as csv" in message
    assert "the first line looks separated by ';', not ',': set prepare.csv.delimiter: ';'" in (
        message
    )


def test_a_file_in_another_encoding_names_the_encoding_key(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("city;y\nK\xf6ln;0\nM\xfcnchen;1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not valid utf-8 text .*set prepare\.csv\.encoding"):
        read_table(str(path))
    table = read_table(str(path), csv_params=CsvParams(encoding="latin-1"))
    assert table.frame["city"].tolist() == ["Köln", "München"]


def test_load_source_passes_the_csv_section_and_keeps_the_notes(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("a\tb\ty\n1\t2\t0\n3\t4\t1\n")
    params = PrepareParams.model_validate(
        {"source": "data/x.csv", "csv": {"delimiter": "tab"}, "columns": {"label": "y"}}
    )
    table = load_source(params, root=tmp_path)
    assert list(table.frame.columns) == ["a", "b", "y"]
    assert table.notes == (), "a delimiter set in params is not a guess: nothing to report"


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("a;b;c\n1,5;2,3;x\n4,5;1,0;y\n", ";"),
        ("a,b,c\n1,x;y,3\n2,z,4\n", ","),
        ("id\tname\n1\tfoo, bar\n2\tbaz\n", "\t"),
        ('name,desc\n"x","a;b;c"\n"y","d;e"\n', ","),
        ("single\n1\n2\n", None),
    ],
)
def test_sniff_delimiter_chooses_among_the_usual_ones(sample: str, expected: str | None) -> None:
    assert sniff_delimiter(sample) == expected

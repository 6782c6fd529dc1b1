"""The sampled request log: never more rows than the rate asks, each a JSON line of the row."""

from __future__ import annotations

import io
import json
import math
import random
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modelops_serving.request_log import LOGGED_VALUE_CHARS, RequestLog, from_settings


@pytest.mark.parametrize("rate", [0.001, 0.01, 0.1, 1 / 3, 0.5, 1.0])
def test_the_log_holds_the_rate_of_rows_never_more(rate: float, tmp_path: Path) -> None:
    target = tmp_path / "requests.jsonl"
    log = RequestLog(str(target), rate, model_version="v1")
    sizes = random.Random(7).choices(range(1, 60), k=400)
    written = sum(log.rows({"x": list(range(size))}, [0.5] * size) for size in sizes)
    rows = sum(sizes)
    assert written <= math.floor(rows * rate) + 1
    assert written >= math.floor(rows * rate)
    assert len(target.read_text().splitlines()) == written


def test_a_line_is_the_row_with_missing_values_as_null(tmp_path: Path) -> None:
    target = tmp_path / "requests.jsonl"
    log = RequestLog(str(target), 1.0, model_version="v7")
    columns: dict[str, Any] = {
        "age": np.array([31.0, np.nan]),
        "plan": ["basic", None],
        "n": [np.int64(3), 4],
    }
    assert log.rows(columns, [0.25, 0.75]) == 2
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["features"] for line in lines] == [
        {"age": 31, "plan": "basic", "n": 3},
        {"age": None, "plan": None, "n": 4},
    ]
    assert [line["score"] for line in lines] == [0.25, 0.75]
    assert {line["model_version"] for line in lines} == {"v7"}
    assert lines[0]["at"].endswith("Z")


def test_a_huge_client_string_is_logged_cut_with_how_much_was_cut(tmp_path: Path) -> None:
    """Given a row whose categorical value is a 5 MB string (any string is a valid category),
    when it is logged, then its line holds the value's first LOGGED_VALUE_CHARS characters and
    says how many more there were; a value at the cap is logged whole."""
    target = tmp_path / "requests.jsonl"
    huge = "x" * 5_000_000
    at_cap = "y" * LOGGED_VALUE_CHARS
    RequestLog(str(target), 1.0, model_version="v").rows({"plan": [huge, at_cap]}, [0.5, 0.5])
    lines = target.read_text().splitlines()
    assert max(len(line) for line in lines) < 1000, "one short line per row"
    cut, whole = (json.loads(line)["features"]["plan"] for line in lines)
    more = 5_000_000 - LOGGED_VALUE_CHARS
    assert cut == "x" * LOGGED_VALUE_CHARS + f"…[{more} more characters]"
    assert whole == at_cap


def test_two_workers_append_whole_lines_to_one_file(tmp_path: Path) -> None:
    target = tmp_path / "requests.jsonl"
    first, second = (RequestLog(str(target), 1.0, model_version="v") for _ in range(2))
    for turn in range(50):
        (first if turn % 2 else second).rows({"x": [turn] * 20}, [0.1] * 20)
    lines = target.read_text().splitlines()
    assert len(lines) == 1000
    assert all(json.loads(line)["features"]["x"] >= 0 for line in lines)


def test_stdout_gets_the_lines_for_a_log_collector() -> None:
    printed = io.StringIO()
    with redirect_stdout(printed):
        RequestLog("stdout", 1.0, model_version="v").rows({"x": [1]}, [0.9])
    assert json.loads(printed.getvalue())["features"] == {"x": 1}


def test_settings_off_by_default_and_a_bad_rate_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELOPS_REQUEST_LOG_SAMPLE_RATE", raising=False)
    assert from_settings("", "", model_version="v") is None
    assert from_settings("stdout", 0.0, model_version="v") is None
    assert from_settings("", 0.2, model_version="v").target == "stdout"  # type: ignore[union-attr]
    for bad in ("lots", 1.5, -0.1):
        with pytest.raises(ValueError, match="request_log_sample_rate"):
            from_settings("", bad, model_version="v")
    monkeypatch.setenv("MODELOPS_REQUEST_LOG_SAMPLE_RATE", "0.5")
    assert from_settings("", "", model_version="v").rate == 0.5  # type: ignore[union-attr]

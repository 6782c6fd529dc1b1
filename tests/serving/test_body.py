"""The body rules in process: the size limit's derivation, nesting and integers (test_http.py
sends the same bodies to the real server)."""

from __future__ import annotations

import json

import pytest
from modelops_serving.body import (
    BYTES_PER_VALUE,
    MAX_DEPTH,
    OVERHEAD_BYTES,
    body_limit,
    depth,
    loads,
)
from modelops_serving.validation import RequestError


def test_the_limit_is_the_row_limit_of_feedback_rows_at_a_bound_per_value() -> None:
    # 14 inputs, 2 class scores and a truth per row: the default model at 1000 rows.
    assert body_limit(1000, inputs=14, classes=2) == 1000 * 17 * BYTES_PER_VALUE + OVERHEAD_BYTES
    assert body_limit(1000, inputs=14, classes=2) == 881_536
    assert body_limit(2000, inputs=14, classes=2) > body_limit(1000, inputs=14, classes=2)


def test_the_largest_pretty_printed_feedback_fits_under_the_limit() -> None:
    """Given 1000 rows of 14 values each as long as a double can be written, with the answer
    and truths, printed with two spaces of indentation, then the body fits."""
    longest = -2.2250738585072014e-308
    feedback = {
        "request": {
            "data": {
                "names": [f"feature_{i:02d}" for i in range(14)],
                "ndarray": [[longest] * 14] * 1000,
            }
        },
        "response": {
            "data": {"names": ["0", "1"], "ndarray": [[longest, longest]] * 1000},
            "meta": {"tags": {"model_hash": "0" * 64, "prediction_id": "1." + "0" * 70}},
        },
        "truth": {"data": {"ndarray": [["1"]] * 1000}},
    }
    assert len(json.dumps(feedback, indent=2)) <= body_limit(1000, inputs=14, classes=2)


def test_nesting_counts_arrays_and_objects_not_brackets_in_strings() -> None:
    assert depth({"a": [[1], {"b": []}]}) == 4
    assert depth(["[[[[", '"[[[', "]]]"]) == 1
    assert depth([]) == 1
    assert depth("plain") == 0
    assert depth(loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)) == MAX_DEPTH


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 600, 100_000])
def test_a_body_nested_past_the_limit_is_refused(levels: int) -> None:
    # 600: seldon-core's protobuf conversion failed on it; 100,000: past Python's own parser.
    with pytest.raises(RequestError) as refused:
        loads(("[" * levels + "]" * levels).encode())
    assert refused.value.reason == "too_deeply_nested"
    assert refused.value.message == (
        f"the body is nested more than {MAX_DEPTH} levels deep: send the documented form"
    )


@pytest.mark.parametrize("digits", [309, 400, 5000])
def test_an_integer_beyond_the_largest_double_is_refused(digits: int) -> None:
    text = f'{{"x": [{"9" * digits}]}}'
    with pytest.raises(RequestError) as refused:
        loads(text)
    assert refused.value.reason == "number_too_large"
    assert f"an integer of {digits} digits" in refused.value.message


def test_numbers_in_range_parse_as_json_does() -> None:
    assert loads(b'{"x": [1, -2, 1e308, 0.5, null]}') == {"x": [1, -2, 1e308, 0.5, None]}
    assert loads(str(10**308)) == 10**308, "309 digits, still below the largest double"
    assert loads("1e400") == float("inf"), "a float literal out of range: the validators name it"
    with pytest.raises(json.JSONDecodeError, match="Expecting property name"):
        loads("{not json")

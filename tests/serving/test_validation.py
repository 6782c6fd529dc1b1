"""Request validation against the model's inputs: what is accepted, and what each refusal says.

How fast a refusal comes is measured over HTTP, with bodies at the size limit (test_http.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from modelops_serving.artifact import Column
from modelops_serving.validation import RequestError, to_batch

COLUMNS = (Column("plan", "string"), Column("age", "number"), Column("calls", "number"))


def _refused(payload: Any, *, max_rows: int = 10) -> RequestError:
    with pytest.raises(RequestError) as caught:
        to_batch(payload, COLUMNS, max_rows=max_rows)
    return caught.value


def test_a_valid_batch_becomes_a_typed_frame_in_the_model_order() -> None:
    batch = to_batch(
        {
            "data": {
                "names": ["age", "calls", "plan"],
                "ndarray": [[30, 2.5, "basic"], [None, 1, None]],
            }
        },
        COLUMNS,
        max_rows=10,
    )
    assert list(batch.frame.columns) == ["plan", "age", "calls"]
    assert batch.frame["plan"].tolist() == ["basic", None]
    assert batch.frame["age"].dtype == np.float64
    assert math.isnan(batch.frame["age"][1])
    assert batch.rows_with_missing == 1


def test_without_names_the_values_are_in_the_model_order() -> None:
    batch = to_batch({"data": {"ndarray": [["premium", 41, 0]]}}, COLUMNS, max_rows=10)
    assert batch.frame.iloc[0].tolist() == ["premium", 41.0, 0.0]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ([1, 2], "the request needs a 'data' object"),
        ({"nodata": 1}, "the request needs a 'data' object"),
        (
            {"data": {"tensor": {"values": [1]}}},
            "'data' needs 'ndarray' (a list of rows) (tensor not supported)",
        ),
        ({"data": {"ndarray": "rows"}}, "'data.ndarray' must be a list of rows, got str"),
        ({"data": {"ndarray": []}}, "'data.ndarray' is empty"),
        (
            {"data": {"ndarray": [["basic", 30]]}},
            "'data.ndarray[0]' has 2 values; each row needs 3 values, for plan, age, calls",
        ),
        ({"data": {"ndarray": [["basic", 30, 1], 7]}}, "'data.ndarray[1]' has int"),
        (
            {"data": {"ndarray": [["basic", "thirty", 1]]}},
            "'data.ndarray[0]['age']' must be a number or null, got 'thirty'",
        ),
        (
            {"data": {"ndarray": [["basic", True, 1]]}},
            "'data.ndarray[0]['age']' must be a number or null, got True",
        ),
        (
            {"data": {"ndarray": [[3, 30, 1]]}},
            "'data.ndarray[0]['plan']' must be a string or null, got 3",
        ),
        (
            {"data": {"ndarray": [["basic", float("nan"), 1]]}},
            "is nan: NaN and infinity are not numbers here; send null",
        ),
        (
            {"data": {"ndarray": [["basic", 30, float("-inf")]]}},
            "'data.ndarray[0]['calls']' is -inf",
        ),
        ({"data": {"ndarray": [["basic", 10**400, 1]]}}, "is too large for a number"),
        ({"data": {"names": ["plan", "age"], "ndarray": [["a", 1]]}}, "missing calls"),
        (
            {"data": {"names": ["plan", "age", "call"], "ndarray": [["a", 1, 2]]}},
            "unknown call; missing calls",
        ),
        ({"data": {"names": ["plan", "age", "age"], "ndarray": [["a", 1, 2]]}}, "repeated age"),
        (
            {"data": {"names": "plan,age,calls", "ndarray": [["a", 1, 2]]}},
            "'data.names' must be a list",
        ),
    ],
)
def test_each_bad_request_is_refused_with_the_field_and_the_fix(
    payload: Any, expected: str
) -> None:
    error = _refused(payload)
    assert error.status == 400
    assert expected in error.message, error.message


def test_a_batch_over_the_limit_is_refused_with_413() -> None:
    error = _refused({"data": {"ndarray": [["a", 1, 2]] * 11}}, max_rows=10)
    assert error.status == 413
    assert error.message == "the batch has 11 rows, over the limit of 10: split it"


def test_names_longer_than_the_inputs_are_refused_on_their_length_alone() -> None:
    # Not a string among them: nothing looked at the names beyond their count.
    error = _refused({"data": {"names": [1] * 100_000, "ndarray": [["a", 1, 2]]}})
    assert error.message == (
        "'data.names' has 100000 names, more than the model's 3 inputs. "
        "Expected, in any order: plan, age, calls"
    )


def test_names_may_not_repeat_even_when_as_many_as_the_inputs() -> None:
    error = _refused({"data": {"names": ["age", "age", "age"], "ndarray": [["a", 1, 2]]}})
    assert "missing plan, calls; repeated age" in error.message


def test_a_bad_value_is_quoted_by_an_excerpt_only() -> None:
    error = _refused({"data": {"ndarray": [["basic", "y" * 100_000, 1]]}})
    assert error.message == (f"'data.ndarray[0]['age']' must be a number or null, got '{'y' * 39}…")


def test_names_a_client_sent_are_shown_short_and_on_one_line() -> None:
    forged = "x\nERROR forged" + "z" * 100
    error = _refused({"data": {"names": ["plan", "age", forged], "ndarray": [["a", 1, 2]]}})
    assert f"unknown {repr(forged)[:40]}…; missing calls" in error.message
    assert "\n" not in error.message


def test_unsupported_data_keys_are_listed_in_the_order_sent_and_at_most_twenty() -> None:
    data = {f"k{i:06d}": 1 for i in range(50_000)}
    error = _refused({"data": data})
    assert error.message.startswith("'data' needs 'ndarray' (a list of rows) (k000000, k000001, ")
    assert "k000019 and 49980 more not supported)" in error.message

"""What the server does with an experiment's request fields before any model, in process.

The unit and covariate columns are taken out of a request (kept when the unit is also a model
input), each row gets its unit's variant (the contract's `assign`), a row without a unit goes
to stable unassigned, a unit or covariate of the wrong type is refused naming the row, and a
process counts each unit once until it forgets it (least recently seen first). The real server
is tested over HTTP in test_experiment_server.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from modelops_contract import Experiment, Variant, assign
from modelops_serving.assignment import (
    UNIT_COLUMN,
    Extras,
    UnitMemory,
    assign_rows,
    split_fields,
    subset,
)
from modelops_serving.validation import RequestError

INPUTS = frozenset({"plan", "age"})
EXPERIMENT = Experiment(
    name="offer",
    salt="offer-1",
    unit="customer_id",
    covariate="spend_before",
    variants=(
        Variant("stable", "v1", "a" * 64, "/mnt/models/stable", 50),
        Variant("b", "v2", "b" * 64, "/mnt/models/b", 50),
    ),
)


def _request(names: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"data": {"names": names, "ndarray": rows}, "meta": {"tags": {"kept": 1}}}


def test_the_fields_are_taken_out_wherever_they_are_and_the_rest_is_left_alone() -> None:
    names = ["customer_id", "plan", "spend_before", "age"]
    rows = [["c1", "basic", 10.5, 40], [7, "pro", None, 33]]
    payload, extras = split_fields(_request(names, rows), EXPERIMENT, INPUTS, max_rows=10)
    assert payload["data"] == {"names": ["plan", "age"], "ndarray": [["basic", 40], ["pro", 33]]}
    assert payload["meta"] == {"tags": {"kept": 1}}
    assert extras == Extras(units=["c1", 7], covariates=[10.5, None])
    # Last in the row, the common case: the same, by a slice.
    last = split_fields(
        _request(["plan", "age", "customer_id"], [["basic", 40, "c1"]]),
        EXPERIMENT,
        INPUTS,
        max_rows=10,
    )
    assert last == (
        {
            "data": {"names": ["plan", "age"], "ndarray": [["basic", 40]]},
            "meta": {"tags": {"kept": 1}},
        },
        Extras(units=["c1"]),
    )


def test_a_unit_that_is_a_model_input_is_used_and_kept() -> None:
    request = _request(["plan", "age"], [["basic", 40], ["pro", 33]])
    by_plan = Experiment(name="offer", salt="s", unit="plan", variants=EXPERIMENT.variants)
    payload, extras = split_fields(request, by_plan, INPUTS, max_rows=10)
    assert payload is request
    assert extras.units == ["basic", "pro"]


@pytest.mark.parametrize(
    "payload",
    [
        {"data": {"ndarray": [["basic", 40, "c1"]]}},  # no names: no unit
        {"data": {"names": ["plan", "age"], "ndarray": [["basic", 40]]}},  # no unit field
        {"data": {"names": ["customer_id"], "ndarray": []}},  # no rows: to_batch refuses
        {"data": "rows"},
        [],
    ],
)
def test_a_request_without_the_fields_or_unreadable_is_returned_as_it_is(payload: Any) -> None:
    assert split_fields(payload, EXPERIMENT, INPUTS, max_rows=10) == (payload, Extras())


@pytest.mark.parametrize(
    ("names", "rows", "reason", "message"),
    [
        (
            ["customer_id", "plan", "age"],
            [["c1", "basic"]],
            "wrong_row_length",
            "'data.ndarray[0]' has 2 values; each row needs 3 values",
        ),
        (
            ["customer_id", "plan", "customer_id"],
            [["c", "b", "c"]],
            "repeated_name",
            "'data.names' repeats customer_id",
        ),
    ],
)
def test_a_request_whose_fields_cannot_be_read_is_refused(
    names: list[str], rows: list[list[Any]], reason: str, message: str
) -> None:
    with pytest.raises(RequestError) as refused:
        split_fields(_request(names, rows), EXPERIMENT, INPUTS, max_rows=10)
    assert refused.value.reason == reason
    assert message in refused.value.message


def test_each_row_gets_its_units_variant_and_rows_without_one_go_to_stable() -> None:
    units: list[Any] = [f"c{i}" for i in range(40)] + [None, float("nan"), "", 42, 42.0]
    rows = assign_rows(EXPERIMENT, Extras(units=units), rows=len(units))
    names = [EXPERIMENT.variants[p].name for p in rows.positions.tolist()]
    expected = [assign(f"c{i}", salt="offer-1", split=EXPERIMENT.split) for i in range(40)]
    assert names[:40] == expected
    assert {"stable", "b"} <= set(expected), "both variants among 40 units"
    assert names[40:43] == ["stable"] * 3
    assert rows.assigned.tolist() == [True] * 40 + [False] * 3 + [True, True]
    assert names[43] == names[44], "42 and 42.0 are one unit"
    assert rows.texts[40:] == [None, None, None, "42", "42"]
    assert len(rows.units) == 42
    absent = assign_rows(EXPERIMENT, Extras(), rows=3)
    assert absent.positions.tolist() == [0, 0, 0]
    assert not absent.assigned.any()


def test_the_signed_rows_change_when_a_unit_does() -> None:
    one = assign_rows(EXPERIMENT, Extras(units=["c1", "c2"]), rows=2)
    other = assign_rows(EXPERIMENT, Extras(units=["c1", "c3"]), rows=2)
    columns = {"age": np.array([1.0, 2.0])}
    assert one.signed(columns)[UNIT_COLUMN] != other.signed(columns)[UNIT_COLUMN]
    assert set(one.signed(columns)) == {"age", UNIT_COLUMN}


@pytest.mark.parametrize(
    ("extras", "reason", "message"),
    [
        (
            Extras(units=["c1", [1]]),
            "unsupported_unit",
            "'data.ndarray[1]['customer_id']' is [1]: a unit is a string or a number, not a list",
        ),
        (Extras(units=[True]), "unsupported_unit", "not a boolean"),
        (Extras(units=[{"id": 1}]), "unsupported_unit", "not an object"),
        (
            Extras(units=["c1"], covariates=["12"]),
            "covariate_not_a_number",
            "'data.ndarray[0]['spend_before']' is '12': the covariate is a number",
        ),
        (Extras(units=["c1"], covariates=[float("inf")]), "covariate_not_a_number", "is inf"),
    ],
)
def test_a_unit_or_covariate_of_the_wrong_type_is_refused_naming_the_row(
    extras: Extras, reason: str, message: str
) -> None:
    with pytest.raises(RequestError) as refused:
        assign_rows(EXPERIMENT, extras, rows=len(extras.units or ()))
    assert (refused.value.status, refused.value.reason) == (400, reason)
    assert message in refused.value.message


def test_covariates_are_numbers_and_null_is_none() -> None:
    rows = assign_rows(EXPERIMENT, Extras(units=["a", "b"], covariates=[None, -3]), rows=2)
    assert rows.covariates is not None
    assert np.isnan(rows.covariates[0])
    assert rows.covariates[1] == -3.0


def test_rows_of_a_variant_are_taken_in_order() -> None:
    columns = {"age": np.array([1.0, 2.0, 3.0]), "plan": ["a", "b", "c"]}
    picked = subset(columns, np.array([2, 0]))
    assert picked["age"].tolist() == [3.0, 1.0]
    assert picked["plan"] == ["c", "a"]
    assert subset(columns, None) is columns


def test_a_process_counts_a_unit_once_until_it_is_the_least_recently_seen_of_a_full_set() -> None:
    memory = UnitMemory(sets=1, ways=3)
    assert [memory.first_time(k) for k in (1, 2, 3)] == [True, True, True]
    assert memory.first_time(1) is False  # 1 is now the most recently seen
    assert memory.first_time(4) is True  # the set is full: 2, the least recently seen, goes
    assert memory.first_time(1) is False
    assert memory.first_time(3) is False
    assert memory.first_time(2) is True
    big = UnitMemory()
    assert big.capacity == 1_048_576
    keys = [int(k) for k in np.random.default_rng(1).integers(0, 2**63, 5000)]
    assert all(big.first_time(k) for k in keys)
    assert not any(big.first_time(k) for k in keys)

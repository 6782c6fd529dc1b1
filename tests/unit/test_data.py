"""Schema resolution, strict coercion, splitting and fingerprints of the data module."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelops.data import Schema, coerce, fingerprint, resolve_schema, split, validate
from modelops.errors import DataError
from modelops.params import ColumnsParams, SplitParams
from modelops.synth import CATEGORICAL, ID, LABEL, NUMERIC, TIMESTAMP, generate_churn


def _columns(**overrides: object) -> ColumnsParams:
    values: dict[str, object] = {"label": LABEL, "id": ID, "timestamp": TIMESTAMP}
    values.update(overrides)
    return ColumnsParams.model_validate(values)


def _schema(**overrides: object) -> Schema:
    values: dict[str, object] = {
        "label": "y",
        "positive_label": "1",
        "negative_label": "0",
        "categorical": ("colour",),
        "numeric": ("size",),
    }
    values.update(overrides)
    return Schema(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return generate_churn(3000, seed=7)


def test_given_the_churn_data_when_roles_are_unset_then_they_are_inferred_and_reported(
    churn: pd.DataFrame,
) -> None:
    resolved = resolve_schema(churn, _columns(), source="churn")
    assert resolved.schema.numeric == NUMERIC
    assert resolved.schema.categorical == CATEGORICAL
    assert resolved.schema.positive_label == "1"
    notes = "\n".join(resolved.notes)
    assert "inferred numeric features: age, tenure_months" in notes
    assert "inferred positive class of 'churned': '1'" in notes


def test_given_declared_features_then_other_columns_are_ignored_and_said_so(
    churn: pd.DataFrame,
) -> None:
    resolved = resolve_schema(
        churn, _columns(categorical=["plan"], numeric=["age"]), source="churn"
    )
    assert resolved.schema.features == ("plan", "age")
    assert any(note.startswith("ignored columns") and "region" in note for note in resolved.notes)


def test_given_a_missing_label_column_then_the_error_suggests_the_closest_name(
    churn: pd.DataFrame,
) -> None:
    with pytest.raises(DataError, match=r"column 'churn' \(prepare.columns.label\) is not in the"):
        resolve_schema(churn, _columns(label="churn"), source="churn.csv")
    with pytest.raises(DataError, match="Did you mean 'churned'"):
        resolve_schema(churn, _columns(label="churn"), source="churn.csv")


def test_given_an_identifier_left_as_a_feature_then_a_warning_says_so() -> None:
    frame = pd.DataFrame({"ref": [f"r{i}" for i in range(300)], "y": [0, 1] * 150})
    resolved = resolve_schema(frame, ColumnsParams(label="y"), source="f")
    assert any("'ref' has 300 distinct values" in note for note in resolved.notes)


def test_given_only_label_and_keys_then_there_are_no_features() -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "y": [0, 1]})
    with pytest.raises(DataError, match="no feature columns left"):
        resolve_schema(frame, ColumnsParams(label="y", id="id"), source="f")


@pytest.mark.parametrize(
    ("labels", "positive"),
    [
        ([0, 1, 0, 0], "1"),
        ([True, False, False, False], "True"),
        (["no", "yes", "no", "no"], "yes"),
        (["stay", "churn", "stay", "stay"], "churn"),  # neither name is positive: the rarer one
    ],
)
def test_the_positive_class_is_inferred_sensibly(labels: list[object], positive: str) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": labels})
    resolved = resolve_schema(frame, ColumnsParams(label="y"), source="f")
    assert resolved.schema.positive_label == positive


def test_given_a_positive_label_that_is_not_a_value_then_the_values_are_listed() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
    with pytest.raises(
        DataError, match="positive_label 'c' is not a value of 'y'; its values are a, b"
    ):
        resolve_schema(frame, ColumnsParams(label="y", positive_label="c"), source="f")


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([1, 1, 1], "has a single class"),
        (["a", "b", "c"], "has 3 classes"),
        ([1, None, 0], r"has 1 missing value\(s\), e.g. at row\(s\) 2"),
    ],
)
def test_given_an_unusable_label_then_it_is_refused(labels: list[object], message: str) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": labels})
    with pytest.raises(DataError, match=message):
        resolve_schema(frame, ColumnsParams(label="y"), source="f")


def test_coerce_types_every_role_and_keeps_missing_values_missing() -> None:
    frame = pd.DataFrame(
        {
            "colour": ["red", None, 3, 2.0],
            "size": ["1.5", " 2 ", "", None],
            "y": [1.0, 0.0, 1.0, 0.0],
        }
    )
    out = coerce(frame, _schema(), source="f")
    assert out["colour"].tolist() == ["red", None, "3", "2"]
    assert out["size"].dtype == np.float64
    assert out["size"].tolist()[:2] == [1.5, 2.0]
    assert out["size"].isna().tolist() == [False, False, True, True]
    assert out["y"].tolist() == ["1", "0", "1", "0"]


def test_given_text_in_a_numeric_column_then_the_values_and_rows_are_named() -> None:
    frame = pd.DataFrame(
        {"colour": ["a"] * 4, "size": ["1", "big", "3", "huge"], "y": [0, 1, 0, 1]}
    )
    with pytest.raises(DataError) as caught:
        coerce(frame, _schema(), source="data.csv")
    message = str(caught.value)
    assert "numeric column 'size' has 2 of 4 values that are not numbers" in message
    assert "'big', 'huge'" in message
    assert "row(s) 2, 4" in message
    assert "prepare.columns.categorical" in message, "says how to fix it"


def test_given_infinity_in_a_numeric_column_then_it_is_refused() -> None:
    frame = pd.DataFrame({"colour": ["a", "b"], "size": [1.0, np.inf], "y": [0, 1]})
    with pytest.raises(DataError, match=r"1 infinite value\(s\) at row\(s\) 2"):
        coerce(frame, _schema(), source="f")


def test_given_timestamps_in_mixed_formats_then_they_parse_to_naive_utc() -> None:
    frame = pd.DataFrame(
        {
            "t": ["2024-05-01", "2024-05-01T12:00:00Z", "2024-05-02 08:30:00+02:00"],
            "colour": ["a", "b", "a"],
            "size": [1.0, 2.0, 3.0],
            "y": [0, 1, 0],
        }
    )
    out = coerce(frame, _schema(timestamp="t"), source="f")
    assert out["t"].tolist() == [
        pd.Timestamp("2024-05-01 00:00:00"),
        pd.Timestamp("2024-05-01 12:00:00"),
        pd.Timestamp("2024-05-02 06:30:00"),
    ]


def test_given_a_timestamp_that_does_not_parse_then_the_value_and_row_are_named() -> None:
    frame = pd.DataFrame(
        {"t": ["2024-05-01", "yesterday"], "colour": ["a", "b"], "size": [1.0, 2.0], "y": [0, 1]}
    )
    with pytest.raises(DataError, match=r"'t' has 1 value\(s\) that do not parse .*'yesterday'"):
        coerce(frame, _schema(timestamp="t"), source="f")


def test_given_a_missing_timestamp_then_it_is_refused() -> None:
    frame = pd.DataFrame(
        {"t": ["2024-05-01", None], "colour": ["a", "b"], "size": [1.0, 2.0], "y": [0, 1]}
    )
    with pytest.raises(DataError, match=r"'t' has 1 missing value\(s\)"):
        coerce(frame, _schema(timestamp="t"), source="f")


def _prepared(rows: int = 3000) -> tuple[pd.DataFrame, Schema]:
    raw = generate_churn(rows, seed=3)
    schema = resolve_schema(raw, _columns(), source="s").schema
    return coerce(raw, schema, source="s"), schema


def test_a_stratified_split_keeps_the_label_balance_and_every_row() -> None:
    frame, schema = _prepared()
    train, test = split(frame, schema, SplitParams(test_fraction=0.25, seed=1))
    assert len(test) == 750
    assert len(train) + len(test) == len(frame)
    rate = (frame[LABEL] == "1").mean()
    assert (test[LABEL] == "1").mean() == pytest.approx(rate, abs=0.002)
    assert set(train[ID]).isdisjoint(test[ID])


def test_a_time_split_puts_the_latest_rows_in_test() -> None:
    frame, schema = _prepared()
    train, test = split(frame, schema, SplitParams(strategy="time", test_fraction=0.2))
    assert train[TIMESTAMP].max() < test[TIMESTAMP].min()
    assert len(test) == pytest.approx(600, abs=2)


def test_given_a_time_split_with_one_class_in_test_then_it_is_refused() -> None:
    frame = pd.DataFrame(
        {
            "t": pd.date_range("2024-01-01", periods=10, freq="D"),
            "colour": ["a"] * 10,
            "size": np.arange(10.0),
            "y": ["0", "1", "0", "1", "0", "1", "0", "0", "0", "0"],
        }
    )
    with pytest.raises(DataError, match="the test set has 2 rows and only the class"):
        split(frame, _schema(timestamp="t"), SplitParams(strategy="time", test_fraction=0.2))


def test_given_too_few_rows_of_a_class_then_the_stratified_split_says_so() -> None:
    frame = pd.DataFrame({"colour": ["a"] * 5, "size": np.arange(5.0), "y": ["0"] * 4 + ["1"]})
    with pytest.raises(DataError, match="cannot split 5 rows by label"):
        split(frame, _schema(), SplitParams())


def test_the_fingerprint_changes_with_any_value_and_with_nothing_else() -> None:
    frame, _ = _prepared(500)
    assert fingerprint(frame) == fingerprint(frame.copy())
    changed = frame.copy()
    changed["age"] = changed["age"].where(changed.index != 0, changed["age"] + 1)
    assert fingerprint(changed) != fingerprint(frame)
    assert fingerprint(frame.rename(columns={"age": "years"})) != fingerprint(frame)


# Every problem at once: a new source is fixed in one round, not one error per run.


def _error(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(DataError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return str(caught.value)


def test_given_a_new_source_with_four_problems_then_one_error_lists_all_four(
    churn: pd.DataFrame,
) -> None:
    # Given the label, id and timestamp named as in another export, and a positive class that
    # the label does not have; when resolved; then every one is listed with what was found.
    columns = _columns(label="churn", id="cust_id", timestamp="snapshot", positive_label="yes")
    message = _error(validate, churn, columns, source="bank.csv")
    assert message.startswith("bank.csv: 4 problems; fix them all, then run again:\n"), message
    lines = message.splitlines()
    assert len([line for line in lines if line.startswith("  - ")]) == 4, message
    assert (
        "column 'churn' (prepare.columns.label) is not in the data. Did you mean 'churned'? "
        "Set prepare.columns.label" in message
    )
    assert (
        "column 'cust_id' (prepare.columns.id) is not in the data. Did you mean 'customer_id'? "
        "Set prepare.columns.id to one of the columns found, or null." in message
    )
    assert (
        "column 'snapshot' (prepare.columns.timestamp) is not in the data. "
        "Did you mean 'snapshot_at'?" in message
    )
    assert (
        "prepare.columns.positive_label 'yes' is not a value of 'churned' (the closest match to "
        "prepare.columns.label 'churn'); its values are 0, 1" in message
    ), "the label's actual values, checked on the column the user most likely meant"
    assert lines[-1].startswith("  Columns found: customer_id, snapshot_at, plan"), lines[-1]
    assert message.count("Columns found") == 1, "the columns are listed once"


def test_given_problems_in_values_of_several_columns_then_they_are_all_reported() -> None:
    # Given a label with a missing value, text in a numeric column, an unparseable timestamp
    # and infinity in another numeric column: all four are independent and all are reported.
    frame = pd.DataFrame(
        {
            "t": ["2024-05-01", "someday", "2024-05-03", "2024-05-04"],
            "colour": ["a", "b", "a", "b"],
            "size": ["1", "big", "3", "4"],
            "weight": [1.0, np.inf, 2.0, 3.0],
            "y": [0, 1, None, 1],
        }
    )
    columns = ColumnsParams(label="y", timestamp="t", numeric=("size", "weight"))
    message = _error(validate, frame, columns, source="f.csv")
    assert "f.csv: 4 problems" in message, message
    assert "label column 'y' has 1 missing value(s), e.g. at row(s) 3" in message
    assert "timestamp column 't' has 1 value(s) that do not parse" in message
    assert "numeric column 'size' has 1 of 4 values that are not numbers ('big')" in message
    assert "numeric column 'weight' has 1 infinite value(s) at row(s) 2" in message
    assert "Columns found" not in message, "no column is missing"


def test_given_a_single_class_label_and_a_missing_feature_then_both_are_reported() -> None:
    frame = pd.DataFrame({"size": ["1", "x"], "y": [1, 1]})
    columns = ColumnsParams(label="y", numeric=("size", "colour"))
    message = _error(validate, frame, columns, source="f")
    assert "f: 3 problems" in message, message
    assert "column 'colour' (prepare.columns.numeric) is not in the data" in message
    assert "Correct the name in prepare.columns.numeric or remove it" in message
    assert "label column 'y' has a single class ('1')" in message
    assert "numeric column 'size' has 1 of 2 values that are not numbers ('x')" in message


def test_coerce_alone_also_reports_every_column_at_once() -> None:
    frame = pd.DataFrame({"colour": ["a", "b"], "size": ["one", np.inf], "y": ["0", None]})
    message = _error(coerce, frame, _schema(), source="f")
    assert "f: 4 problems" in message, message
    assert "missing value(s)" in message
    assert "has a single class ('0')" in message, "what is left once the gap is filled"
    assert "not numbers ('one')" in message
    assert "infinite value(s)" in message


def test_given_many_columns_then_the_columns_found_are_shortened() -> None:
    frame = pd.DataFrame({f"c{i}": [0, 1] for i in range(60)})
    message = _error(resolve_schema, frame, ColumnsParams(label="target"), source="f")
    assert "Columns found: c0, c1," in message
    assert "... (60 columns)" in message
    assert "c59" not in message


def test_given_a_missing_label_without_a_close_match_then_no_values_are_checked() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "z": [0, 1]})
    message = _error(
        resolve_schema, frame, ColumnsParams(label="outcome", positive_label="yes"), source="f"
    )
    assert "column 'outcome' (prepare.columns.label) is not in the data." in message
    assert "positive_label" not in message, "no candidate column to check the value against"


def test_validate_returns_the_schema_and_the_typed_frame_when_all_is_well(
    churn: pd.DataFrame,
) -> None:
    resolved, frame = validate(churn, _columns(), source="churn")
    assert resolved.schema == resolve_schema(churn, _columns(), source="churn").schema
    assert frame.equals(coerce(churn, resolved.schema, source="churn"))


# positive_label as a YAML boolean: `positive_label: yes` means the label value 'yes'.


@pytest.mark.parametrize(
    ("labels", "wanted", "positive"),
    [
        (["yes", "no", "no", "yes"], True, "yes"),
        (["Yes", "No", "No", "No"], True, "Yes"),
        (["y", "n", "n", "n"], True, "y"),
        (["on", "off", "off", "on"], True, "on"),
        (["on", "off", "off", "on"], False, "off"),
        (["TRUE", "FALSE", "FALSE", "TRUE"], True, "TRUE"),
        ([True, False, False, False], True, "True"),
        ([1, 0, 0, 0], True, "1"),
        ([1.0, 0.0, 0.0, 0.0], False, "0"),
        (["no", "yes", "yes", "yes"], False, "no"),
    ],
)
def test_a_boolean_positive_label_names_the_class_that_reads_as_it(
    labels: list[object], wanted: bool, positive: str
) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": labels})
    resolved = resolve_schema(frame, ColumnsParams(label="y", positive_label=wanted), source="f")
    assert resolved.schema.positive_label == positive
    assert resolved.schema.negative_label != positive
    note = next(n for n in resolved.notes if n.startswith("positive class"))
    assert f"'{positive}', the value that prepare.columns.positive_label names" in note
    assert f"YAML read it as the boolean {'true' if wanted else 'false'}" in note


def test_given_a_boolean_positive_label_and_labels_that_are_not_booleans_then_it_says_quote() -> (
    None
):
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": ["churn", "stay"]})
    message = _error(
        resolve_schema, frame, ColumnsParams(label="y", positive_label=True), source="f"
    )
    assert "prepare.columns.positive_label is the boolean true" in message
    assert "YAML reads unquoted yes/no, on/off and true/false as booleans" in message
    assert "no value of 'y' reads as true; its values are churn, stay" in message
    assert (
        'quote the positive class as written in the data, e.g. positive_label: "churn"' in message
    )


def test_given_a_boolean_that_two_label_values_read_as_then_it_is_ambiguous() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": ["yes", "y"]})
    message = _error(
        resolve_schema, frame, ColumnsParams(label="y", positive_label=True), source="f"
    )
    assert "several values of 'y' read as true (y, yes)" in message


@pytest.mark.parametrize(
    ("wanted", "labels", "hint"),
    [("Yes", ["yes", "no"], "did you mean 'yes'?"), ("true", ["1", "0"], "did you mean '1'?")],
)
def test_given_a_text_positive_label_that_nearly_matches_then_the_class_is_suggested(
    wanted: str, labels: list[str], hint: str
) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": labels})
    message = _error(
        resolve_schema, frame, ColumnsParams(label="y", positive_label=wanted), source="f"
    )
    assert f"positive_label '{wanted}' is not a value of 'y'" in message
    assert hint in message


# Decimal commas: numbers written 1,5 are not silently read as categories.


def test_given_numbers_with_decimal_commas_then_inference_warns_to_set_the_decimal() -> None:
    frame = pd.DataFrame(
        {"price": ["1,5", "2,25", "3", None], "rate": ["0,1"] * 4, "y": [0, 1, 0, 1]}
    )
    resolved = resolve_schema(frame, ColumnsParams(label="y"), source="f")
    assert resolved.schema.categorical == ("price", "rate")
    (warning,) = [n for n in resolved.notes if "comma" in n]
    assert warning.startswith(
        "warning: categorical 'price', 'rate' hold(s) numbers written with a comma "
        "(price: '1,5', '2,25')"
    ), warning
    assert "set prepare.csv.decimal: ','" in warning


def test_given_text_categories_then_no_decimal_comma_warning() -> None:
    frame = pd.DataFrame({"city": ["Paris, FR", "Rome, IT"], "y": [0, 1]})
    notes = resolve_schema(frame, ColumnsParams(label="y"), source="f").notes
    assert not any("decimal" in note for note in notes), notes


def test_given_decimal_commas_in_a_declared_numeric_column_then_the_fix_names_the_decimal() -> None:
    frame = pd.DataFrame({"colour": ["a", "b"], "size": ["1,5", "2,5"], "y": [0, 1]})
    message = _error(coerce, frame, _schema(), source="f")
    assert "values that are not numbers ('1,5', '2,5')" in message
    assert "for numbers written 1,5 set prepare.csv.decimal: ','" in message

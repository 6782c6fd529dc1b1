"""The model pipelines: every kind trains, and missing or unseen values are handled alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from modelops.data import Schema, coerce, features, resolve_schema
from modelops.errors import ModelopsError
from modelops.model import build_pipeline, size_warnings
from modelops.params import ColumnsParams, ModelParams, TrainParams
from modelops.synth import ID, LABEL, TIMESTAMP, generate_churn

KINDS = ("hist_gradient_boosting", "random_forest", "logistic_regression")


@pytest.fixture(scope="module")
def dataset() -> tuple[pd.DataFrame, Schema]:
    raw = generate_churn(3000, seed=11)
    columns = ColumnsParams(label=LABEL, id=ID, timestamp=TIMESTAMP)
    schema = resolve_schema(raw, columns, source="s").schema
    return coerce(raw, schema, source="s"), schema


def _fit(kind: str, frame: pd.DataFrame, schema: Schema) -> object:
    params = TrainParams.model_validate({"seed": 0, "model": {"kind": kind}})
    return build_pipeline(schema, params).fit(features(frame, schema), frame[schema.label])


@pytest.mark.parametrize("kind", KINDS)
def test_every_model_kind_learns_better_than_chance(
    kind: str, dataset: tuple[pd.DataFrame, Schema]
) -> None:
    frame, schema = dataset
    model = _fit(kind, frame, schema)
    proba = model.predict_proba(features(frame, schema))  # type: ignore[attr-defined]
    positive = list(model.classes_).index("1")  # type: ignore[attr-defined]
    is_positive = frame[schema.label] == "1"
    assert proba[is_positive, positive].mean() > proba[~is_positive, positive].mean() + 0.1


@pytest.mark.parametrize("kind", KINDS)
def test_none_and_nan_categories_give_the_same_prediction(
    kind: str, dataset: tuple[pd.DataFrame, Schema]
) -> None:
    frame, schema = dataset
    model = _fit(kind, frame, schema)
    row = features(frame, schema).head(1)
    as_none, as_nan, unseen = row.copy(), row.copy(), row.copy()
    as_none["region"] = None
    as_nan["region"] = np.nan
    unseen["plan"] = "platinum"
    predict = model.predict_proba  # type: ignore[attr-defined]
    np.testing.assert_allclose(predict(as_none), predict(as_nan))
    assert np.isfinite(predict(unseen)).all(), "an unseen category still gets a prediction"


def test_given_native_categorical_false_then_the_trees_split_category_codes_as_numbers(
    dataset: tuple[pd.DataFrame, Schema],
) -> None:
    # Given train.model.native_categorical: false (what an ONNX export needs), when trained,
    # then no feature is categorical to the classifier, and the model still learns.
    frame, schema = dataset
    params = TrainParams.model_validate(
        {"seed": 0, "model": {"kind": "hist_gradient_boosting", "native_categorical": False}}
    )
    model = build_pipeline(schema, params).fit(features(frame, schema), frame[schema.label])
    classifier = model.named_steps["classifier"]
    assert isinstance(classifier, HistGradientBoostingClassifier)
    assert classifier.is_categorical_ is None, "no native categorical splits"
    assert (
        _fit("hist_gradient_boosting", frame, schema)
        .named_steps[  # type: ignore[attr-defined]
            "classifier"
        ]
        .is_categorical_.any()
    ), "the default keeps them"


# Small data: warnings that name the param and a value, from scikit-learn's own rules.


def _model(kind: str = "hist_gradient_boosting", **values: object) -> ModelParams:
    return TrainParams.model_validate({"model": {"kind": kind, **values}}).model


def test_given_24_training_rows_then_hist_gradient_boosting_cannot_split_and_says_so() -> None:
    # Given 24 rows (5 of the rarer class): early stopping holds out ceil(0.1 * 24) = 3, so the
    # trees fit 21 rows, fewer than 2 * min_samples_leaf (40): every tree would be one leaf.
    warnings = size_warnings(_model(), class_rows={"0": 19, "1": 5})
    leaf, stopping = warnings
    assert leaf.startswith("train.model.min_samples_leaf is 20, but the trees fit 21 rows (3 of")
    assert "about 4 of class '1'" in leaf
    assert "the model predicts one probability for every row" in leaf
    assert leaf.endswith("Set train.model.min_samples_leaf: 2")
    assert "validation loss on 3 rows" in stopping
    assert stopping.endswith(
        "Set train.model.early_stopping: false (training then runs max_iter rounds)"
    )


def test_given_240_training_rows_then_only_early_stopping_is_too_small() -> None:
    # Given 58 of 240 rows in the rarer class: leaves of 20 fit, but the 24 validation rows hold
    # about 6 of that class; a validation fraction of 0.18 would hold 10.
    warnings = size_warnings(_model(), class_rows={"0": 182, "1": 58})
    assert len(warnings) == 1, warnings
    assert "about 6 of class '1': fewer than 10" in warnings[0]
    assert warnings[0].endswith(", or train.model.validation_fraction: 0.18")


def test_given_enough_rows_or_no_early_stopping_then_there_is_nothing_to_say() -> None:
    big = {"0": 1280, "1": 320}
    assert size_warnings(_model(), class_rows=big) == ()
    plain = _model(early_stopping=False, min_samples_leaf=20)
    assert size_warnings(plain, class_rows={"0": 182, "1": 58}) == ()
    linear = _model("logistic_regression")
    assert size_warnings(linear, class_rows={"0": 19, "1": 5}) == ()


def test_the_suggested_leaf_size_lets_the_rarer_class_fill_two_leaves() -> None:
    # Without early stopping the trees fit all 240 rows; 30 of class '1' fill two leaves of 15.
    model = _model(early_stopping=False, min_samples_leaf=20)
    (warning,) = size_warnings(model, class_rows={"0": 210, "1": 30})
    assert "that class cannot fill two leaves of 20 rows" in warning
    assert warning.endswith("Set train.model.min_samples_leaf: 15")
    relaxed = _model(early_stopping=False, min_samples_leaf=15)
    assert size_warnings(relaxed, class_rows={"0": 210, "1": 30}) == ()


def test_a_random_forest_counts_the_distinct_rows_of_its_bootstrap_samples() -> None:
    (warning,) = size_warnings(_model("random_forest"), class_rows={"0": 19, "1": 5})
    assert "bootstrap sample of about 15 distinct rows of the 24 training rows" in warning
    assert warning.endswith("Set train.model.min_samples_leaf: 1")
    assert size_warnings(_model("random_forest"), class_rows={"0": 182, "1": 58}) == ()


@pytest.mark.parametrize(
    ("values", "class_rows", "expected"),
    [
        (
            {"validation_fraction": 0.01},
            {"0": 19, "1": 5},
            "set train.model.validation_fraction between 0.05 and 0.91",
        ),
        ({}, {"0": 23, "1": 1}, "needs 2 training rows of each class, and class '1' has 1"),
    ],
)
def test_a_validation_split_scikit_learn_would_refuse_is_an_error_with_the_fix(
    values: dict[str, object], class_rows: dict[str, int], expected: str
) -> None:
    with pytest.raises(ModelopsError) as caught:
        size_warnings(_model("hist_gradient_boosting", **values), class_rows=class_rows)
    assert expected in str(caught.value)
    assert "Or set train.model.early_stopping: false" in str(caught.value)


@pytest.mark.parametrize(
    ("values", "class_rows"),
    [({"validation_fraction": 0.01}, {"0": 19, "1": 5}), ({}, {"0": 23, "1": 1})],
)
def test_those_errors_are_what_scikit_learn_itself_would_raise(
    values: dict[str, object], class_rows: dict[str, int]
) -> None:
    # The rule mirrors scikit-learn: the same sizes make its fit fail.
    rows = sum(class_rows.values())
    x = np.arange(rows, dtype=float).reshape(-1, 1)
    y = np.array([label for label, n in class_rows.items() for _ in range(n)])
    model = HistGradientBoostingClassifier(early_stopping=True, **values)
    with pytest.raises(ValueError, match=r"least populated class|should be greater or equal"):
        model.fit(x, y)


def test_a_tree_that_cannot_split_really_predicts_one_probability() -> None:
    # The consequence the warning states, checked on scikit-learn itself.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 3))
    y = np.array([1] * 5 + [0] * 19)
    x[:5, 0] += 3
    model = HistGradientBoostingClassifier(min_samples_leaf=20, early_stopping=True).fit(x, y)
    assert len(np.unique(model.predict_proba(x)[:, 1])) == 1
    assert (
        len(
            np.unique(
                HistGradientBoostingClassifier(min_samples_leaf=2).fit(x, y).predict_proba(x)[:, 1]
            )
        )
        > 1
    )

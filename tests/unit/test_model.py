"""The model pipelines: every kind trains, and missing or unseen values are handled alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelops.data import Schema, coerce, features, resolve_schema
from modelops.model import build_pipeline
from modelops.params import ColumnsParams, TrainParams
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

"""The server's scoring paths give exactly the pipeline's probabilities, fast path or not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from modelops_serving import scoring as scoring_module
from modelops_serving.scoring import scoring

from modelops.data import Schema, coerce, features, resolve_schema
from modelops.model import build_pipeline
from modelops.params import ColumnsParams, TrainParams
from modelops.synth import ID, LABEL, TIMESTAMP, generate_churn


@pytest.fixture(scope="module")
def dataset() -> tuple[pd.DataFrame, Schema]:
    raw = generate_churn(3000, seed=12)
    schema = resolve_schema(
        raw, ColumnsParams(label=LABEL, id=ID, timestamp=TIMESTAMP), source="s"
    ).schema
    return coerce(raw, schema, source="s"), schema


def _columns(frame: pd.DataFrame) -> dict[str, Any]:
    """Columns as requests give them: lists of text (None when missing), arrays of numbers."""
    return {
        name: frame[name].tolist() if frame[name].dtype == object else frame[name].to_numpy()
        for name in frame.columns
    }


def _edge_rows(inputs: pd.DataFrame) -> pd.DataFrame:
    edge = inputs.head(6).copy()
    edge.loc[edge.index[0], "plan"] = None
    edge.loc[edge.index[1], "plan"] = np.nan
    edge.loc[edge.index[2], "plan"] = "platinum"
    edge.loc[edge.index[3], "monthly_charges"] = np.nan
    edge.loc[edge.index[4], "region"] = None
    return edge


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("hist_gradient_boosting", "trees"),
        ("random_forest", "pipeline"),
        ("logistic_regression", "pipeline"),
    ],
)
def test_every_model_kind_is_scored_exactly_as_the_pipeline_scores_it(
    dataset: tuple[pd.DataFrame, Schema], kind: str, path: str
) -> None:
    frame, schema = dataset
    inputs = features(frame, schema)
    pipeline = build_pipeline(schema, TrainParams.model_validate({"model": {"kind": kind}}))
    pipeline.fit(inputs, frame[schema.label])
    chosen = scoring(pipeline, list(inputs.columns), probe=_columns(inputs.head(3)))
    assert chosen.path == path
    for rows in (inputs, _edge_rows(inputs)):
        expected, got = pipeline.predict_proba(rows), chosen.predict_proba(_columns(rows))
        if path == "trees":
            assert np.array_equal(got, expected), "the fast path is exact, to the bit"
        else:
            # A random forest sums its trees in parallel threads: the last bits vary per call.
            np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_a_fast_path_that_disagrees_with_the_pipeline_is_not_used(
    dataset: tuple[pd.DataFrame, Schema], monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, schema = dataset
    inputs = features(frame, schema)
    params = TrainParams.model_validate({"model": {"kind": "hist_gradient_boosting"}})
    pipeline = build_pipeline(schema, params).fit(inputs, frame[schema.label])
    real = scoring_module._tree_scorer

    def off_by_a_little(*args: Any, **options: Any) -> Any:
        found = real(*args, **options)
        assert found is not None, "the model is HistGradientBoosting: the tree scorer applies"
        tables, predict = found
        return tables, lambda encoded: predict(encoded) * 0.999

    monkeypatch.setattr(scoring_module, "_tree_scorer", off_by_a_little)
    chosen = scoring(pipeline, list(inputs.columns), probe=_columns(inputs.head(3)))
    assert chosen.path == "lookup", "the tree path failed its check at load"
    expected = pipeline.predict_proba(inputs.head(50))
    assert np.array_equal(chosen.predict_proba(_columns(inputs.head(50))), expected)

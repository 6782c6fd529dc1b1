"""The trained pipeline's preprocessing as `encoding.json`'s tables, and its classifier.

The template's pipelines (src/modelops/model.py) are a ColumnTransformer of a categorical part
(two missing-value imputers, then an OrdinalEncoder or a OneHotEncoder) and a numeric part
(passthrough, or a median imputer and a StandardScaler), then a classifier. The tables are read
by asking the fitted encoders themselves (`transform` on every known category and an unseen
one), so infrequent-category grouping and unknown handling come out as the pipeline does them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from modelops_contract.bundle import INPUTS_AS_FLOAT32, ONE_HOT, ORDINAL
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)


class UnsupportedModelError(Exception):
    """A pipeline whose preprocessing the tables cannot express."""


# A value no training set holds, to learn what the encoders do with an unseen category.
_UNSEEN = "\x00modelops-edge-unseen\x00"


def split(pipeline: Pipeline) -> tuple[ColumnTransformer, Any]:
    """(preprocessing, classifier) of a template pipeline."""
    steps = dict(pipeline.steps)
    if set(steps) != {"preprocess", "classifier"}:
        raise UnsupportedModelError(
            f"the pipeline's steps are {list(steps)}, not the template's preprocess and "
            "classifier (src/modelops/model.py)"
        )
    return steps["preprocess"], steps["classifier"]


def reads_float32(classifier: Any) -> bool:
    """Whether the classifier compares its inputs as float32: scikit-learn's decision trees
    (a random forest's) cast X to float32 first; HistGradientBoosting and linear models do not."""
    from sklearn.tree import BaseDecisionTree

    trees = getattr(classifier, "estimators_", None)
    return isinstance(classifier, BaseDecisionTree) or (
        isinstance(trees, list) and bool(trees) and isinstance(trees[0], BaseDecisionTree)
    )


def encoding_tables(preprocess: ColumnTransformer, classifier: Any) -> dict[str, Any]:
    """`encoding.json`: per raw column, in the order the model's inputs come out."""
    columns: list[dict[str, Any]] = []
    for name, transformer, features in preprocess.transformers_:
        if name == "remainder" or len(features) == 0:
            continue
        if name == "categorical":
            columns += _categorical(transformer, list(features))
        elif name == "numeric":
            columns += _numeric(transformer, list(features))
        else:
            raise UnsupportedModelError(
                f"unknown transformer {name!r} in the pipeline's preprocess"
            )
    width = sum(int(column.get("width", 1)) for column in columns)
    return {"columns": columns, "width": width, INPUTS_AS_FLOAT32: reads_float32(classifier)}


def _categorical(transformer: Pipeline, features: list[str]) -> list[dict[str, Any]]:
    steps = dict(transformer.steps)
    encoder = steps["encode"]
    missing = steps["missing_nan"].fill_value
    if not isinstance(encoder, OrdinalEncoder | OneHotEncoder):
        raise UnsupportedModelError(
            f"categorical encoder {type(encoder).__name__} is not supported"
        )
    widths = (
        [1] * len(features)
        if isinstance(encoder, OrdinalEncoder)
        else [int(w) for w in encoder._n_features_outs]  # scikit-learn 1.7's per-column widths
    )
    offsets = np.cumsum([0, *widths])
    columns = []
    for index, feature in enumerate(features):
        known = list(encoder.categories_[index])
        probe = np.array([[cats[0] for cats in encoder.categories_]] * (len(known) + 1), object)
        probe[:, index] = [*known, _UNSEEN]
        block = encoder.transform(probe)[:, offsets[index] : offsets[index + 1]]
        if isinstance(encoder, OrdinalEncoder):
            codes = [None if np.isnan(code) else int(code) for code in block[:, 0]]
            spec: dict[str, object] = {"encoding": ORDINAL}
        else:
            codes = [int(row.argmax()) if row.any() else None for row in np.asarray(block)]
            spec = {"encoding": ONE_HOT, "width": widths[index]}
        columns.append(
            {
                "name": feature,
                "kind": "categorical",
                **spec,
                "categories": [_json_value(value) for value in known],
                "codes": codes[:-1],
                "unknown": codes[-1],
                "missing_category": missing,
            }
        )
    return columns


def _numeric(transformer: Any, features: list[str]) -> list[dict[str, Any]]:
    # A fitted ColumnTransformer holds "passthrough" as an identity FunctionTransformer.
    if isinstance(transformer, FunctionTransformer) and transformer.func is None:
        return [{"name": f, "kind": "numeric", "impute": None, "mean": None} for f in features]
    steps = dict(transformer.steps)
    imputer, scaler = steps.get("impute"), steps.get("scale")
    if not isinstance(imputer, SimpleImputer) or not isinstance(scaler, StandardScaler):
        raise UnsupportedModelError(f"numeric preprocessing {list(steps)} is not supported")
    return [
        {
            "name": feature,
            "kind": "numeric",
            "impute": float(imputer.statistics_[index]),
            "mean": float(scaler.mean_[index]),
            "scale": float(scaler.scale_[index]),
        }
        for index, feature in enumerate(features)
    ]


def _json_value(value: object) -> object:
    """A category as JSON holds it (numpy scalars to Python's)."""
    return value.item() if isinstance(value, np.generic) else value

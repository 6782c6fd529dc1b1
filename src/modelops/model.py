"""The scikit-learn pipeline: preprocessing plus a classifier, built from `train` params.

Every step is a stock scikit-learn class, so the saved model loads anywhere the same
scikit-learn version is installed (the serving image pins it), with no project code.
"""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from modelops.data import Schema
from modelops.params import (
    HistGradientBoostingParams,
    LogisticRegressionParams,
    RandomForestParams,
    TrainParams,
)

# HistGradientBoosting bins a categorical feature into at most 255 codes; rarer categories are
# grouped as "infrequent" beyond that.
_MAX_CATEGORY_CODES = 255
_MAX_ONE_HOT_CATEGORIES = 50
MISSING_CATEGORY = "(missing)"

# Types that skops does not trust by default but that our stock pipelines contain. They were
# reviewed for this template: the model files are produced by our own training stage. A new model
# kind that needs more must add them here deliberately (training fails and names them).
REVIEWED_SKOPS_TYPES = frozenset(
    {
        "functools.partial",
        "numpy.dtype",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
        "sklearn.utils.validation.check_array",
    }
)


def build_pipeline(schema: Schema, params: TrainParams) -> Pipeline:
    """An unfitted pipeline taking the schema's feature columns, in order."""
    model = params.model
    if isinstance(model, HistGradientBoostingParams):
        return Pipeline(
            [
                ("preprocess", _native_encoding(schema)),
                ("classifier", _hist_gradient_boosting(model, schema, seed=params.seed)),
            ]
        )
    if isinstance(model, RandomForestParams):
        classifier: RandomForestClassifier | LogisticRegression = RandomForestClassifier(
            n_estimators=model.n_estimators,
            max_depth=model.max_depth,
            min_samples_leaf=model.min_samples_leaf,
            max_features=model.max_features,
            class_weight=model.class_weight,
            random_state=params.seed,
            n_jobs=-1,
        )
    elif isinstance(model, LogisticRegressionParams):
        classifier = LogisticRegression(
            C=model.C, max_iter=model.max_iter, class_weight=model.class_weight
        )
    else:  # pragma: no cover - the params union is exhaustive
        raise TypeError(f"unsupported model params: {type(model).__name__}")
    return Pipeline([("preprocess", _one_hot_encoding(schema)), ("classifier", classifier)])


def _native_encoding(schema: Schema) -> ColumnTransformer:
    """Categories as ordinal codes (unknown ones as NaN), numbers as they are."""
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        max_categories=_MAX_CATEGORY_CODES,
    )
    return ColumnTransformer(
        [
            ("categorical", _with_missing_category(encoder), list(schema.categorical)),
            ("numeric", "passthrough", list(schema.numeric)),
        ],
        verbose_feature_names_out=False,
    )


def _one_hot_encoding(schema: Schema) -> ColumnTransformer:
    """One-hot categories, median-imputed and scaled numbers."""
    categorical = _with_missing_category(
        OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            max_categories=_MAX_ONE_HOT_CATEGORIES,
            sparse_output=False,
        )
    )
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    return ColumnTransformer(
        [
            ("categorical", categorical, list(schema.categorical)),
            ("numeric", numeric, list(schema.numeric)),
        ],
        verbose_feature_names_out=False,
    )


def _with_missing_category(encoder: OrdinalEncoder | OneHotEncoder) -> Pipeline:
    """Map both kinds of missing (None from JSON or Parquet, NaN from pandas) to one category.

    scikit-learn's encoders treat None as an ordinary value and only NaN as missing, so without
    this the same row would be encoded differently depending on where it came from.
    """
    return Pipeline(
        [
            ("missing_nan", _fill(np.nan)),
            ("missing_none", _fill(None)),
            ("encode", encoder),
        ]
    )


def _fill(missing: float | None) -> SimpleImputer:
    return SimpleImputer(missing_values=missing, strategy="constant", fill_value=MISSING_CATEGORY)


def _hist_gradient_boosting(
    params: HistGradientBoostingParams, schema: Schema, *, seed: int
) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        learning_rate=params.learning_rate,
        max_iter=params.max_iter,
        max_leaf_nodes=params.max_leaf_nodes,
        max_depth=params.max_depth,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        early_stopping=params.early_stopping,
        validation_fraction=params.validation_fraction,
        n_iter_no_change=params.n_iter_no_change,
        class_weight=params.class_weight,
        categorical_features=list(range(len(schema.categorical))) or None,
        random_state=seed,
    )

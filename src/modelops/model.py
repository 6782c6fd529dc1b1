"""The scikit-learn pipeline: preprocessing plus a classifier, built from `train` params.

Every step is a stock scikit-learn class, so the saved model loads anywhere the same
scikit-learn version is installed (the serving image pins it), with no project code.
`size_warnings` says, before fitting, when the training set is too small for the params.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from modelops.data import Schema
from modelops.errors import ModelopsError
from modelops.params import (
    HistGradientBoostingParams,
    LogisticRegressionParams,
    ModelParams,
    RandomForestParams,
    TrainParams,
)

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

# HistGradientBoosting bins a categorical feature into at most 255 codes; rarer categories are
# grouped as "infrequent" beyond that.
_MAX_CATEGORY_CODES = 255
_MAX_ONE_HOT_CATEGORIES = 50
MISSING_CATEGORY = "(missing)"


class Classifier(Protocol):
    """What the project calls on a fitted classifier: the trained pipeline, a champion, or
    the gates' thresholded wrapper (scikit-learn ships no types, so this says what we rely on)."""

    @property
    def classes_(self) -> npt.NDArray[np.generic]:
        """The labels, in the order of `predict_proba`'s columns."""
        ...

    def predict_proba(self, inputs: pd.DataFrame) -> npt.NDArray[np.float64]:
        """One row of class probabilities per input row, columns in `classes_` order."""
        ...


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


# What the size checks rest on, read in scikit-learn 1.7's source:
# - HistGradientBoosting with early stopping holds out ceil(validation_fraction * n) rows with a
#   stratified train_test_split (gradient_boosting.py), which fails unless each class has 2 rows
#   and each side of the split at least one row per class (model_selection/_split.py).
# - Its grower splits a node only if it has 2 * min_samples_leaf rows (grower.py): with fewer
#   fitting rows every tree is one leaf and the model predicts one probability for every row.
# - A random forest's tree fits a bootstrap sample; rows drawn zero times get weight 0 and are
#   dropped (tree/_splitter.pyx), so min_samples_leaf counts about 1 - (1 - 1/n)^n ~ 63% of rows.
# Our own rule on top: the rarer class should fill two leaves, and early stopping should judge
# the validation loss on at least this many rows of the rarer class.
MIN_VALIDATION_ROWS_PER_CLASS = 10
_MAX_SUGGESTED_VALIDATION_FRACTION = 0.25


def size_warnings(model: ModelParams, *, class_rows: Mapping[str, int]) -> tuple[str, ...]:
    """Warnings, with the param to set and a value, when the training set is small for `model`.

    `class_rows` counts the training rows of each class. Training still runs after a warning.

    Raises:
        ModelopsError: scikit-learn would fail on this many rows (early stopping's stratified
            validation split is impossible); the message names the params that avoid it.
    """
    if len(class_rows) < 2:
        return ()
    rarer = min(class_rows, key=lambda name: (class_rows[name], name))
    rows, rarer_rows = sum(class_rows.values()), class_rows[rarer]
    if isinstance(model, HistGradientBoostingParams):
        return _hist_gradient_boosting_warnings(
            model, rows=rows, rarer=rarer, rarer_rows=rarer_rows
        )
    if isinstance(model, RandomForestParams):
        return _random_forest_warnings(model, rows=rows, rarer=rarer, rarer_rows=rarer_rows)
    return ()


def _hist_gradient_boosting_warnings(
    model: HistGradientBoostingParams, *, rows: int, rarer: str, rarer_rows: int
) -> tuple[str, ...]:
    warnings = []
    fit_rows, fit_rarer = rows, rarer_rows
    fitting = f"the trees fit the {rows} training rows, {rarer_rows} of class '{rarer}'"
    if model.early_stopping:
        validation = math.ceil(model.validation_fraction * rows)
        _check_validation_split(
            model, rows=rows, validation=validation, rarer=rarer, rarer_rows=rarer_rows
        )
        fit_rows = rows - validation
        fit_rarer = round(rarer_rows * fit_rows / rows)
        validation_rarer = rarer_rows - fit_rarer
        fitting = (
            f"the trees fit {fit_rows} rows ({validation} of the {rows} training rows are early "
            f"stopping's validation split), about {fit_rarer} of class '{rarer}'"
        )
        if validation_rarer < MIN_VALIDATION_ROWS_PER_CLASS:
            warnings.append(
                _early_stopping_warning(
                    model,
                    rows=rows,
                    validation=(validation, validation_rarer),
                    rarer=rarer,
                    rarer_rows=rarer_rows,
                )
            )
    leaf = _leaf_warning(
        model.min_samples_leaf, fitting=fitting, fit_rows=fit_rows, fit_rarer=fit_rarer
    )
    return (leaf, *warnings) if leaf else tuple(warnings)


def _check_validation_split(
    model: HistGradientBoostingParams, *, rows: int, validation: int, rarer: str, rarer_rows: int
) -> None:
    """Refuse what train_test_split would refuse, in the user's terms."""
    problems = []
    if rarer_rows < 2:
        problems.append(
            "early stopping's stratified validation split needs 2 training rows of each class, "
            f"and class '{rarer}' has {rarer_rows}"
        )
    fractions = [k / 100 for k in range(1, 100) if _split_sizes_fit(k / 100, rows)]
    if (validation < 2 or rows - validation < 2) and fractions:
        problems.append(
            f"train.model.validation_fraction {model.validation_fraction} splits the {rows} "
            f"training rows into {validation} validation and {rows - validation} fitting rows, "
            "and each side needs a row of each class: set train.model.validation_fraction "
            f"between {fractions[0]:.2f} and {fractions[-1]:.2f}"
        )
    elif validation < 2 or rows - validation < 2:
        problems.append(f"{rows} training rows are too few to hold out a validation split")
    if problems:
        raise ModelopsError(
            f"{'; '.join(problems)}. Or set train.model.early_stopping: false to fit on every "
            "training row"
        )


def _split_sizes_fit(fraction: float, rows: int) -> bool:
    """Whether both sides of scikit-learn's split of `rows` get at least one row per class."""
    validation = math.ceil(fraction * rows)
    return validation >= 2 and rows - validation >= 2


def _early_stopping_warning(
    model: HistGradientBoostingParams,
    *,
    rows: int,
    validation: tuple[int, int],
    rarer: str,
    rarer_rows: int,
) -> str:
    """`validation` holds the validation split's rows and (about) those of the rarer class."""
    validation_rows, validation_rarer = validation
    needed = math.ceil(100 * MIN_VALIDATION_ROWS_PER_CLASS / rarer_rows) / 100
    alternative = (
        f", or train.model.validation_fraction: {needed:.2f}"
        if model.validation_fraction < needed <= _MAX_SUGGESTED_VALIDATION_FRACTION
        else ""
    )
    return (
        f"train.model.early_stopping judges the validation loss on {validation_rows} rows "
        f"(validation_fraction {model.validation_fraction} of {rows} training rows), about "
        f"{validation_rarer} of class '{rarer}': fewer than {MIN_VALIDATION_ROWS_PER_CLASS}, so "
        "where training stops is down to noise. Set train.model.early_stopping: false "
        f"(training then runs max_iter rounds){alternative}"
    )


def _random_forest_warnings(
    model: RandomForestParams, *, rows: int, rarer: str, rarer_rows: int
) -> tuple[str, ...]:
    distinct = 1 - (1 - 1 / rows) ** rows
    fit_rows, fit_rarer = math.floor(rows * distinct), math.floor(rarer_rows * distinct)
    fitting = (
        f"each tree fits a bootstrap sample of about {fit_rows} distinct rows of the {rows} "
        f"training rows, about {fit_rarer} of class '{rarer}'"
    )
    leaf = _leaf_warning(
        model.min_samples_leaf, fitting=fitting, fit_rows=fit_rows, fit_rarer=fit_rarer
    )
    return (leaf,) if leaf else ()


def _leaf_warning(leaf: int, *, fitting: str, fit_rows: int, fit_rarer: int) -> str | None:
    """A warning when the rarer class cannot fill two leaves of `leaf` rows."""
    suggested = max(1, fit_rarer // 2)
    if leaf <= suggested:
        return None
    if 2 * leaf > fit_rows:
        consequence = (
            f"no tree can split them into two leaves of {leaf} rows, so the model predicts "
            "one probability for every row"
        )
    else:
        consequence = (
            f"that class cannot fill two leaves of {leaf} rows, so the trees can hardly single "
            "it out"
        )
    return (
        f"train.model.min_samples_leaf is {leaf}, but {fitting}: {consequence}. "
        f"Set train.model.min_samples_leaf: {suggested}"
    )


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
        categorical_features=(
            list(range(len(schema.categorical))) or None if params.native_categorical else None
        ),
        random_state=seed,
    )

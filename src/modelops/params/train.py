"""Section `train`: the seed and the classifier, one model per `kind`."""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from modelops.params.base import Frozen


class HistGradientBoostingParams(Frozen):
    """scikit-learn's HistGradientBoostingClassifier: fast, handles missing values natively."""

    kind: Literal["hist_gradient_boosting"]
    learning_rate: float = Field(0.1, gt=0.0, le=1.0)
    max_iter: int = Field(200, ge=1, le=10_000)
    max_leaf_nodes: int = Field(31, ge=2)
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: int = Field(20, ge=1)
    l2_regularization: float = Field(0.0, ge=0.0)
    early_stopping: bool = True
    validation_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    n_iter_no_change: int = Field(10, ge=1)
    class_weight: Literal["balanced"] | None = None
    native_categorical: bool = True
    """Split categories by set (scikit-learn's categorical_features); false treats their codes
    as numbers, which ONNX can hold (`modelops export --format onnx`; onnx/sklearn-onnx#1051)."""


class RandomForestParams(Frozen):
    """scikit-learn's RandomForestClassifier on one-hot encoded, imputed features."""

    kind: Literal["random_forest"]
    n_estimators: int = Field(200, ge=1, le=10_000)
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: int = Field(5, ge=1)
    max_features: Literal["sqrt", "log2"] | float = "sqrt"
    class_weight: Literal["balanced", "balanced_subsample"] | None = None


class LogisticRegressionParams(Frozen):
    """scikit-learn's LogisticRegression on one-hot encoded, scaled features: a simple baseline."""

    kind: Literal["logistic_regression"]
    C: float = Field(1.0, gt=0.0, description="Inverse regularisation strength.")
    max_iter: int = Field(1000, ge=1)
    class_weight: Literal["balanced"] | None = None


ModelParams: TypeAlias = Annotated[
    HistGradientBoostingParams | RandomForestParams | LogisticRegressionParams,
    Field(discriminator="kind"),
]


class TrainParams(Frozen):
    """Stage `train`: fit the preprocessing + classifier pipeline."""

    seed: int = Field(42, ge=0)
    model: ModelParams

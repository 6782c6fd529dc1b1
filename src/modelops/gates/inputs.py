"""What the checks look at: Deepchecks datasets, shared predictions, the thresholded model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
from deepchecks.tabular import Dataset

from modelops.data import Schema, features
from modelops.gates.evidence import Sizes
from modelops.gates.runner import Predictions
from modelops.io import JSONObject
from modelops.statistics import youden_j

if TYPE_CHECKING:
    from modelops.model import Classifier


class ThresholdedClassifier:
    """The trained pipeline, predicting the positive class at the project's threshold.

    Deepchecks computes recall, precision and F1 from `predict`; scikit-learn's `predict` uses
    0.5, while the project decides at `evaluate.threshold`. Probabilities pass through.
    """

    def __init__(self, model: Classifier, *, schema: Schema, threshold: float) -> None:
        self._model = model
        self.classes_ = model.classes_
        self._positive = list(model.classes_).index(schema.positive_label)
        self._labels = (schema.negative_label, schema.positive_label)
        self._threshold = threshold

    def predict_proba(self, inputs: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Class probabilities, columns in `classes_` order."""
        return self._model.predict_proba(inputs)

    def predict(self, inputs: pd.DataFrame) -> npt.NDArray[np.str_]:
        """Labels at the threshold."""
        return self.label(self.predict_proba(inputs))

    def label(self, proba: npt.NDArray[np.float64]) -> npt.NDArray[np.str_]:
        """The positive label where its probability reaches the threshold, else the negative."""
        is_positive = proba[:, self._positive] >= self._threshold
        return np.where(is_positive, self._labels[1], self._labels[0])


def datasets(train: pd.DataFrame, test: pd.DataFrame, schema: Schema) -> tuple[Dataset, Dataset]:
    """Deepchecks datasets with the schema's roles (id as index, timestamp as datetime)."""

    def dataset(frame: pd.DataFrame) -> Dataset:
        return Dataset(
            frame.loc[:, list(schema.columns)],
            label=schema.label,
            features=list(schema.features),
            cat_features=list(schema.categorical),
            index_name=schema.id,
            datetime_name=schema.timestamp,
            label_type="binary",
        )

    return dataset(train), dataset(test)


def predictions(
    model: ThresholdedClassifier, train: pd.DataFrame, test: pd.DataFrame, schema: Schema
) -> Predictions:
    """Predict once for every check."""
    train_proba = model.predict_proba(features(train, schema))
    test_proba = model.predict_proba(features(test, schema))
    return Predictions(
        train_labels=model.label(train_proba),
        test_labels=model.label(test_proba),
        train_proba=train_proba,
        test_proba=test_proba,
    )


def importance_series(ranked: list[JSONObject], schema: Schema) -> pd.Series:
    """Permutation importance from the evaluate stage, as Deepchecks wants it (sums to one)."""
    values = pd.Series({row["feature"]: max(float(row["mean"]), 0.0) for row in ranked})
    values = values.reindex(list(schema.features), fill_value=0.0)
    total = values.sum()
    return values / total if total > 0 else pd.Series(1.0 / len(values), index=values.index)


def sizes(train: pd.DataFrame, test: pd.DataFrame, schema: Schema, *, sample_rows: int) -> Sizes:
    """What the judges need to know about the rows the checks sample."""
    train_rows, test_rows = min(len(train), sample_rows), min(len(test), sample_rows)

    def positives(frame: pd.DataFrame, rows: int) -> int:
        share = float((frame[schema.label].astype(str) == schema.positive_label).mean())
        return round(share * rows) if len(frame) else 0

    categories = {
        column: int(pd.concat([train[column], test[column]]).nunique(dropna=True))
        for column in schema.categorical
    }
    singletons = {
        column: int((train[column].value_counts() == 1).sum()) for column in schema.categorical
    }
    both = pd.concat([train, test], ignore_index=True)
    counts = {column: both[column].value_counts(dropna=False) for column in schema.columns}
    distinct = {column: len(found) for column, found in counts.items()}
    top_share = {
        column: float(found.iloc[0] / len(both)) if len(found) else 1.0
        for column, found in counts.items()
    }
    is_positive = train[schema.label].astype(str) == schema.positive_label
    test_positive = test[schema.label].astype(str) == schema.positive_label
    test_labels = test_positive.to_numpy(bool)
    all_labels = np.concatenate([is_positive.to_numpy(bool), test_labels])
    separation, test_separation = {}, {}
    for column in schema.features:
        categorical = column in schema.categorical
        on_train = _one_feature_scores(train[column], test[column], test_positive, categorical)
        on_test = _one_feature_scores(test[column], train[column], is_positive, categorical)
        separation[column] = youden_j(np.concatenate([on_train, on_test]), all_labels)
        test_separation[column] = youden_j(on_test, test_labels)
    order_auc = {
        column: _order_auc(train[column], is_positive)
        for column in (schema.id, schema.timestamp)
        if column is not None and column in train.columns
    }
    return Sizes(
        train_rows=train_rows,
        test_rows=test_rows,
        train_positives=positives(train, train_rows),
        test_positives=positives(test, test_rows),
        categories=categories,
        singletons=singletons,
        distinct=distinct,
        top_share=top_share,
        order_auc=order_auc,
        train_total=len(train),
        test_total=len(test),
        separation=separation,
        test_separation=test_separation,
        all_positives=int(all_labels.sum()),
        all_negatives=int((~all_labels).sum()),
    )


def _order_auc(values: pd.Series, is_positive: pd.Series) -> float:
    """ROC AUC of a column's order (ranks, ties averaged) against the label (Mann-Whitney)."""
    known = values.notna()
    ranks = values[known].rank(method="average")
    positive = is_positive[known]
    count, total = int(positive.sum()), int(known.sum())
    if count == 0 or count == total:
        return 0.5
    return float((ranks[positive].sum() - count * (count + 1) / 2) / (count * (total - count)))


def _one_feature_scores(
    values: pd.Series, learn_from: pd.Series, learn_positive: pd.Series, categorical: bool
) -> npt.NDArray[np.float64]:
    """A one-feature model's scores for `values`: a number is its own score (NaN stays missing);
    a category scores its positive rate in the other split (`learn_from`), so that no row is
    scored by a rule it helped fit (an id-like category cannot look separating by itself)."""
    if not categorical:
        return pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
    known = learn_from.astype("string").fillna("<missing>")
    rates = learn_positive.groupby(known.to_numpy()).mean()
    prior = float(learn_positive.mean()) if len(learn_positive) else 0.0
    mapped = values.astype("string").fillna("<missing>").map(rates)
    return mapped.astype("float64").fillna(prior).to_numpy(np.float64)

"""The gate checks: which Deepchecks check, its condition from params, and what a failure means.

Chosen deliberately rather than running Deepchecks' default suites: every check here guards
against a way a model goes wrong in production, runs on a bounded sample, and reads feature
importance from the evaluate stage instead of recomputing it. Left out on purpose:
ModelInferenceTime (flaky on shared machines), BoostingOverfit (does not support
HistGradientBoosting; TrainTestPerformance covers overfitting), FeatureFeatureCorrelation
(correlated features are not a defect), and checks without conditions (reports only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import pandas as pd
from deepchecks.core import BaseCheck, ConditionCategory, ConditionResult
from deepchecks.tabular import checks

Scope: TypeAlias = Literal["each", "pair", "test"]
"""`each`: train and test separately; `pair`: train against test; `test`: the test set only."""


@dataclass(frozen=True)
class Facts:
    """What about the data decides whether a check applies, or how it is configured."""

    id_column: str | None
    has_timestamp: bool
    time_split: bool
    positive_label: str

    @property
    def has_id(self) -> bool:
        return self.id_column is not None


# Two checks grow faster than linearly with their sample, so they get a smaller one. Outlier
# detection (LoOP): 10,000 rows take 8.5 s, 3,000 rows 0.9 s, same outlier share on the default
# data. Weak segments: 8.7 s on 10,000 rows; 5,000 rows still leave 250 rows in a 5% segment.
_OUTLIER_ROWS = 3000
_SEGMENT_ROWS = 5000

Builder: TypeAlias = Callable[[Any, Facts, int], BaseCheck]
"""(gate params, facts, sample rows) -> a configured Deepchecks check with its condition(s)."""


@dataclass(frozen=True)
class CheckSpec:
    """One gate check."""

    key: str
    title: str
    meaning: str
    scope: Scope
    build: Builder
    applies: Callable[[Facts], str | None] = lambda facts: None


def _sampled(check_class: type[BaseCheck], rows: int, **options: Any) -> Any:
    return check_class(n_samples=rows, random_state=0, **options)


def _score_at_least(
    metric: str, threshold: float, *, of_class: str | None = None
) -> Callable[[pd.DataFrame], ConditionResult]:
    """A score from SingleDatasetPerformance's table at or above a threshold, value shown.

    Deepchecks 0.19's own `class_mode` condition indexes its result table by the class name and
    raises KeyError (or, for an integer, reads another class's row), so we read the table here.
    """

    def condition(scores: pd.DataFrame) -> ConditionResult:
        rows = scores[scores["Metric"] == metric]
        if of_class is not None:
            rows = rows[rows["Class"].astype(str) == of_class]
        value = float(rows["Value"].iloc[0])
        category = ConditionCategory.PASS if value >= threshold else ConditionCategory.FAIL
        label = f"{metric} of class '{of_class}'" if of_class is not None else metric
        return ConditionResult(category, f"{label}: {value:.4f}")

    return condition


def _needs_id(facts: Facts) -> str | None:
    return None if facts.has_id else "no id column (prepare.columns.id) to compare"


def _needs_id_or_timestamp(facts: Facts) -> str | None:
    if facts.has_id or facts.has_timestamp:
        return None
    return "no id or timestamp column to correlate with the label"


def _needs_time_split(facts: Facts) -> str | None:
    if not facts.has_timestamp:
        return "no timestamp column (prepare.columns.timestamp)"
    if not facts.time_split:
        return "random split: train and test dates overlap by design"
    return None


DATA: tuple[CheckSpec, ...] = (
    CheckSpec(
        "nulls",
        "Percent of nulls",
        "A column is mostly empty: a broken export, join or tracking gap.",
        "each",
        lambda p, f, n: _sampled(
            checks.PercentOfNulls, n
        ).add_condition_percent_of_nulls_not_greater_than(p.max_null_ratio),
    ),
    CheckSpec(
        "mixed_nulls",
        "Mixed nulls",
        "Missing values are spelled several ways ('', 'NA', 'null'): some are read as data.",
        "each",
        lambda p, f, n: _sampled(checks.MixedNulls, n).add_condition_different_nulls_less_equal_to(
            p.max_null_kinds
        ),
    ),
    CheckSpec(
        "mixed_types",
        "Mixed data types",
        "A column mixes numbers and text: an upstream format changed.",
        "each",
        lambda p, f, n: _sampled(
            checks.MixedDataTypes, n
        ).add_condition_rare_type_ratio_not_in_range(),
    ),
    CheckSpec(
        "duplicates",
        "Duplicate rows",
        "Many identical rows: a join or an export repeated data.",
        "each",
        # Rows repeated under new ids are duplicates too: compare content, not the id.
        lambda p, f, n: _sampled(
            checks.DataDuplicates, n, ignore_columns=[f.id_column] if f.id_column else None
        ).add_condition_ratio_less_or_equal(p.max_duplicate_ratio),
    ),
    CheckSpec(
        "conflicting_labels",
        "Conflicting labels",
        "Identical rows carry different labels: the label is noisy or features are missing.",
        "each",
        lambda p, f, n: _sampled(
            checks.ConflictingLabels, n
        ).add_condition_ratio_of_conflicting_labels_less_or_equal(p.max_conflicting_label_ratio),
    ),
    CheckSpec(
        "outliers",
        "Outlier rows",
        "Too many rows unlike the rest: corrupted values or a different population.",
        "each",
        lambda p, f, n: _sampled(
            # Its own 10 s timeout would pre-empt gates.runner.check_timeout_seconds.
            checks.OutlierSampleDetection,
            min(n, _OUTLIER_ROWS),
            timeout=86_400,
        ).add_condition_outlier_ratio_less_or_equal(p.max_outlier_ratio, p.outlier_probability),
    ),
    CheckSpec(
        "string_mismatch",
        "String mismatch",
        "A category is spelled several ways ('North', 'north '): the model sees different values.",
        "each",
        lambda p, f, n: _sampled(
            checks.StringMismatch, n
        ).add_condition_ratio_variants_less_or_equal(p.max_string_mismatch_ratio),
    ),
    CheckSpec(
        "special_characters",
        "Special characters",
        "Values made of special characters only: placeholders or encoding errors.",
        "each",
        lambda p, f, n: _sampled(
            checks.SpecialCharacters, n
        ).add_condition_ratio_of_special_characters_less_or_equal(p.max_special_character_ratio),
    ),
    CheckSpec(
        "single_value",
        "Single value",
        "A column holds one value only: it carries no information, often a broken feed.",
        "each",
        lambda p, f, n: _sampled(checks.IsSingleValue, n).add_condition_not_single_value(),
    ),
)

DRIFT: tuple[CheckSpec, ...] = (
    CheckSpec(
        "feature_drift",
        "Feature drift",
        "Features are distributed differently in test than in train: test scores will not hold.",
        "pair",
        lambda p, f, n: _sampled(checks.FeatureDrift, n).add_condition_drift_score_less_than(
            max_allowed_categorical_score=p.max_categorical_drift,
            max_allowed_numeric_score=p.max_numeric_drift,
        ),
    ),
    CheckSpec(
        "label_drift",
        "Label drift",
        "The label balance differs between train and test.",
        "pair",
        lambda p, f, n: _sampled(checks.LabelDrift, n).add_condition_drift_score_less_than(
            p.max_label_drift
        ),
    ),
    CheckSpec(
        "multivariate_drift",
        "Multivariate drift",
        "A classifier can tell test rows from train rows: the data changed as a whole.",
        "pair",
        lambda p, f, n: _sampled(
            checks.MultivariateDrift, n
        ).add_condition_overall_drift_value_less_than(p.max_multivariate_drift),
    ),
    CheckSpec(
        "new_categories",
        "New categories",
        "Test rows have categories never seen in training: the model treats them as unknown.",
        "pair",
        lambda p, f, n: _sampled(
            checks.NewCategoryTrainTest, n
        ).add_condition_new_category_ratio_less_or_equal(p.max_new_category_ratio),
    ),
    CheckSpec(
        "new_labels",
        "New labels",
        "Test rows have labels never seen in training.",
        "pair",
        lambda p, f, n: _sampled(
            checks.NewLabelTrainTest, n
        ).add_condition_new_label_ratio_less_or_equal(p.max_new_label_ratio),
    ),
    CheckSpec(
        "sample_overlap",
        "Train/test sample overlap",
        "Test rows also appear in train: test scores are inflated.",
        "pair",
        lambda p, f, n: _sampled(
            checks.TrainTestSamplesMix, n
        ).add_condition_duplicates_ratio_less_or_equal(p.max_sample_overlap_ratio),
    ),
    CheckSpec(
        "index_leakage",
        "Id overlap",
        "The same ids are in train and test: the model may memorise entities.",
        "pair",
        lambda p, f, n: _sampled(checks.IndexTrainTestLeakage, n).add_condition_ratio_less_or_equal(
            p.max_index_overlap_ratio
        ),
        _needs_id,
    ),
    CheckSpec(
        "label_correlation",
        "Feature-label correlation",
        "A feature predicts the label almost alone, or much better than in test: it leaks it.",
        "pair",
        lambda p, f, n: (
            _sampled(checks.FeatureLabelCorrelationChange, n)
            .add_condition_feature_pps_in_train_less_than(p.max_feature_label_pps)
            .add_condition_feature_pps_difference_less_than(p.max_feature_label_pps_change)
        ),
    ),
    CheckSpec(
        "identifier_leakage",
        "Identifier-label correlation",
        "The id or timestamp predicts the label: the data is ordered by outcome.",
        "pair",
        lambda p, f, n: _sampled(
            checks.IdentifierLabelCorrelation, n
        ).add_condition_pps_less_or_equal(p.max_identifier_label_pps),
        _needs_id_or_timestamp,
    ),
    CheckSpec(
        "date_leakage",
        "Date leakage",
        "Test rows are dated before the end of training: the model saw the future.",
        "pair",
        lambda p, f, n: _sampled(
            checks.DateTrainTestLeakageOverlap, n
        ).add_condition_leakage_ratio_less_or_equal(p.max_date_leakage_ratio),
        _needs_time_split,
    ),
)

MODEL: tuple[CheckSpec, ...] = (
    CheckSpec(
        "performance",
        "Test performance",
        "The model misses the agreed minimum on the test set.",
        "test",
        lambda p, f, n: (
            _sampled(checks.SingleDatasetPerformance, n, scorers=["roc_auc", "recall_per_class"])
            .add_condition(
                f"ROC AUC is at least {p.min_roc_auc:g}", _score_at_least("roc_auc", p.min_roc_auc)
            )
            .add_condition(
                f"Recall of class '{f.positive_label}' is at least {p.min_recall:g}",
                _score_at_least("recall", p.min_recall, of_class=f.positive_label),
            )
        ),
    ),
    CheckSpec(
        "simple_model",
        "Simple model comparison",
        "On the positive class, the model barely beats predicting the most frequent class.",
        "pair",
        # On the positive class only: predicting the majority class already scores well on the
        # majority class, so a gain there says little about an imbalanced problem.
        lambda p, f, n: _sampled(checks.SimpleModelComparison, n).add_condition_gain_greater_than(
            p.min_simple_model_gain, classes=[f.positive_label]
        ),
    ),
    CheckSpec(
        "weak_segments",
        "Weak segments",
        "A sizeable segment of rows gets much worse predictions than the rest.",
        "test",
        lambda p, f, n: _sampled(
            checks.WeakSegmentsPerformance, min(n, _SEGMENT_ROWS), n_top_features=5
        ).add_condition_segments_relative_performance_greater_than(p.max_weak_segment_drop),
    ),
    CheckSpec(
        "overfitting",
        "Train/test performance",
        "The model does much better on train than on test: it overfits.",
        "pair",
        lambda p, f, n: _sampled(
            checks.TrainTestPerformance, n, scorers=["roc_auc"]
        ).add_condition_train_test_relative_degradation_less_than(p.max_overfitting),
    ),
    CheckSpec(
        "prediction_drift",
        "Prediction drift",
        "Predictions are distributed differently on test than on train.",
        "pair",
        lambda p, f, n: _sampled(checks.PredictionDrift, n).add_condition_drift_score_less_than(
            p.max_prediction_drift
        ),
    ),
)

CATALOG: dict[str, tuple[CheckSpec, ...]] = {"data": DATA, "drift": DRIFT, "model": MODEL}

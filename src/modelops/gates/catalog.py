"""The gate checks: which Deepchecks check, how it is decided, and what a failure means.

Chosen deliberately rather than running Deepchecks' default suites: every check here guards
against a way a model goes wrong in production, runs on a bounded sample, and reads feature
importance from the evaluate stage instead of recomputing it. Checks that estimate a rate, a
distance or a score are decided by a judge (`judges`) with the interval the sample supports;
checks of plain facts about this data (a constant column, mixed types, an id in both sets) keep
Deepchecks' own condition. Left out on purpose: ModelInferenceTime (flaky on shared machines),
BoostingOverfit (does not support HistGradientBoosting; TrainTestPerformance covers
overfitting), FeatureFeatureCorrelation (correlated features are not a defect), and checks
without conditions (reports only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, TypeAlias

from deepchecks.core import BaseCheck
from deepchecks.tabular import checks

from modelops.gates import judges, leakage, vectorised
from modelops.gates.evidence import OUTLIER_ROWS, WHOLE_ROWS, GateParamsT, Judge, Sizes
from modelops.statistics import OTHER_SHARE

if TYPE_CHECKING:
    from modelops.params import DataGateParams, DriftGateParams, ModelGateParams

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
# detection (LoOP): `evidence.OUTLIER_ROWS`. Weak segments: 8.7 s on 10,000 rows; 5,000 rows
# still leave 250 rows in a 5% segment.
_SEGMENT_ROWS = 5000

Builder: TypeAlias = Callable[[GateParamsT, Facts, int], BaseCheck]
"""(gate params, facts, sample rows) -> a configured Deepchecks check with its condition(s)."""


@dataclass(frozen=True)
class CheckSpec(Generic[GateParamsT]):
    """One gate check.

    `judge` decides it from the check's value (its condition is then not Deepchecks'), and
    `tuned_by` names the gate params that tune it, as the report shows them.
    """

    key: str
    title: str
    meaning: str
    scope: Scope
    build: Builder[GateParamsT]
    applies: Callable[[Facts], str | None] = lambda facts: None
    judge: Judge[GateParamsT] | None = None
    tuned_by: tuple[str, ...] = ()
    too_small: Callable[[Sizes, GateParamsT], str | None] = lambda sizes, params: None
    """An inconclusive reason when the data is too small for the check to run at all."""
    whole: bool = False
    """Runs on every row (up to WHOLE_ROWS), not on gates.runner.sample_rows: the pairs of rows
    it looks for rarely both land in a sample (2% duplicates in 30,000 rows leave about 0.2%
    duplicated pairs in a 10,000-row sample)."""


def _sampled(check_class: type[BaseCheck], rows: int, **options: object) -> BaseCheck:
    return check_class(n_samples=rows, random_state=0, **options)


def _whole(check_class: type[BaseCheck], **options: object) -> BaseCheck:
    return check_class(n_samples=WHOLE_ROWS, random_state=0, **options)


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


DATA: tuple[CheckSpec[DataGateParams], ...] = (
    CheckSpec(
        "nulls",
        "Percent of nulls",
        "A column is mostly empty: a broken export, join or tracking gap.",
        "each",
        lambda p, f, n: _sampled(checks.PercentOfNulls, n),
        judge=judges.nulls,
        tuned_by=("max_null_ratio",),
    ),
    CheckSpec(
        "mixed_nulls",
        "Mixed nulls",
        "Missing values are spelled several ways ('', 'NA', 'null'): some are read as data.",
        "each",
        lambda p, f, n: _sampled(checks.MixedNulls, n).add_condition_different_nulls_less_equal_to(
            p.max_null_kinds
        ),
        tuned_by=("max_null_kinds",),
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
        lambda p, f, n: _whole(
            checks.DataDuplicates, ignore_columns=[f.id_column] if f.id_column else None
        ),
        judge=judges.duplicates,
        tuned_by=("max_duplicate_ratio",),
        whole=True,
    ),
    CheckSpec(
        "conflicting_labels",
        "Conflicting labels",
        "Identical rows carry different labels: the label is noisy or features are missing.",
        "each",
        lambda p, f, n: _whole(vectorised.ConflictingLabels),
        judge=judges.conflicting_labels,
        tuned_by=("max_conflicting_label_ratio",),
        whole=True,
    ),
    CheckSpec(
        "outliers",
        "Outlier rows",
        "Too many rows unlike the rest: corrupted values or a different population.",
        "each",
        # Its own 10 s timeout would pre-empt gates.runner.check_timeout_seconds.
        lambda p, f, n: _sampled(
            checks.OutlierSampleDetection, min(n, OUTLIER_ROWS), timeout=86_400
        ),
        judge=judges.outliers,
        tuned_by=("max_outlier_ratio", "outlier_probability"),
    ),
    CheckSpec(
        "string_mismatch",
        "String mismatch",
        "A category is spelled several ways ('North', 'north '): the model sees different values.",
        "each",
        lambda p, f, n: _sampled(
            checks.StringMismatch, n
        ).add_condition_ratio_variants_less_or_equal(p.max_string_mismatch_ratio),
        tuned_by=("max_string_mismatch_ratio",),
    ),
    CheckSpec(
        "special_characters",
        "Special characters",
        "Values made of special characters only: placeholders or encoding errors.",
        "each",
        lambda p, f, n: _sampled(
            checks.SpecialCharacters, n
        ).add_condition_ratio_of_special_characters_less_or_equal(p.max_special_character_ratio),
        tuned_by=("max_special_character_ratio",),
    ),
    CheckSpec(
        "single_value",
        "Single value",
        "A column holds one value only: it carries no information, often a broken feed.",
        "each",
        lambda p, f, n: _sampled(checks.IsSingleValue, n),
        judge=judges.single_value,
    ),
)

DRIFT: tuple[CheckSpec[DriftGateParams], ...] = (
    CheckSpec(
        "feature_drift",
        "Feature drift",
        "Features are distributed differently in test than in train: test scores will not hold.",
        "pair",
        # min_samples=1: a judge decides what the sample supports, instead of an error below 10.
        # OTHER_SHARE: the drift monitor and the canary judge pool rare categories alike.
        lambda p, f, n: _sampled(
            checks.FeatureDrift, n, min_samples=1, min_category_size_ratio=OTHER_SHARE
        ),
        judge=judges.feature_drift,
        tuned_by=("max_numeric_drift", "max_categorical_drift"),
    ),
    CheckSpec(
        "label_drift",
        "Label drift",
        "The label balance differs between train and test.",
        "pair",
        lambda p, f, n: _sampled(checks.LabelDrift, n, min_samples=1),
        judge=judges.label_drift,
        tuned_by=("max_label_drift",),
    ),
    CheckSpec(
        "multivariate_drift",
        "Multivariate drift",
        "A classifier can tell test rows from train rows: the data changed as a whole.",
        "pair",
        lambda p, f, n: _sampled(checks.MultivariateDrift, n),
        judge=judges.multivariate_drift,
        tuned_by=("max_multivariate_drift",),
    ),
    CheckSpec(
        "new_categories",
        "New categories",
        "Test rows have categories never seen in training: the model treats them as unknown.",
        "pair",
        lambda p, f, n: _sampled(checks.NewCategoryTrainTest, n),
        judge=judges.new_categories,
        tuned_by=("max_new_category_ratio",),
    ),
    CheckSpec(
        "new_labels",
        "New labels",
        "Test rows have labels never seen in training.",
        "pair",
        lambda p, f, n: _sampled(
            checks.NewLabelTrainTest, n
        ).add_condition_new_label_ratio_less_or_equal(p.max_new_label_ratio),
        tuned_by=("max_new_label_ratio",),
    ),
    CheckSpec(
        "sample_overlap",
        "Train/test sample overlap",
        "Test rows also appear in train: test scores are inflated.",
        "pair",
        lambda p, f, n: _whole(vectorised.TrainTestSamplesMix),
        judge=leakage.sample_overlap,
        tuned_by=("max_sample_overlap_ratio",),
        whole=True,
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
        tuned_by=("max_index_overlap_ratio",),
    ),
    CheckSpec(
        "label_correlation",
        "Feature-label correlation",
        "A feature predicts the label almost alone, or far better in train than in test: it "
        "leaks the label (a column computed from the outcome, or after it).",
        "pair",
        lambda p, f, n: _sampled(checks.FeatureLabelCorrelationChange, n),
        judge=leakage.label_correlation,
        tuned_by=(
            "max_feature_label_pps",
            "max_feature_label_separation",
            "max_feature_label_pps_change",
            "trusted_features",
        ),
    ),
    CheckSpec(
        "identifier_leakage",
        "Identifier-label correlation",
        "The order of the id or timestamp predicts the label: the export is sorted by outcome, "
        "or ids are handed out after it.",
        "pair",
        lambda p, f, n: _sampled(checks.IdentifierLabelCorrelation, n),
        _needs_id_or_timestamp,
        judge=leakage.identifier_leakage,
        tuned_by=("max_identifier_label_power",),
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
        tuned_by=("max_date_leakage_ratio",),
    ),
)

MODEL: tuple[CheckSpec[ModelGateParams], ...] = (
    CheckSpec(
        "performance",
        "Test performance",
        "The model misses the agreed minimum on the test set, or is too good to be true (a leak).",
        "test",
        lambda p, f, n: _sampled(
            checks.SingleDatasetPerformance, n, scorers=["roc_auc", "recall_per_class"]
        ),
        judge=judges.performance,
        tuned_by=("min_roc_auc", "min_recall", "max_balanced_accuracy"),
    ),
    CheckSpec(
        "simple_model",
        "Simple model comparison",
        "On the positive class, the model barely beats predicting the most frequent class.",
        "pair",
        # On the positive class only: predicting the majority class already scores well on the
        # majority class, so a gain there says little about an imbalanced problem.
        lambda p, f, n: _sampled(checks.SimpleModelComparison, n),
        judge=judges.simple_model,
        tuned_by=("min_simple_model_gain",),
    ),
    CheckSpec(
        "weak_segments",
        "Weak segments",
        "A sizeable segment of rows gets much worse predictions than the rest.",
        "test",
        lambda p, f, n: _sampled(
            checks.WeakSegmentsPerformance, min(n, _SEGMENT_ROWS), n_top_features=5
        ),
        judge=judges.weak_segments,
        tuned_by=("max_weak_segment_drop", "min_segment_rows"),
        too_small=judges.weak_segments_too_small,
    ),
    CheckSpec(
        "overfitting",
        "Train/test performance",
        "The model does much better on train than on test: it overfits.",
        "pair",
        lambda p, f, n: _sampled(checks.TrainTestPerformance, n, scorers=["roc_auc"]),
        judge=judges.overfitting,
        tuned_by=("max_overfitting",),
    ),
    CheckSpec(
        "prediction_drift",
        "Prediction drift",
        "Predictions are distributed differently on test than on train.",
        "pair",
        lambda p, f, n: _sampled(checks.PredictionDrift, n, min_samples=1),
        judge=judges.prediction_drift,
        tuned_by=("max_prediction_drift",),
    ),
)

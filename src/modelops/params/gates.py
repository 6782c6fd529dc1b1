"""Section `gates`: each pull-request gate's mode and limits, how checks run, how sure they are."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeAlias, TypedDict

from pydantic import Field, field_validator

from modelops.metric_registry import with_direction
from modelops.params.base import Frozen
from modelops.params.fleet import EdgeFormat

GateMode: TypeAlias = Literal["enforce", "warn", "off"]
DataCheck: TypeAlias = Literal[
    "nulls",
    "mixed_nulls",
    "mixed_types",
    "duplicates",
    "conflicting_labels",
    "outliers",
    "string_mismatch",
    "special_characters",
    "single_value",
]
DriftCheck: TypeAlias = Literal[
    "feature_drift",
    "label_drift",
    "multivariate_drift",
    "new_categories",
    "new_labels",
    "sample_overlap",
    "index_leakage",
    "label_correlation",
    "identifier_leakage",
    "date_leakage",
]
ModelCheck: TypeAlias = Literal[
    "performance", "simple_model", "weak_segments", "overfitting", "prediction_drift"
]
LatencyCheck: TypeAlias = Literal["single_row", "batch"]
if TYPE_CHECKING:
    ChampionHigherBetter: TypeAlias = str
    ChampionLowerBetter: TypeAlias = str
else:
    # The metrics the champion gate can compare, by direction, from the one registry: the
    # schema and the error messages list exactly these keys.
    ChampionHigherBetter = Literal[with_direction("higher")]
    ChampionLowerBetter = Literal[with_direction("lower")]


class _Bounds(TypedDict):
    ge: float
    le: float


_RATIO: _Bounds = {"ge": 0.0, "le": 1.0}
"""A share, from 0 to 1 (`Field(..., **_RATIO)`)."""
_DEFAULT_MAX_DROP: dict[ChampionHigherBetter, float] = {
    "roc_auc": 0.01,
    "average_precision": 0.02,
    "recall": 0.05,
}
_DEFAULT_MAX_RISE: dict[ChampionLowerBetter, float] = {"log_loss": 0.02}


class DataGateParams(Frozen):
    """Gate `data`: Deepchecks data-integrity checks, on the train and on the test set."""

    mode: GateMode = "enforce"
    skip: tuple[DataCheck, ...] = Field((), description="Checks to leave out.")
    max_null_ratio: float = Field(0.3, **_RATIO, description="Per column.")
    max_null_kinds: int = Field(1, ge=1, description="Null spellings ('', 'NA'...) per column.")
    max_duplicate_ratio: float = Field(0.05, **_RATIO)
    max_conflicting_label_ratio: float = Field(0.005, **_RATIO)
    max_outlier_ratio: float = Field(0.02, **_RATIO)
    outlier_probability: float = Field(0.8, gt=0.0, lt=1.0, description="A row above is one.")
    max_string_mismatch_ratio: float = Field(0.01, **_RATIO)
    max_special_character_ratio: float = Field(0.001, **_RATIO)


class DriftGateParams(Frozen):
    """Gate `drift`: train/test validation (drift, new values, sample overlap, leakage)."""

    mode: GateMode = "enforce"
    skip: tuple[DriftCheck, ...] = Field((), description="Checks to leave out.")
    max_numeric_drift: float = Field(0.2, **_RATIO, description="Kolmogorov-Smirnov statistic.")
    max_categorical_drift: float = Field(0.2, **_RATIO, description="Cramer's V.")
    max_label_drift: float = Field(0.15, **_RATIO)
    max_multivariate_drift: float = Field(0.25, **_RATIO, description="Domain classifier score.")
    max_new_category_ratio: float = Field(0.01, **_RATIO, description="Test rows with one.")
    max_new_label_ratio: float = Field(0.0, **_RATIO)
    max_sample_overlap_ratio: float = Field(0.05, **_RATIO, description="Test rows also in train.")
    max_index_overlap_ratio: float = Field(0.0, **_RATIO, description="Test ids also in train.")
    max_feature_label_pps: float = Field(
        0.9,
        **_RATIO,
        description="A feature predicting the label this well alone (predictive power score in "
        "train, confidently above) leaks it.",
    )
    max_feature_label_separation: float = Field(
        0.88,
        **_RATIO,
        description="A feature separating the classes this well alone leaks the label: Youden's "
        "J, max |TPR - FPR| over its cut-offs, at any class balance (a copy of the label with a "
        "share e of rows flipped reads 1 - 2e).",
    )
    max_feature_label_pps_change: float = Field(
        0.2, **_RATIO, description="How much better a feature may predict the label in train."
    )
    trusted_features: tuple[str, ...] = Field(
        (),
        description="Features known to predict the label legitimately well (a lab result that "
        "defines the diagnosis): never called a leak.",
    )
    max_identifier_label_power: float = Field(
        0.2,
        **_RATIO,
        description="How well the order of the id or the timestamp alone predicts the label: "
        "|2 AUC - 1|, 0 for none, 1 for a label sorted by id.",
    )
    max_date_leakage_ratio: float = Field(0.0, **_RATIO, description="Time split only.")


class ModelGateParams(Frozen):
    """Gate `model`: performance, simple-model comparison, weak segments, overfitting."""

    mode: GateMode = "enforce"
    skip: tuple[ModelCheck, ...] = Field((), description="Checks to leave out.")
    min_roc_auc: float = Field(0.7, **_RATIO)
    min_recall: float = Field(
        0.2, **_RATIO, description="Recall of the positive class at evaluate.threshold."
    )
    min_simple_model_gain: float = Field(
        0.1, **_RATIO, description="Positive-class F1 gain over predicting the majority class."
    )
    max_weak_segment_drop: float = Field(
        0.3, gt=0.0, lt=1.0, description="Accuracy drop of the weakest segment, relative."
    )
    min_segment_rows: int = Field(
        100, ge=10, description="Smallest segment that weak-segment search may call weak."
    )
    max_balanced_accuracy: float = Field(
        0.995,
        gt=0.5,
        le=1.0,
        description="Balanced accuracy at evaluate.threshold on test beyond which the model is "
        "too good to be true (a leak is likelier than a perfect model).",
    )
    max_overfitting: float = Field(
        0.25,
        gt=0.0,
        lt=1.0,
        description="Relative ROC AUC drop from train (in-sample) to test; boosted trees score "
        "close to 1 in-sample on small data.",
    )
    max_prediction_drift: float = Field(0.15, **_RATIO)


class ChampionGateParams(Frozen):
    """Gate `champion`: the candidate against the model on `ref`, both on this test set."""

    mode: GateMode = "enforce"
    ref: str = Field("main", min_length=1, description="Git ref whose model is the champion.")
    model_uri: str | None = Field(
        None,
        description="Use this model as the champion instead: an MLflow model URI "
        "(models:/name@alias) or a local MLflow model directory.",
    )
    environment: str | None = Field(
        "production",
        description="The environment whose stable model is the champion: what it serves, read "
        "from manifests/releases/<environment>.yaml on `ref`. When nothing is released there "
        "yet, or when null, the model on `ref` is the champion.",
    )
    reproduce: bool = Field(
        True,
        description="When the champion's model is in no store, DVC cache or remote, rebuild it "
        "with `dvc repro train` at its commit in a temporary git worktree.",
    )
    max_drop: dict[ChampionHigherBetter, float] = Field(
        default_factory=lambda: dict(_DEFAULT_MAX_DROP),
        description="Higher-is-better metrics: how much lower than the champion's they may be.",
    )
    max_rise: dict[ChampionLowerBetter, float] = Field(
        default_factory=lambda: dict(_DEFAULT_MAX_RISE),
        description="Lower-is-better metrics: how much higher than the champion's they may be.",
    )


class LatencyGateParams(Frozen):
    """Gate `latency`: the candidate's serving time per row against the champion's.

    Both models score the same sampled test rows in this process, the way a server worker does
    (its scoring path, one thread), interleaved in paired repeats; the ratio of their times
    per row is decided by its interval (`gates.latency` in runbooks/pr-gates.md).
    """

    mode: GateMode = "warn"
    skip: tuple[LatencyCheck, ...] = Field((), description="Checks to leave out.")
    max_slowdown: float = Field(
        0.2,
        ge=0.0,
        le=100.0,
        description="How much slower per row than the champion the candidate may be: 0.2 "
        "allows 1.2 times the champion's time. It fails only when the whole interval of the "
        "ratio is beyond it.",
    )
    rows: int = Field(
        200, ge=10, le=100_000, description="Test rows sampled (seeded) to build requests from."
    )
    requests: int = Field(
        10,
        ge=1,
        le=1000,
        description="Requests of each shape (one row, a batch) per model in each repeat; each "
        "model's median call counts.",
    )
    batch_rows: int = Field(
        100, ge=2, le=100_000, description="Rows in the batch request (at most `rows`)."
    )
    repeats: int = Field(
        20,
        ge=2,
        le=1000,
        description="Paired repeats (each times both models, in random order): the interval "
        "is the median's over them; at 95% confidence fewer than 6 give none (inconclusive).",
    )
    max_seconds: float = Field(
        10.0,
        gt=0.0,
        description="Measuring stops after this long; the repeats done by then decide (too few "
        "is inconclusive).",
    )


class EdgeGateParams(Frozen):
    """Gate `edge`: does the candidate make an edge bundle that scores as the trained pipeline?

    Only with an edge environment in `deploy.environments`: the gate runs `modelops export`
    (unsigned, into a temporary folder) for each format those environments use, and records its
    parity or its refusal (`gates.edge` in runbooks/pr-gates.md).
    """

    mode: GateMode = Field(
        "enforce",
        description="`enforce` by default: a bundle that fails parity cannot be published, so "
        "the model it comes from cannot reach the devices.",
    )
    skip: tuple[EdgeFormat, ...] = Field((), description="Formats to leave out.")
    tolerance: float = Field(
        1e-5,
        gt=0.0,
        lt=1.0,
        description="The largest |Δp| between the bundle's probability and the trained "
        "pipeline's on any row, here and in `modelops export` (its --tolerance default). "
        "float32 inputs (ONNX) move a probability by about 1e-7; a flipped split by 1e-3 or "
        "more. The class at evaluate.threshold must also agree on every row.",
    )


class StatisticsParams(Frozen):
    """How sure a gate must be before it passes or fails a check (otherwise: inconclusive)."""

    confidence: float = Field(
        0.95,
        ge=0.5,
        lt=1.0,
        description="Two-sided confidence of every interval; checks of many columns share it.",
    )
    bootstrap_resamples: int = Field(
        1000, ge=100, le=100_000, description="Paired bootstrap resamples of the test rows."
    )
    seed: int = Field(0, ge=0, description="Random seed of the bootstrap (results repeat).")


class GateRunnerParams(Frozen):
    """How gate checks run."""

    check_timeout_seconds: float = Field(
        120.0, gt=0.0, description="A check running longer fails its gate."
    )
    sample_rows: int = Field(
        10_000, ge=100, description="Rows each Deepchecks check samples per dataset."
    )
    html_reports: Literal["failures", "always", "never"] = Field(
        "failures",
        description="Deepchecks HTML reports in reports/deepchecks/: `failures` writes one per "
        "gate with a failed or inconclusive check, holding only those checks; `always` every "
        "check of every gate (tens of MB); `never` none.",
    )

    @field_validator("html_reports", mode="before")
    @classmethod
    def _booleans_of_older_params(cls, value: object) -> object:
        if isinstance(value, bool):
            return "always" if value else "never"
        return value


class GatesParams(Frozen):
    """The pull-request gates; each gate's mode is enforce, warn or off."""

    runner: GateRunnerParams = GateRunnerParams()
    statistics: StatisticsParams = StatisticsParams()
    data: DataGateParams = DataGateParams()
    drift: DriftGateParams = DriftGateParams()
    model: ModelGateParams = ModelGateParams()
    champion: ChampionGateParams = ChampionGateParams()
    latency: LatencyGateParams = LatencyGateParams()
    edge: EdgeGateParams = EdgeGateParams()

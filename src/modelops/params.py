"""`params.yaml`, validated once into frozen pydantic models.

Every knob of the pipeline lives in `params.yaml`; this module is the only reader. A typo or a bad
value fails here, naming the key and what is allowed, before any stage touches its outputs.
"""

from __future__ import annotations

import codecs
import datetime as dt
import difflib
import itertools
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeAlias

import yaml
from modelops_contract import LATENCY_BUCKETS
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from modelops.errors import ParamsError

PARAMS_FILE = "params.yaml"
SYNTHETIC_SOURCE = "synthetic"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def label_text(value: object) -> str:
    """Return the canonical text of a label value, so `1`, `1.0` and `"1"` name one class."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class SyntheticParams(_Frozen):
    """The built-in churn data generator, used when `prepare.source` is `synthetic`."""

    rows: int = Field(20_000, ge=200, le=20_000_000, description="Rows to generate.")
    seed: int = Field(42, ge=0, description="Random seed; the same seed gives the same rows.")


class ColumnsParams(_Frozen):
    """Column roles. Leave `categorical` and `numeric` unset to infer them from the data."""

    label: str = Field(description="Binary target column.")
    positive_label: bool | str | None = Field(
        None,
        description="Label value of the positive class; inferred when unset "
        "(1/True/yes if present, else the rarer class). YAML reads unquoted yes/no, on/off and "
        "true/false as booleans: a boolean matches the label's yes/no, y/n, on/off, true/false "
        "or 1/0 values (any case).",
    )
    id: str | None = Field(None, description="Row identifier; never used as a feature.")
    timestamp: str | None = Field(
        None, description="Event time; never used as a feature, needed by the time split."
    )
    categorical: tuple[str, ...] | None = Field(None, description="Categorical features.")
    numeric: tuple[str, ...] | None = Field(None, description="Numeric features.")
    drop: tuple[str, ...] = Field((), description="Columns to ignore entirely.")

    @field_validator("positive_label", mode="before")
    @classmethod
    def _label_as_text(cls, value: object) -> object:
        """Numbers become their label text (`1.0` -> `1`); booleans stay booleans for matching."""
        return value if value is None or isinstance(value, bool) else label_text(value)

    @model_validator(mode="after")
    def _roles_are_disjoint(self) -> Self:
        roles: dict[str, list[str]] = {}
        singles = {"label": self.label, "id": self.id, "timestamp": self.timestamp}
        for role, column in singles.items():
            if column is not None:
                roles.setdefault(column, []).append(role)
        for role in ("categorical", "numeric", "drop"):
            for column in getattr(self, role) or ():
                roles.setdefault(column, []).append(role)
        clashes = {column: found for column, found in roles.items() if len(found) > 1}
        if clashes:
            detail = "; ".join(f"'{c}' is {' and '.join(r)}" for c, r in sorted(clashes.items()))
            raise ValueError(f"a column can have one role only: {detail}")
        return self


class SplitParams(_Frozen):
    """How rows are divided into train and test sets."""

    strategy: Literal["stratified", "time"] = Field(
        "stratified",
        description="`stratified`: random, keeping the label balance; "
        "`time`: the latest rows (by `columns.timestamp`) are the test set.",
    )
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = Field(42, ge=0)


CSV_DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t"}


class CsvParams(_Frozen):
    """How CSV files are read; Parquet files ignore this section."""

    delimiter: Literal["auto", ",", ";", "\t", "|"] = Field(
        "auto",
        description="Field separator: `auto` sniffs it from the file's first lines among "
        '`,` `;` tab `|`; or one of those (write tab as `tab` or "\\t").',
    )
    decimal: Literal[".", ","] = Field(
        ".",
        description="Decimal mark of numbers: `,` for files written as 1,5 (usually with "
        "delimiter `;`); numbers with the other mark are read as text.",
    )
    encoding: str = Field(
        "utf-8",
        description="Text encoding of the file, e.g. utf-8 (also reads a byte-order mark), "
        "latin-1 or cp1252 for older spreadsheet exports.",
    )

    @field_validator("delimiter", mode="before")
    @classmethod
    def _delimiter_by_name(cls, value: object) -> object:
        return _DELIMITER_NAMES.get(value, value) if isinstance(value, str) else value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown text encoding '{value}'; use e.g. utf-8, latin-1 or cp1252"
            ) from None
        return value

    @model_validator(mode="after")
    def _decimal_is_not_the_delimiter(self) -> Self:
        if self.delimiter == self.decimal:
            raise ValueError(
                f"decimal '{self.decimal}' cannot also be the delimiter: with decimal ',' "
                "set delimiter to ';' (or tab, or 'auto')"
            )
        return self


class PrepareParams(_Frozen):
    """Stage `prepare`: load or generate the data, validate it, split it."""

    source: str = Field(
        SYNTHETIC_SOURCE,
        description="`synthetic`, or a CSV/Parquet file: a local path (keep it under data/raw/ "
        "so DVC sees changes) or an http(s) URL.",
    )
    format: Literal["auto", "csv", "parquet"] = Field(
        "auto", description="File format; `auto` goes by the file extension."
    )
    csv: CsvParams = CsvParams()
    synthetic: SyntheticParams = SyntheticParams()
    columns: ColumnsParams
    split: SplitParams = SplitParams()

    @model_validator(mode="after")
    def _time_split_needs_timestamp(self) -> Self:
        if self.split.strategy == "time" and self.columns.timestamp is None:
            raise ValueError(
                "split.strategy 'time' needs columns.timestamp: name the event-time column, "
                "or use strategy 'stratified'"
            )
        return self


class HistGradientBoostingParams(_Frozen):
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


class RandomForestParams(_Frozen):
    """scikit-learn's RandomForestClassifier on one-hot encoded, imputed features."""

    kind: Literal["random_forest"]
    n_estimators: int = Field(200, ge=1, le=10_000)
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: int = Field(5, ge=1)
    max_features: Literal["sqrt", "log2"] | float = "sqrt"
    class_weight: Literal["balanced", "balanced_subsample"] | None = None


class LogisticRegressionParams(_Frozen):
    """scikit-learn's LogisticRegression on one-hot encoded, scaled features: a simple baseline."""

    kind: Literal["logistic_regression"]
    C: float = Field(1.0, gt=0.0, description="Inverse regularisation strength.")
    max_iter: int = Field(1000, ge=1)
    class_weight: Literal["balanced"] | None = None


ModelParams: TypeAlias = Annotated[
    HistGradientBoostingParams | RandomForestParams | LogisticRegressionParams,
    Field(discriminator="kind"),
]


class TrainParams(_Frozen):
    """Stage `train`: fit the preprocessing + classifier pipeline."""

    seed: int = Field(42, ge=0)
    model: ModelParams


class EvaluateParams(_Frozen):
    """Stage `evaluate`: metrics and plots on the test set."""

    threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="Positive-class probability at which we predict positive."
    )
    calibration_bins: int = Field(10, ge=2, le=100)
    importance_rows: int = Field(
        5000, ge=100, description="Test rows sampled for permutation feature importance."
    )
    importance_repeats: int = Field(5, ge=1, le=100)


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
ChampionHigherBetter: TypeAlias = Literal[
    "roc_auc", "average_precision", "accuracy", "precision", "recall", "f1"
]
ChampionLowerBetter: TypeAlias = Literal["log_loss", "brier_score"]
_RATIO: dict[str, Any] = {"ge": 0.0, "le": 1.0}
_DEFAULT_MAX_DROP: dict[ChampionHigherBetter, float] = {
    "roc_auc": 0.01,
    "average_precision": 0.02,
    "recall": 0.05,
}
_DEFAULT_MAX_RISE: dict[ChampionLowerBetter, float] = {"log_loss": 0.02}


class DataGateParams(_Frozen):
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


class DriftGateParams(_Frozen):
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


class ModelGateParams(_Frozen):
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
    max_overfitting: float = Field(
        0.25,
        gt=0.0,
        lt=1.0,
        description="Relative ROC AUC drop from train (in-sample) to test; boosted trees score "
        "close to 1 in-sample on small data.",
    )
    max_prediction_drift: float = Field(0.15, **_RATIO)


class ChampionGateParams(_Frozen):
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


class StatisticsParams(_Frozen):
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


class GateRunnerParams(_Frozen):
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


class GatesParams(_Frozen):
    """The pull-request gates; each gate's mode is enforce, warn or off."""

    runner: GateRunnerParams = GateRunnerParams()
    statistics: StatisticsParams = StatisticsParams()
    data: DataGateParams = DataGateParams()
    drift: DriftGateParams = DriftGateParams()
    model: ModelGateParams = ModelGateParams()
    champion: ChampionGateParams = ChampionGateParams()


_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"


class ResourcesParams(_Frozen):
    """Container requests and limits (Kubernetes quantities)."""

    cpu: str = Field("250m", pattern=_QUANTITY)
    memory: str = Field("512Mi", pattern=_QUANTITY)
    cpu_limit: str = Field("1", pattern=_QUANTITY)
    memory_limit: str = Field("1Gi", pattern=_QUANTITY)


class AutoscalingParams(_Frozen):
    """Horizontal autoscaling of each predictor on CPU utilisation."""

    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(3, ge=1)
    target_cpu_utilization: int = Field(70, ge=1, le=100)

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        return self


class EnvironmentParams(_Frozen):
    """One deployment target: where, how big, and how a new model reaches it."""

    namespace: str = Field(pattern=_DNS_LABEL)
    strategy: Literal["direct", "canary"] = Field(
        description="`direct`: a new model takes all traffic at once; `canary`: it starts at "
        "the first of `canary_steps` and `modelops release promote` moves it through them."
    )
    canary_steps: tuple[int, ...] = Field(
        (10, 25, 50, 100),
        description="Canary traffic percentages, increasing; reaching 100 makes it stable.",
    )
    canary_replicas: int = Field(1, ge=1)
    shadow_first: bool = Field(
        False,
        description="With strategy `canary`: a new model first runs as a Seldon shadow "
        "predictor on mirrored traffic (no user sees its answers) and is judged against stable "
        "before it takes real traffic; the first `modelops release promote` makes it a canary "
        "at the first of `canary_steps`.",
    )
    resources: ResourcesParams = ResourcesParams()
    autoscaling: AutoscalingParams = AutoscalingParams()
    # Removed (each track has its own budget now); declared only so that an old params.yaml
    # gets a precise error instead of "unknown key". Not in the schema, never dumped.
    min_available: SkipJsonSchema[None] = Field(None, exclude=True)

    @field_validator("min_available", mode="before")
    @classmethod
    def _min_available_was_removed(cls, value: object) -> None:
        raise ValueError(
            "removed: each track (stable, and canary while one runs) now gets its own "
            "PodDisruptionBudget with maxUnavailable 1, so no budget blocks a node drain; "
            "delete this key"
        )

    @field_validator("canary_steps")
    @classmethod
    def _steps_increase_to_at_most_100(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if not steps:
            raise ValueError("give at least one canary step, e.g. [10, 25, 50, 100]")
        if any(not 0 < step <= 100 for step in steps):
            raise ValueError(f"each canary step is a percentage from 1 to 100, got {list(steps)}")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(f"canary steps must increase, got {list(steps)}")
        return steps

    @field_validator("shadow_first")
    @classmethod
    def _shadow_needs_a_canary(cls, shadow_first: bool, info: ValidationInfo) -> bool:
        # `strategy` is declared first, so it is validated (or failed) by now.
        strategy = info.data.get("strategy")
        if shadow_first and strategy is not None and strategy != "canary":
            raise ValueError(
                f"shadow_first needs strategy canary, this environment's is {strategy}: a new "
                "model then takes all traffic at once, with no stage to shadow before. Set "
                "strategy: canary, or shadow_first: false"
            )
        return shadow_first


_Namespace: TypeAlias = Annotated[str, Field(pattern=_DNS_LABEL)]


class NetworkPolicyParams(_Frozen):
    """Who may reach the model pods (their NetworkPolicy); everything else is refused."""

    ingress_namespaces: tuple[_Namespace, ...] = Field(
        ("istio-system",),
        min_length=1,
        description="Namespaces of the ingress gateway that sends predictions (to the Seldon "
        "executor: REST 8000, gRPC 5001), e.g. istio-system or ambassador.",
    )
    prometheus_namespaces: tuple[_Namespace, ...] = Field(
        ("monitoring",),
        min_length=1,
        description="Namespaces of the Prometheus that scrapes the metrics (executor 8000, "
        "model 6000).",
    )


class DeployParams(_Frozen):
    """GitOps deploys: what is deployed where, and where published models live."""

    name: str = Field("churn", pattern=_DNS_LABEL, description="SeldonDeployment name.")
    registered_model: str = Field(
        "churn", min_length=1, description="MLflow registered model (when a server is set)."
    )
    store: str = Field(
        "model-store",
        min_length=1,
        description="Where models are published, content-addressed: an object store URI "
        "(s3://bucket/prefix, gs://...) or a folder relative to the project (tries and tests).",
    )
    image: str = Field(
        "ghcr.io/your-org/modelops-serving:0.1.0",
        min_length=1,
        description="The serving image built from serving/Dockerfile (pin a tag or digest).",
    )
    storage_initializer_image: str = Field(
        "seldonio/rclone-storage-initializer:1.17.1",
        description="Init container that downloads the published model into /mnt/models.",
    )
    storage_initializer_resources: ResourcesParams = Field(
        default_factory=lambda: ResourcesParams(
            cpu="100m", memory="128Mi", cpu_limit="500m", memory_limit="256Mi"
        ),
        description="Requests and limits of the init container that downloads the model.",
    )
    run_as_user: int = Field(
        10001,
        ge=1,
        description="uid every container runs as (never root): serving/Dockerfile's USER. The "
        "storage initializer runs as it too.",
    )
    run_as_group: int = Field(10001, ge=1, description="gid every container runs as.")
    storage_secret: str | None = Field(
        None, description="Secret with the store's credentials, as env for the initializer."
    )
    network_policy: NetworkPolicyParams = NetworkPolicyParams()
    repo_url: str = Field(
        "https://github.com/your-org/modelops.git",
        min_length=1,
        description="The git repository Argo CD syncs manifests/rendered/<environment> from.",
    )
    revision: str = Field("main", min_length=1)
    environments: dict[str, EnvironmentParams] = Field(
        default_factory=lambda: {
            "staging": EnvironmentParams(namespace="churn-staging", strategy="direct"),
            "production": EnvironmentParams(
                namespace="churn-production",
                strategy="canary",
                autoscaling=AutoscalingParams(min_replicas=2, max_replicas=6),
            ),
        }
    )

    @field_validator("environments")
    @classmethod
    def _environment_names(
        cls, environments: dict[str, EnvironmentParams]
    ) -> dict[str, EnvironmentParams]:
        if not environments:
            raise ValueError("declare at least one environment")
        bad = [name for name in environments if not re.fullmatch(_DNS_LABEL, name)]
        if bad:
            raise ValueError(f"environment names must be DNS labels (a-z, 0-9, -): {bad}")
        return environments


class BusinessValueParams(_Frozen):
    """What one prediction is worth once its truth is known, per outcome at the threshold.

    Positive numbers are gains, negative ones costs, in any one unit (e.g. revenue kept per
    churner caught, minus the offer each flagged customer gets). The server counts the gains and
    the costs of every labelled row, so the KPI the model exists for is a time series.
    """

    true_positive: float = Field(description="Value of a positive the model caught.")
    false_positive: float = Field(description="Value of a negative the model flagged.")
    true_negative: float = Field(0.0, description="Value of a negative the model let pass.")
    false_negative: float = Field(0.0, description="Value of a positive the model missed.")

    @model_validator(mode="after")
    def _not_all_zero(self) -> Self:
        if not any(self.server_value().values()):
            raise ValueError(
                "every value is 0: give what a caught positive and a false alarm are worth "
                "(e.g. true_positive: 120, false_positive: -15), or set business: null"
            )
        return self

    def server_value(self) -> dict[str, float]:
        """The model server's `business_value` parameter, as a mapping."""
        return {
            "false_negative": self.false_negative,
            "false_positive": self.false_positive,
            "true_negative": self.true_negative,
            "true_positive": self.true_positive,
        }


Duration: TypeAlias = Annotated[
    str,
    Field(
        pattern=r"^[1-9][0-9]*(m|h|d|w)$",
        description="A Prometheus duration in whole minutes, hours, days or weeks: 5m, 1h, 28d.",
    ),
]
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
# The server's latency histogram bounds (the telemetry contract's): a latency objective is
# counted exactly only at one of them.
LATENCY_BOUNDS = LATENCY_BUCKETS


def duration_seconds(duration: str) -> int:
    """Seconds in a Duration such as `1h` or `28d`."""
    return int(duration[:-1]) * _DURATION_SECONDS[duration[-1]]


class ServiceObjective(_Frozen):
    """A service level objective: the share of good predict requests over `window`."""

    target: float = Field(
        gt=0.5, lt=1.0, description="Share of good requests promised, e.g. 0.999 (three nines)."
    )
    window: Duration = Field("28d", description="The SLO window the error budget is counted over.")
    min_requests: int = Field(
        100,
        ge=1,
        description="Requests a burn-rate alert's long window needs before it can fire, so a "
        "handful of requests at night cannot page anyone.",
    )

    @field_validator("window")
    @classmethod
    def _window_holds_the_alerts(cls, value: str) -> str:
        if duration_seconds(value) < 3 * 86_400:
            raise ValueError(
                f"window {value} is shorter than the slowest burn-rate alert's 3d: use 3d or "
                "more (28d is usual)"
            )
        return value


class LatencyObjective(ServiceObjective):
    """The share of predict requests answered within `threshold_seconds`."""

    target: float = Field(
        0.99, gt=0.5, lt=1.0, description="Share of requests faster than the threshold."
    )
    threshold_seconds: float = Field(
        0.1,
        description=f"The latency bound; one of the server's histogram bounds {LATENCY_BOUNDS}.",
    )

    @field_validator("threshold_seconds")
    @classmethod
    def _a_histogram_bound(cls, value: float) -> float:
        if value not in LATENCY_BOUNDS:
            nearest = min(LATENCY_BOUNDS, key=lambda bound: abs(bound - value))
            raise ValueError(
                f"{value} s is not a bound of the server's latency histogram, so the share under "
                f"it cannot be counted exactly: use one of {LATENCY_BOUNDS} (nearest: {nearest})"
            )
        return value


class AvailabilityObjective(ServiceObjective):
    """The share of predict requests answered without a server error (5xx)."""

    target: float = Field(0.999, gt=0.5, lt=1.0, description="Share of requests without a 5xx.")
    min_requests: int = Field(
        1000,
        ge=1,
        description="Requests a burn-rate alert's long window needs before it can fire: at "
        "1,000 and three nines a page needs at least 7 server errors, never a single one.",
    )


class DriftObjective(_Frozen):
    """Population stability (PSI) of a distribution against the reference profile."""

    max_psi: float = Field(
        0.2, gt=0, le=5, description="PSI above this is drift (0.1 moderate, 0.25 large)."
    )
    window: Duration = Field("1h", description="Rows of this window are compared.")
    min_rows: int = Field(
        1000,
        ge=100,
        description="Rows the window needs before PSI is judged: identical distributions give a "
        "PSI of about (bins - 1) / rows by chance (runbooks/slo.md).",
    )


class RateObjective(_Frozen):
    """A per-feature rate of missing or unseen values over a window, with a minimum of rows."""

    window: Duration = Field("1h", description="Rows of this window are counted.")
    min_rows: int = Field(1000, ge=30, description="Rows the window needs before it is judged.")


class MissingObjective(RateObjective):
    """Missing values per feature, against the reference profile's missing rate."""

    max_increase: float = Field(
        0.05, gt=0, lt=1, description="Allowed rise of the missing share over the training one."
    )


class UnseenObjective(RateObjective):
    """Categories never seen in training, per categorical feature."""

    max_rate: float = Field(0.01, gt=0, lt=1, description="Allowed share of unseen categories.")


class QualityObjective(_Frozen):
    """Realized recall or precision from feedback, against the profile's expected value."""

    max_drop: float = Field(
        0.1, gt=0, lt=1, description="Allowed drop below the test set's value (profile.json)."
    )
    window: Duration = Field("7d", description="Feedback of this window is counted.")
    min_labels: int = Field(
        200, ge=30, description="Labelled rows the window needs before quality is judged."
    )


class BusinessObjective(_Frozen):
    """Net business value per labelled prediction (monitoring.business)."""

    min_per_label: float = Field(0.0, description="Alert when the value per label is below this.")
    window: Duration = Field("7d", description="Feedback of this window is counted.")
    min_labels: int = Field(
        200, ge=30, description="Labelled rows the window needs before value is judged."
    )


class FreshnessObjective(_Frozen):
    """How old the served model may get (days since its training ended)."""

    max_age_days: float = Field(90, gt=0, description="Alert when the model is older than this.")


class ObjectivesParams(_Frozen):
    """What a deployed model promises; rendered as recording rules and alerts (runbooks/slo.md)."""

    availability: AvailabilityObjective = AvailabilityObjective()
    latency: LatencyObjective = LatencyObjective()
    score_drift: DriftObjective = DriftObjective()
    feature_drift: DriftObjective = DriftObjective()
    missing_values: MissingObjective = MissingObjective()
    unseen_categories: UnseenObjective = UnseenObjective()
    recall: QualityObjective = QualityObjective()
    precision: QualityObjective = QualityObjective()
    business_value: BusinessObjective = BusinessObjective()
    freshness: FreshnessObjective = FreshnessObjective()


class LabelsParams(_Frozen):
    """Ground truth sent back through the feedback API."""

    expected: bool = Field(
        True,
        description="Whether truth is sent back; false turns off the quality, business-value "
        "and no-feedback alerts.",
    )
    delay: Duration = Field(
        "1d", description="How long truth takes to arrive; no feedback for longer alerts."
    )


class AlertsParams(_Frozen):
    """How alerts are worded and when silence is an alert."""

    no_traffic_for: Duration = Field(
        "30m", description="No predict request for this long alerts (ModelopsNoTraffic)."
    )
    runbook_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="Base URL of runbooks/alerts.md; null: deploy.repo_url's file on "
        "deploy.revision.",
    )


RetrainCriterion: TypeAlias = Literal[
    "feature_drift",
    "score_drift",
    "missing_values",
    "unseen_categories",
    "recall",
    "precision",
    "concept_drift",
]
RETRAIN_CRITERIA: tuple[RetrainCriterion, ...] = typing.get_args(RetrainCriterion)


class DismissalParams(_Frozen):
    """A reviewed false alarm: a criterion (on one subject, or all) does not count until a date."""

    criterion: RetrainCriterion
    subject: str | None = Field(
        None, description="The feature (or score, recall...) it covers; null: every subject."
    )
    until: dt.date = Field(description="The last day it holds (YYYY-MM-DD); then it counts again.")
    reason: str = Field(min_length=3, description="Why it is a false alarm (kept in the log).")


class RetrainParams(_Frozen):
    """When production drift retrains the model (runbooks/drift-and-retraining.md)."""

    window: str = Field(
        "1d",
        pattern=r"^[1-9][0-9]*(s|m|h|d|w)$",
        description="The length of one judged window, a Prometheus duration (1d; 30s for tries).",
    )
    windows: int = Field(7, ge=1, le=60, description="M: the last M windows are judged.")
    breaches: int = Field(
        3,
        ge=1,
        description="N: a criterion retrains when it breaches in N of the M windows, "
        "the latest included.",
    )
    max_age_days: int = Field(
        90, ge=1, description="Retrain on schedule when the served model is older, drift or not."
    )
    max_calibration_gap: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Concept drift: the labelled rows' positive share may differ this much from "
        "what the calibration expects of their scores.",
    )
    retrain_on: tuple[RetrainCriterion, ...] = Field(
        RETRAIN_CRITERIA,
        description="Criteria that may retrain; the others are reported (and open issues) only.",
    )
    refresh_command: str | None = Field(
        None,
        min_length=1,
        description="Shell command that refreshes a source nothing else refreshes (e.g. an "
        "export script); imported sources (dvc import-url) are refreshed with dvc update.",
    )
    dismissed: tuple[DismissalParams, ...] = Field(
        (),
        description="Reviewed false alarms, each until a date (runbooks/drift-and-retraining.md).",
    )

    @model_validator(mode="after")
    def _n_of_m(self) -> Self:
        if self.breaches > self.windows:
            raise ValueError(
                f"breaches {self.breaches} is more than windows {self.windows}: a criterion "
                "could never retrain; make breaches at most windows"
            )
        return self


class RequestLogParams(_Frozen):
    """The server's sampled request log, for `modelops monitor --rows` (serving/README.md)."""

    sample_rate: float = Field(
        0.0, ge=0, le=1, description="Share of predict requests whose rows are logged; 0: off."
    )
    path: str = Field(
        "stdout",
        min_length=1,
        description="stdout (one JSON line per row, for a log collector) or a file path in "
        "the server's container.",
    )


class MonitoringParams(_Frozen):
    """Production telemetry: how Prometheus scrapes the servers, and what a prediction is worth."""

    scrape_interval: str = Field(
        "15s",
        pattern=r"^[1-9][0-9]*(ms|s|m)$",
        description="How often Prometheus scrapes each container (the PodMonitor's interval).",
    )
    business: BusinessValueParams | None = Field(
        None,
        description="Value per true/false positive/negative for the business-value series; "
        "null: none.",
    )
    labels: LabelsParams = LabelsParams()
    objectives: ObjectivesParams = ObjectivesParams()
    alerts: AlertsParams = AlertsParams()
    retrain: RetrainParams = RetrainParams()
    request_log: RequestLogParams = RequestLogParams()
    prometheus_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="The Prometheus that scrapes the servers, for `modelops canary` and the "
        "deploy's error-budget check; null: give --prometheus (or $MODELOPS_PROMETHEUS_URL).",
    )

    @model_validator(mode="after")
    def _quality_windows_outlast_the_label_delay(self) -> Self:
        if not self.labels.expected:
            return self
        delay = duration_seconds(self.labels.delay)
        for name in ("recall", "precision", "business_value"):
            window = getattr(self.objectives, name).window
            if duration_seconds(window) <= delay:
                raise ValueError(
                    f"objectives.{name}.window {window} is not longer than labels.delay "
                    f"{self.labels.delay}: the window would hold no truth yet; make it longer "
                    "(several times the delay)"
                )
        return self


StepDuration: TypeAlias = Annotated[
    str,
    Field(
        pattern=r"^[1-9][0-9]*(s|m|h|d|w)$",
        description="A duration in whole seconds, minutes, hours, days or weeks: 30s, 10m, 1d.",
    ),
]
SkipReason: TypeAlias = Annotated[
    str | None,
    Field(
        None,
        min_length=3,
        description="Why this criterion is not judged (recorded in every verdict); null: judged.",
    ),
]


class ErrorsCriterion(_Frozen):
    """The canary's server-error ratio against stable's, on request counts."""

    max_increase: float = Field(
        0.002,
        gt=0.0,
        lt=1.0,
        description="Largest tolerated canary error ratio minus stable's (0.002: 0.2 points).",
    )
    skip: SkipReason = None


class LatencyCriterion(_Frozen):
    """The canary's latency quantiles against stable's, from the server's histograms."""

    quantiles: tuple[float, ...] = Field((0.95, 0.99), min_length=1)
    max_ratio: float = Field(
        1.5,
        ge=1.0,
        description="Largest tolerated canary quantile over stable's. The server's buckets are "
        "2 to 2.5x apart and a quantile is interpolated inside one, so a tighter bound needs "
        "much more traffic to decide.",
    )
    skip: SkipReason = None

    @field_validator("quantiles")
    @classmethod
    def _quantiles(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not all(0.5 <= q < 1.0 for q in value):
            raise ValueError(
                f"each quantile is from 0.5 to below 1, e.g. [0.95, 0.99]; got {value}"
            )
        return value


class DistributionCriterion(_Frozen):
    """A distribution (scores, or one feature's bins) canary against stable: PSI on buckets."""

    max_psi: float = Field(0.1, gt=0.0, description="Largest tolerated population stability index.")
    skip: SkipReason = None


class PositiveRateCriterion(_Frozen):
    """The share predicted positive at the threshold, canary against stable."""

    max_difference: float = Field(
        0.05, gt=0.0, lt=1.0, description="Largest tolerated absolute difference."
    )
    skip: SkipReason = None


class QualityCriterion(_Frozen):
    """Realized quality from feedback, canary against stable, once enough labels exist."""

    max_recall_drop: float = Field(0.1, gt=0.0, lt=1.0)
    max_precision_drop: float = Field(0.1, gt=0.0, lt=1.0)
    max_value_drop: float | None = Field(
        None,
        gt=0.0,
        description="Largest tolerated drop of business value per label (monitoring.business "
        "units); null: value not judged.",
    )
    min_labels: int = Field(
        200, ge=10, description="Labels per track before these criteria say anything."
    )
    required: bool = Field(
        False,
        description="true: a step holds until quality passes (min_labels per track and the "
        "intervals decided); false: once min_labels exist a clearly worse canary is rolled "
        "back, but quality never holds a step.",
    )
    skip: SkipReason = None


class ShadowCriterion(_Frozen):
    """A shadow against stable on the same rows, from feedback that carries stable's answer."""

    min_agreement: float = Field(
        0.9,
        gt=0.0,
        lt=1.0,
        description="Smallest tolerated share of rows the shadow classifies as stable did.",
    )
    min_rank_agreement: float = Field(
        0.8,
        gt=-1.0,
        lt=1.0,
        description="Smallest tolerated Kendall's tau between the shadow's and stable's scores "
        "(pairs of rows within a feedback message).",
    )
    required: bool = Field(
        False,
        description="true: a shadow holds until both pass (feedback must reach the shadow); "
        "false: they can roll it back but never hold it.",
    )
    skip: SkipReason = None


class CanaryParams(_Frozen):
    """The canary judge (runbooks/canary-promotion.md): when a step promotes, holds or rolls back.

    Every comparison is a confidence sequence (valid at any number of looks), so analysing a
    step every few minutes does not raise the chance of a wrong verdict above `alpha`.
    """

    alpha: float = Field(
        0.05,
        gt=0.0,
        le=0.2,
        description="Chance of any wrong verdict in one step, over every look and criterion.",
    )
    min_requests: int = Field(
        500,
        ge=1,
        description="Predict requests each track needs in a step before promote or rollback.",
    )
    min_soak: StepDuration = Field("10m", description="Time in a step before promote or rollback.")
    planned_requests: int = Field(
        5000,
        ge=10,
        description="Canary requests per step the sequences are tightest at (`modelops canary "
        "plan` tells what your traffic gives).",
    )
    max_step_duration: StepDuration = Field(
        "24h", description="A step still holding after this long does `on_timeout`."
    )
    on_timeout: Literal["rollback", "ask"] = Field(
        "ask",
        description="ask: `auto` changes nothing and says a person must decide; rollback: roll "
        "back.",
    )
    errors: ErrorsCriterion = ErrorsCriterion()
    latency: LatencyCriterion = LatencyCriterion()
    scores: DistributionCriterion = DistributionCriterion()
    positive_rate: PositiveRateCriterion = PositiveRateCriterion()
    inputs: DistributionCriterion = DistributionCriterion()
    quality: QualityCriterion = QualityCriterion()
    shadow: ShadowCriterion = ShadowCriterion()

    @model_validator(mode="after")
    def _timeout_outlasts_the_soak(self) -> Self:
        if duration_seconds(self.max_step_duration) <= duration_seconds(self.min_soak):
            raise ValueError(
                f"max_step_duration {self.max_step_duration} is not longer than min_soak "
                f"{self.min_soak}: a step would time out before it may decide"
            )
        return self


class TrackingParams(_Frozen):
    """MLflow tracking. The server comes from MLFLOW_TRACKING_URI (default: local SQLite)."""

    experiment: str = Field("modelops", min_length=1)


class Params(_Frozen):
    """The whole of `params.yaml`."""

    prepare: PrepareParams
    train: TrainParams
    evaluate: EvaluateParams = EvaluateParams()
    gates: GatesParams = GatesParams()
    deploy: DeployParams = DeployParams()
    monitoring: MonitoringParams = MonitoringParams()
    canary: CanaryParams = CanaryParams()
    tracking: TrackingParams = TrackingParams()

    @model_validator(mode="after")
    def _champion_environment_is_declared(self) -> Self:
        environment = self.gates.champion.environment
        if environment is not None and environment not in self.deploy.environments:
            raise ValueError(
                f"gates.champion.environment '{environment}' is not one of deploy.environments "
                f"({', '.join(sorted(self.deploy.environments))}): name the environment whose "
                "stable model is the champion, or null to compare with the model on "
                "gates.champion.ref"
            )
        return self


def load_params(path: Path) -> Params:
    """Read and validate a params file.

    Raises:
        ParamsError: the file is missing, is not YAML, or does not match the schema; the message
            names every bad key and what is allowed there.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found; run from the project root") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    return parse_params(raw, source=str(path))


def parse_params(raw: Any, *, source: str = PARAMS_FILE) -> Params:
    """Validate an already-parsed params mapping; see `load_params`."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe(error)}" for error in exc.errors())
        raise ParamsError(f"{source}: {exc.error_count()} invalid value(s):\n{problems}") from None


def params_schema() -> dict[str, Any]:
    """The JSON schema of `params.yaml`."""
    return Params.model_json_schema()


def _describe(error: Any) -> str:
    """One line per pydantic error: the key as written in YAML, what is wrong, what is allowed."""
    keys, models = _walk(tuple(error["loc"]))
    key = ".".join(keys) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = sorted(models[0].model_fields) if len(models) == 1 else []
        hint = difflib.get_close_matches(keys[-1], allowed, n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        return f"{key}: unknown key{suggestion}; allowed here: {', '.join(allowed)}"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        return f"{key}: {message}"
    return f"{key}: {message} (got {error.get('input')!r})"


def _walk(loc: tuple[Any, ...]) -> tuple[list[str], list[type[BaseModel]]]:
    """Follow an error location through the models.

    Returns the keys as the user wrote them (pydantic adds the tag of a discriminated union, such
    as the model kind, which is not a key in the file) and the models owning the last key.
    """
    keys: list[str] = []
    candidates: list[type[BaseModel]] = [Params]
    for part in loc:
        if isinstance(part, int):
            keys.append(str(part))
            continue
        owners = [model for model in candidates if part in model.model_fields]
        if owners:
            keys.append(str(part))
            candidates = _models_in(owners[0].model_fields[part].annotation)
            continue
        tagged = [model for model in candidates if _kind_of(model) == part]
        if tagged:
            candidates = tagged
        else:
            keys.append(str(part))
    return keys, candidates


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        found.extend(_models_in(arg))
    return found


def _kind_of(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("kind")
    args = getattr(field.annotation, "__args__", ()) if field else ()
    return str(args[0]) if args else None

"""Section `canary`: when a canary step promotes, holds or rolls back, criterion by criterion."""

from __future__ import annotations

from typing import Annotated, Literal, Self, TypeAlias

from pydantic import Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from modelops.params.base import Frozen, StepDuration, duration_seconds

SkipReason: TypeAlias = Annotated[
    str | None,
    Field(
        None,
        min_length=3,
        description="Why this criterion is not judged (recorded in every verdict); null: judged.",
    ),
]


class ErrorsCriterion(Frozen):
    """The canary's server-error ratio against stable's, on request counts."""

    max_increase: float = Field(
        0.002,
        gt=0.0,
        lt=1.0,
        description="Largest tolerated canary error ratio minus stable's (0.002: 0.2 points).",
    )
    skip: SkipReason = None


class LatencyCriterion(Frozen):
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


class DistributionCriterion(Frozen):
    """The score distribution canary against stable: the chi-square distance of its buckets,
    PSI to second order."""

    max_psi: float = Field(
        0.1,
        gt=0.0,
        description="Largest tolerated chi-square distance sum((p1 - p2)^2 / p), which PSI "
        "equals to second order.",
    )
    skip: SkipReason = None


class InputsCriterion(Frozen):
    """Each feature's bins canary against stable, judged with the pull-request drift gate's
    statistics and limits (`gates.drift.max_numeric_drift`, `max_categorical_drift`)."""

    skip: SkipReason = None
    # Removed (the inputs take the drift gate's limits); declared only so that an old
    # params.yaml gets a precise error instead of "unknown key". Not in the schema, never dumped.
    max_psi: SkipJsonSchema[None] = Field(None, exclude=True)

    @field_validator("max_psi", mode="before")
    @classmethod
    def _max_psi_was_removed(cls, value: object) -> None:
        raise ValueError(
            "removed: the inputs are judged with the pull-request drift gate's statistics and "
            "limits (Kolmogorov-Smirnov within gates.drift.max_numeric_drift, Cramér's V within "
            "gates.drift.max_categorical_drift), one definition of drift everywhere; delete "
            "this key"
        )


class PositiveRateCriterion(Frozen):
    """The share predicted positive at the threshold, canary against stable."""

    max_difference: float = Field(
        0.05, gt=0.0, lt=1.0, description="Largest tolerated absolute difference."
    )
    skip: SkipReason = None


class QualityCriterion(Frozen):
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


class ShadowCriterion(Frozen):
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


class CanaryParams(Frozen):
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
        description="Predict requests each track needs in a step before a promotion (a bound "
        "already crossed rolls back at once).",
    )
    min_soak: StepDuration = Field(
        "10m", description="Time in a step before a promotion (a crossed bound rolls back at once)."
    )
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
    inputs: InputsCriterion = InputsCriterion()
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

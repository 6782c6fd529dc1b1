"""Section `experiments`: A/B experiments between models, one per real-time environment.

An experiment runs the environment's stable model (the control, named `stable`) beside one or
more candidates from the model store, each unit of assignment (a customer, an account) always
answered by the same variant. It is judged on a business KPI with an always-valid interval, so
a daily look does not inflate false winners (runbooks/ab-experiments.md). Where the section
meets the rest of the file (the environment exists, is real-time, truth comes back) is checked
by `Params`; whether the candidates and the unit field exist, by `modelops release experiment
start`, which reads the store and the models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, Self, TypeAlias

from pydantic import Field, field_validator, model_validator

from modelops.params.base import DNS_LABEL, Frozen
from modelops.params.canary import SkipReason
from modelops.params.deploy import RealtimeEnvironmentParams
from modelops.params.monitoring import MonitoringParams
from modelops.params.prepare import ColumnsParams

CONTROL = "stable"
"""The control variant's name: the environment's stable model."""
_VARIANT_NAME = r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$"
"""As the server takes it (modelops_contract.experiment): it names a folder, an init container
and a label value."""
_HASH = re.compile(r"^[0-9a-f]{64}$")

Kpi: TypeAlias = Literal["business_value", "recall", "precision"]
"""A KPI judged on labelled predictions: value per labelled prediction
(`monitoring.business`), or recall or precision at `evaluate.threshold`."""


class Guardrail(Frozen):
    """A metric a candidate must not make worse by more than `margin` (non-inferiority)."""

    margin: float = Field(gt=0.0, description="Largest tolerated harm, in the metric's unit.")
    skip: SkipReason = None


def _guardrail(margin: float, description: str) -> Guardrail:
    return Field(default_factory=lambda: Guardrail(margin=margin), description=description)


class GuardrailsParams(Frozen):
    """What must not get worse while the primary KPI is judged; each judged per candidate."""

    errors: Guardrail = _guardrail(
        0.002, "Server-error ratio: candidate minus stable at most `margin` (0.002: 0.2 points)."
    )
    latency: Guardrail = _guardrail(
        0.01,
        "Share of requests slower than monitoring.objectives.latency.threshold_seconds: "
        "candidate minus stable at most `margin` (0.01: one point more slow requests).",
    )
    positive_rate: Guardrail = _guardrail(
        0.05,
        "Share of rows predicted positive: within +-`margin` of stable's (a shift either way "
        "changes how many customers get the action).",
    )
    recall: Guardrail = _guardrail(0.05, "Recall on labelled rows: at most `margin` below.")
    precision: Guardrail = _guardrail(0.05, "Precision on labelled rows: at most `margin` below.")
    business_value: Guardrail = _guardrail(
        1.0, "Value per labelled prediction (monitoring.business's unit): at most `margin` below."
    )


class ExperimentParams(Frozen):
    """One experiment: the variants, how units are assigned, what decides and what guards."""

    name: str = Field(
        pattern=DNS_LABEL,
        description="Names the experiment in telemetry, verdicts and commits; with no `salt`, "
        "it seeds the assignment, so a new name reshuffles every unit.",
    )
    unit: str = Field(
        min_length=1,
        description="The request field that identifies a unit of assignment (prepare.columns.id "
        "such as customer_id, or a model input): a unit always meets the same variant. Rows "
        "without it go to stable and are counted apart.",
    )
    variants: dict[str, str] = Field(
        description="Candidate name -> content hash (64 hex) of a published model, e.g. "
        "{b: 3bfc2695...}. The control is the environment's stable model, named `stable`.",
    )
    split: dict[str, int] = Field(
        description="Percent of units per variant, `stable` included; whole numbers adding to "
        "100, e.g. {stable: 50, b: 50}.",
    )
    primary: Kpi = Field(
        "business_value",
        description="The KPI that decides: business_value (monitoring.business per labelled "
        "prediction), recall or precision.",
    )
    minimum_effect: float = Field(
        gt=0.0,
        description="The smallest difference in the primary KPI worth acting on, in its unit "
        "(business value per labelled prediction, or a share: 0.02 is two points of recall). "
        "Plans the duration; a difference surely smaller reads 'no difference'.",
    )
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="False-winner rate, at every look.")
    power: float = Field(0.8, ge=0.5, lt=1.0, description="Chance to find a true minimum_effect.")
    srm_alpha: float = Field(
        0.001,
        gt=0.0,
        lt=0.5,
        description="False-alarm rate of the sample-ratio check, at every look: strict, "
        "because a mismatch stops the experiment (benchmarks/results/experiments.md).",
    )
    covariate: str | None = Field(
        None,
        description="A request field holding the unit's pre-experiment value of the primary "
        "KPI (a number): CUPED removes the variance it explains. null: no adjustment.",
    )
    salt: str | None = Field(
        None,
        min_length=1,
        description="Seeds the assignment hash; null: the experiment's name. Keep it for the "
        "whole experiment: another salt reassigns units.",
    )
    guardrails: GuardrailsParams = GuardrailsParams()
    max_days: int = Field(
        28, ge=1, le=365, description="The longest the plan may ask for; beyond it, refused."
    )

    @field_validator("variants")
    @classmethod
    def _candidates(cls, variants: dict[str, str]) -> dict[str, str]:
        if not variants:
            raise ValueError("name at least one candidate, e.g. {b: <content hash>}")
        for name, digest in variants.items():
            if name == CONTROL:
                raise ValueError(
                    f"'{CONTROL}' is the control (the environment's stable model): name the "
                    "candidates otherwise, e.g. b, c"
                )
            if not re.fullmatch(_VARIANT_NAME, name):
                raise ValueError(
                    f"variant name '{name}': a lowercase letter, then up to 31 of a-z, 0-9, - "
                    "(not ending with -)"
                )
            if not _HASH.fullmatch(str(digest)):
                raise ValueError(
                    f"variant {name}: '{digest}' is not a content hash (64 hex digits); "
                    "`modelops release status --env <env>` lists published models' hashes"
                )
        hashes = list(variants.values())
        if len(set(hashes)) != len(hashes):
            raise ValueError("two variants name the same model: each candidate is another model")
        return variants

    @model_validator(mode="after")
    def _split_covers_the_variants(self) -> Self:
        expected = {CONTROL, *self.variants}
        if set(self.split) != expected:
            missing = sorted(expected - set(self.split))
            extra = sorted(set(self.split) - expected)
            raise ValueError(
                f"split must give a share to exactly {sorted(expected)}"
                + (f"; missing {missing}" if missing else "")
                + (f"; not a variant: {extra}" if extra else "")
            )
        if any(share < 1 for share in self.split.values()):
            raise ValueError(f"every variant needs at least 1% of units, got {self.split}")
        total = sum(self.split.values())
        if total != 100:
            raise ValueError(f"split must add up to 100, it adds up to {total}: {self.split}")
        if self.covariate is not None and self.covariate == self.unit:
            raise ValueError("covariate and unit are the same field: the covariate is a number")
        return self

    @property
    def assignment_salt(self) -> str:
        """What seeds the assignment hash."""
        return self.salt if self.salt is not None else self.name

    @property
    def candidates(self) -> tuple[str, ...]:
        """The candidates' names, in the order the split lists them."""
        return tuple(name for name in self.split if name != CONTROL)


def experiment_problems(
    environment: str,
    experiment: ExperimentParams,
    *,
    environments: Mapping[str, object],
    monitoring: MonitoringParams,
    columns: ColumnsParams,
) -> list[str]:
    """What keeps `experiments.<environment>` from running, each with its fix (empty: none)."""
    key = f"experiments.{environment}"
    if environment not in environments:
        return [
            f"{key}: no such environment in deploy.environments "
            f"({', '.join(sorted(environments))}): run the experiment where its traffic is"
        ]
    problems = []
    if not isinstance(environments[environment], RealtimeEnvironmentParams):
        problems.append(
            f"{key}: {environment} is a batch environment; an experiment needs live traffic "
            "to split by unit (score a candidate beside stable with `modelops score --candidate`)"
        )
    labelled = [experiment.primary, *_judged_quality(experiment)]
    if not monitoring.labels.expected:
        problems.append(
            f"{key}: monitoring.labels.expected is false, so no truth comes back and "
            f"{', '.join(dict.fromkeys(labelled))} cannot be judged: send truth through "
            "/api/v1.0/feedback and set it to true"
        )
    if monitoring.business is None and "business_value" in labelled:
        problems.append(
            f"{key}: business_value needs monitoring.business (what each labelled prediction "
            "is worth): set it, or judge recall or precision, and skip the business_value "
            "guardrail (guardrails.business_value.skip: <why>)"
        )
    for field in ("unit", "covariate"):
        name = getattr(experiment, field)
        if name is not None and name in (columns.label, columns.timestamp):
            problems.append(
                f"{key}.{field}: '{name}' is the label or timestamp column, which requests do "
                "not carry: name the id column (prepare.columns.id) or a model input"
            )
    return problems


def _judged_quality(experiment: ExperimentParams) -> list[str]:
    """The guardrails that need truth, unless skipped."""
    rails = experiment.guardrails
    quality = {"recall": rails.recall, "precision": rails.precision}
    quality["business_value"] = rails.business_value
    return [name for name, rail in quality.items() if rail.skip is None]

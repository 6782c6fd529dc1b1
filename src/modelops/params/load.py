"""`params.yaml` as a whole: the model composing the sections, reading, validating, the schema.

The only reader of the file. A bad value fails here with one line per problem: the key as
written in the YAML, what is wrong, what is allowed (and the nearest key for a typo).
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Self

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from modelops import yamltext
from modelops.errors import ExperimentError, ParamsError
from modelops.io import JSONObject
from modelops.params.base import Frozen
from modelops.params.canary import CanaryParams
from modelops.params.deploy import DeployParams
from modelops.params.evaluate import EvaluateParams
from modelops.params.experiments import ExperimentParams, experiment_problems
from modelops.params.gates import GatesParams
from modelops.params.monitoring import MonitoringParams
from modelops.params.prepare import PrepareParams
from modelops.params.tracking import TrackingParams
from modelops.params.train import TrainParams
from modelops.paths import PARAMS_FILE

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

"""The file this package reads (`paths.ProjectPaths.params_file` joins it to the root)."""


class Params(Frozen):
    """The whole of `params.yaml`."""

    prepare: PrepareParams
    train: TrainParams
    evaluate: EvaluateParams = EvaluateParams()
    gates: GatesParams = GatesParams()
    deploy: DeployParams = DeployParams()
    monitoring: MonitoringParams = MonitoringParams()
    canary: CanaryParams = CanaryParams()
    experiments: dict[str, ExperimentParams] = Field(default_factory=dict)
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

    @model_validator(mode="after")
    def _experiments_fit_their_environments(self) -> Self:
        problems = [
            problem
            for environment, experiment in self.experiments.items()
            for problem in experiment_problems(
                environment,
                experiment,
                environments=self.deploy.environments,
                monitoring=self.monitoring,
                columns=self.prepare.columns,
            )
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def experiment(self, environment: str) -> ExperimentParams:
        """`experiments.<environment>`, or a refusal that says how to declare it.

        Raises:
            ExperimentError: the environment is not declared, or has no experiment.
        """
        if environment not in self.deploy.environments:
            raise ExperimentError(
                f"unknown environment '{environment}'; params.yaml declares "
                f"{sorted(self.deploy.environments)}"
            )
        if environment not in self.experiments:
            raise ExperimentError(
                f"params.yaml declares no experiment for {environment}: add experiments."
                f"{environment} (name, unit, variants, split, minimum_effect; runbooks/"
                "ab-experiments.md) and commit it first"
            )
        return self.experiments[environment]


def load_params(path: Path) -> Params:
    """Read and validate a params file.

    Raises:
        ParamsError: the file is missing, is not YAML, or does not match the schema; the message
            names every bad key and what is allowed there.
    """
    try:
        raw = yamltext.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found; run from the project root") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    return parse_params(raw, source=str(path))


def parse_params(raw: object, *, source: str = PARAMS_FILE) -> Params:
    """Validate an already-parsed params mapping; see `load_params`."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe(error)}" for error in exc.errors())
        raise ParamsError(f"{source}: {exc.error_count()} invalid value(s):\n{problems}") from None


def params_schema() -> JSONObject:
    """The JSON schema of `params.yaml`."""
    return Params.model_json_schema()


def _describe(error: ErrorDetails) -> str:
    """One line per pydantic error: the key as written in YAML, what is wrong, what is allowed."""
    keys, models = _walk(tuple(error["loc"]))
    key = ".".join(keys) or "(top level)"
    if error["type"] == "extra_forbidden":
        # Keys declared only to be refused with a reason (excluded from dumps) are not offered.
        fields = models[0].model_fields.items() if len(models) == 1 else ()
        allowed = sorted(name for name, field in fields if not field.exclude)
        hint = difflib.get_close_matches(keys[-1], allowed, n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        return f"{key}: unknown key{suggestion}; allowed here: {', '.join(allowed)}"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    if not keys:  # a check across sections: its message names the keys it is about
        return message
    if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        return f"{key}: {message}"
    given = error.get("input")
    if isinstance(given, dict):  # a whole section: repeating it would hide the message
        return f"{key}: {message}"
    return f"{key}: {message} (got {given!r})"


def _walk(loc: tuple[int | str, ...]) -> tuple[list[str], list[type[BaseModel]]]:
    """Follow an error location through the models.

    Returns the keys as the user wrote them (pydantic adds the tag of a discriminated union, such
    as the model kind, which is not a key in the file) and the models owning the last key.
    """
    keys: list[str] = []
    candidates: list[type[BaseModel]] = [Params]
    mapping_key = False  # the part after a dict-typed field is a key the user chose (a name)
    for part in loc:
        if isinstance(part, int) or mapping_key:
            keys.append(str(part))
            mapping_key = False
            continue
        owners = [model for model in candidates if part in model.model_fields]
        if owners:
            keys.append(str(part))
            annotation = owners[0].model_fields[part].annotation
            candidates = _models_in(annotation)
            mapping_key = typing.get_origin(annotation) is dict
            continue
        tagged = [model for model in candidates if part in _tags_of(model)]
        if tagged:
            candidates = tagged
        else:
            keys.append(str(part))
    return keys, candidates


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        found.extend(_models_in(arg))
    return found


_DISCRIMINATORS = ("kind", "strategy")
"""Fields whose value picks the model of a discriminated union (train.model, an environment)."""


def _tags_of(model: type[BaseModel]) -> set[str]:
    """The values of `model`'s discriminator (pydantic puts the one given into error paths)."""
    fields = [model.model_fields.get(name) for name in _DISCRIMINATORS]
    return {str(arg) for f in fields if f for arg in getattr(f.annotation, "__args__", ())}

"""An A/B experiment served in one predictor: every variant's model, and each row's variant.

Seldon Core v1 splits traffic per request, so a unit (a customer) would see one model, then
another. Here every pod holds every variant's model (the rendered manifests download each into
/mnt/models/<variant>) and routes each row by its unit's hash (`modelops_contract.experiment`):
the same unit gets the same variant in every replica and after every restart, with no state.

- `read_arms`: each variant's directory, read once and checked against its model_hash, with
  the same inputs and classes as stable's;
- `Served`: a request's unit and covariate fields taken out and each row assigned
  (`modelops_serving.assignment`), each variant's rows scored by its model and counted under
  its model_version, the answer's tags listing each row's variant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from flask import g, has_request_context
from modelops_contract import (
    FEEDBACK,
    PREDICT,
    Experiment,
    ExperimentError,
    parse_experiment,
)
from modelops_contract.experiment import (
    EXPERIMENT_TAG,
    MODEL_VERSIONS_TAG,
    VARIANTS_TAG,
    Variant,
)

from modelops_serving import telemetry
from modelops_serving.artifact import Artifact, ArtifactError, read_artifact
from modelops_serving.assignment import Extras, Rows, assign_rows, split_fields, subset
from modelops_serving.experiment_telemetry import ExperimentTelemetry
from modelops_serving.loaded import LoadedModel
from modelops_serving.request_log import RequestLog
from modelops_serving.validation import SELDON, Batch, Fields

logger = logging.getLogger(__name__)


class ExperimentSetupError(ValueError):
    """An experiment whose variants this server cannot serve; the message says what to fix."""


def read_experiment(
    raw: str, *, base: Path, model_hash: str, model_version: str
) -> tuple[Experiment, tuple[Artifact, ...]]:
    """The `experiment` parameter, and each variant's directory read and verified
    (`read_arms`); raises ExperimentSetupError naming what to fix."""
    try:
        experiment = parse_experiment(raw)
    except ExperimentError as exc:
        raise ExperimentSetupError(str(exc)) from None
    return experiment, read_arms(
        experiment, base=base, model_hash=model_hash, model_version=model_version
    )


def read_arms(
    experiment: Experiment, *, base: Path, model_hash: str, model_version: str
) -> tuple[Artifact, ...]:
    """Each variant's model directory (relative to `base`), verified against its model_hash.

    A directory two variants share (an A/A test) is read once. `model_hash` and
    `model_version`, the parameters of a server without an experiment, must be stable's when
    given: the experiment says which model is which.
    """
    control = experiment.control
    for given, field in ((model_hash, "model_hash"), (model_version, "model_version")):
        if given and given != getattr(control, field):
            raise ExperimentSetupError(
                f"the {field} parameter ({given}) is not the experiment's stable variant's "
                f"({getattr(control, field)}): drop it, or make the two the same"
            )
    read: dict[tuple[Path, str], Artifact] = {}
    artifacts = []
    for variant in experiment.variants:
        directory = base / variant.directory
        if (directory, variant.model_hash) not in read:
            read[(directory, variant.model_hash)] = _verified(variant, directory)
        artifacts.append(read[(directory, variant.model_hash)])
    stable = artifacts[experiment.position(control.name)]
    for variant, artifact in zip(experiment.variants, artifacts, strict=True):
        _same_shape(variant, artifact, stable)
    return tuple(artifacts)


def _verified(variant: Variant, directory: Path) -> Artifact:
    try:
        artifact = read_artifact(directory, expected_hash=variant.model_hash)
    except ArtifactError as exc:
        raise ExperimentSetupError(
            f"experiment variant {variant.name!r}: {exc}. Its directory must hold the "
            f"published model {variant.model_hash} (the variant's model_hash): deploy that "
            "model there, or correct the variant"
        ) from None
    logger.info(
        "experiment variant %s: %s, content hash verified (%s)",
        variant.name,
        directory,
        artifact.content_hash,
    )
    return artifact


def _same_shape(variant: Variant, artifact: Artifact, stable: Artifact) -> None:
    """A request is scored by any variant: every one takes stable's inputs, gives its classes."""
    differs = (
        "inputs"
        if set(artifact.columns) != set(stable.columns)
        else "classes"
        if (artifact.classes, artifact.positive_label) != (stable.classes, stable.positive_label)
        else ""
    )
    if differs:
        raise ExperimentSetupError(
            f"experiment variant {variant.name!r} ({artifact.path}) has other {differs} than "
            f"the stable variant ({stable.path}): every variant scores the same requests, so "
            "each must take the same inputs (names and types) and predict the same classes"
        )


@dataclass
class Arm:
    """A variant as this server runs it: its verified directory, its model once loaded, and
    its own telemetry and request log (None when off), under its model_version."""

    variant: Variant
    artifact: Artifact
    telemetry: telemetry.Telemetry | None
    request_log: RequestLog | None
    model: LoadedModel | None = None


class Served:
    """The experiment this server runs: scores each row with its variant, counts it there."""

    def __init__(
        self,
        experiment: Experiment,
        arms: Sequence[Arm],
        *,
        inputs: frozenset[str],
    ) -> None:
        self.experiment = experiment
        self.arms = tuple(arms)
        self.inputs = inputs
        control = self.arms[experiment.position(experiment.control.name)]
        artifact = control.artifact
        self.positive = artifact.classes.index(artifact.positive_label)
        recorder = control.telemetry
        self.series = (
            None if recorder is None else ExperimentTelemetry(experiment, recorder=recorder)
        )
        """The experiment's own series (None when telemetry is off)."""

    @classmethod
    def build(
        cls,
        experiment: Experiment,
        artifacts: Sequence[Artifact],
        *,
        control: tuple[telemetry.Telemetry | None, RequestLog | None],
        telemetry_of: Callable[[Artifact, str], telemetry.Telemetry | None],
        log_of: Callable[[RequestLog, str], RequestLog | None],
    ) -> Served:
        """The experiment with each variant's telemetry and request log: the control's are
        the server's own (`control`); the others' are made alike under their model_version,
        when the server's are on."""
        arms = []
        recorder, log = control
        for variant, artifact in zip(experiment.variants, artifacts, strict=True):
            own = variant.name == experiment.control.name
            arms.append(
                Arm(
                    variant,
                    artifact,
                    recorder
                    if own or recorder is None
                    else telemetry_of(artifact, variant.model_version),
                    log if own or log is None else log_of(log, variant.model_version),
                )
            )
        stable = artifacts[experiment.position(experiment.control.name)]
        return cls(experiment, arms, inputs=frozenset(stable.names))

    def metadata(self) -> dict[str, str]:
        """The experiment's entries of `/metadata`'s `custom` (strings only there)."""
        running = self.experiment
        custom = {"experiment": running.name, "experiment_unit": running.unit}
        if running.covariate is not None:
            custom["experiment_covariate"] = running.covariate
        return custom

    def load(self, load: Callable[[Artifact], LoadedModel]) -> None:
        """Load each variant's model (once per directory), in each worker after the fork."""
        loaded: dict[int, LoadedModel] = {}
        for arm in self.arms:
            key = id(arm.artifact)
            if key not in loaded:
                loaded[key] = load(arm.artifact)
            arm.model = loaded[key]
            logger.info(
                "variant %s (%s, %s%%): scoring path %s",
                arm.variant.name,
                arm.variant.model_version,
                arm.variant.share,
                arm.model.scoring.path,
            )
            if arm.telemetry is not None:
                arm.telemetry.model_info(
                    model_hash=arm.artifact.content_hash,
                    data_version=arm.artifact.data_version,
                    trained_at=arm.artifact.trained_at,
                )
        if self.series is not None:
            self.series.started()

    def split(self, payload: Any, *, max_rows: int, fields: Fields = SELDON) -> tuple[Any, Extras]:
        return split_fields(payload, self.experiment, self.inputs, max_rows=max_rows, fields=fields)

    def assign(self, extras: Extras, *, rows: int, fields: Fields = SELDON) -> Rows:
        """Each row's variant; the request is then counted under each variant it went to."""
        assigned = assign_rows(self.experiment, extras, rows=rows, fields=fields)
        if has_request_context():
            touched = [
                (self.arms[index].telemetry, rows if chosen is None else int(chosen.size))
                for index, chosen in assigned.groups()
                if self.arms[index].telemetry is not None
            ]
            setattr(g, telemetry.VARIANTS, touched)
        return assigned

    def proba(self, batch: Batch, rows: Rows) -> npt.NDArray[np.float64]:
        """Each row's class probabilities from its variant's model, in the request's order."""
        groups = rows.groups()
        if len(groups) == 1:
            return self._model(groups[0][0]).proba(batch.columns)
        ordered = np.empty((rows.positions.size, len(self.arms[0].artifact.classes)))
        for index, chosen in groups:
            ordered[chosen] = self._model(index).proba(subset(batch.columns, chosen))
        return ordered

    def predicted(self, batch: Batch, rows: Rows, ordered: npt.NDArray[np.float64]) -> None:
        """Count a predicted batch: each variant's rows under it, and the experiment's series."""
        positive = ordered[:, self.positive]
        for index, chosen in rows.groups():
            arm = self.arms[index]
            columns = subset(batch.columns, chosen)
            scores = positive if chosen is None else positive[chosen]
            if arm.telemetry is not None:
                arm.telemetry.predictions(columns, scores)
            if arm.request_log is not None:
                arm.request_log.rows(columns, scores.tolist())
        if self.series is not None:
            self.series.rows(PREDICT, rows.positions, rows.assigned)
            self.series.units(rows.units)

    def fed_back(
        self,
        actual: Sequence[str],
        positive: npt.NDArray[np.float64],
        answered: npt.NDArray[np.float64] | None,
        rows: Rows,
    ) -> None:
        """Count feedback: each variant's rows under it; its rows with a unit by cell, with
        their covariate's sums."""
        for index, chosen in rows.groups():
            arm = self.arms[index]
            truth = actual if chosen is None else [actual[i] for i in chosen.tolist()]
            scores = positive if chosen is None else positive[chosen]
            if arm.telemetry is not None:
                arm.telemetry.feedback(truth, scores)
                if answered is not None:
                    arm.telemetry.answers(scores, answered if chosen is None else answered[chosen])
            if self.series is not None:
                assigned = rows.assigned if chosen is None else rows.assigned[chosen]
                values = rows.covariates
                if values is not None and chosen is not None:
                    values = values[chosen]
                self.series.feedback(index, truth, scores, assigned, values)
        if self.series is not None:
            self.series.rows(FEEDBACK, rows.positions, rows.assigned)

    def tags(self, rows: Rows) -> dict[str, Any]:
        """The answer's `meta.tags` entries of the experiment: each row's variant and version."""
        variants = self.experiment.variants
        positions = rows.positions.tolist()
        return {
            EXPERIMENT_TAG: self.experiment.name,
            VARIANTS_TAG: [variants[p].name for p in positions],
            MODEL_VERSIONS_TAG: [variants[p].model_version for p in positions],
        }

    def health(self, columns: Mapping[str, Any]) -> int:
        """Rows every variant's model scored from `columns` (raises when one cannot)."""
        models = {id(self._model(i)): self._model(i) for i in range(len(self.arms))}
        return min(int(model.proba(columns).shape[0]) for model in models.values())

    def _model(self, index: int) -> LoadedModel:
        model = self.arms[index].model
        assert model is not None, "load() runs before the first request"
        return model

"""A release file's document: the YAML shape of a `Release`, written and read back.

Reading is where a file edited by hand, truncated or written by another tool is caught: a
refusal names the file and the field (`stable.model_hash: not a sha256 hex digest`), never a
traceback, and nothing renders from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NotRequired, TypedDict, TypeVar, cast, get_args

from modelops.errors import ReleaseError
from modelops.releases.state import (
    CONTENT_HASH,
    Action,
    Bundle,
    Canary,
    Event,
    Experiment,
    ModelVersion,
    Release,
    Variant,
)


class BundleDocument(TypedDict):
    """An edge bundle's archive: its sha256, format and model name."""

    sha256: str
    format: str
    name: str


class ModelDocument(TypedDict):
    """A `ModelVersion` in a release file."""

    version: str
    model_uri: str
    model_hash: str
    data_version: str
    git_commit: str
    mlflow_run_id: str | None
    training_inputs: str | None
    bundle: NotRequired[BundleDocument]
    """Written only for an edge environment's bundle."""


class CanaryDocument(ModelDocument):
    """The canary (or shadow) of a release file: its weight, then its model."""

    weight: int
    shadow: NotRequired[bool]
    """Written only for a shadow (true)."""


class EventDocument(TypedDict):
    """One step of a release file's history."""

    at: str
    by: str
    action: Action
    version: str
    traffic: dict[str, int]
    reason: str
    verdict: NotRequired[str]
    """Written only when a verdict document stands behind the step."""
    variants: NotRequired[dict[str, str]]
    """Written only for an experiment's step: each variant's model version."""


class VariantDocument(ModelDocument):
    """An experiment's arm: its name and share, then its model."""

    name: str
    share: int


class ExperimentDocument(TypedDict):
    """The experiment of a release file."""

    name: str
    salt: str
    unit: str
    covariate: str | None
    variants: list[VariantDocument]


class ReleaseDocument(TypedDict):
    """A release file, `manifests/releases/<env>.yaml`, in key order."""

    environment: str
    stable: ModelDocument | None
    canary: CanaryDocument | None
    experiment: NotRequired[ExperimentDocument]
    """Written only while an experiment runs."""
    traffic: dict[str, int]
    previous: list[ModelDocument]
    rolled_back: list[ModelDocument]
    history: list[EventDocument]


def to_document(release: Release) -> ReleaseDocument:
    """The release file's content (stable key order, so diffs stay small).

    `shadow: true` is written only for a shadow, so a canary's entry reads as it always did.
    """
    head: dict[str, object] = {
        "environment": release.environment,
        "stable": _model_document(release.stable) if release.stable else None,
        "canary": _canary_document(release.canary) if release.canary else None,
    }
    if release.experiment is not None:
        head["experiment"] = _experiment_document(release.experiment)
    tail = {
        "traffic": release.traffic,
        "previous": [_model_document(model) for model in release.previous],
        "rolled_back": [_model_document(model) for model in release.rolled_back],
        "history": [_event_document(event) for event in release.history],
    }
    return cast(ReleaseDocument, head | tail)


def _experiment_document(experiment: Experiment) -> ExperimentDocument:
    return {
        "name": experiment.name,
        "salt": experiment.salt,
        "unit": experiment.unit,
        "covariate": experiment.covariate,
        "variants": [
            cast(VariantDocument, {"name": v.name, "share": v.share, **_model_document(v.model)})
            for v in experiment.variants
        ],
    }


def _experiment(value: Any) -> Experiment:
    document = _mapping(value, "experiment")
    arms = _field(lambda: list(document.pop("variants")), "experiment.variants")
    variants = tuple(_variant(arm, f"experiment.variants[{i}]") for i, arm in enumerate(arms))
    return _field(lambda: Experiment(**document, variants=variants), "experiment")


def _variant(value: Any, name: str) -> Variant:
    arm = _mapping(value, name)
    label = _field(lambda: str(arm.pop("name")), f"{name}.name")
    share = _field(lambda: int(arm.pop("share")), f"{name}.share")
    return Variant(label, _model(arm, name), share)


def _model_document(model: ModelVersion) -> ModelDocument:
    document: ModelDocument = {
        "version": model.version,
        "model_uri": model.model_uri,
        "model_hash": model.model_hash,
        "data_version": model.data_version,
        "git_commit": model.git_commit,
        "mlflow_run_id": model.mlflow_run_id,
        "training_inputs": model.training_inputs,
    }
    if model.bundle is not None:
        bundle = model.bundle
        document["bundle"] = {"sha256": bundle.sha256, "format": bundle.format, "name": bundle.name}
    return document


def _canary_document(canary: Canary) -> CanaryDocument:
    document: CanaryDocument = {
        "weight": canary.weight,
        "shadow": True,
        **_model_document(canary.model),
    }
    if not canary.shadow:
        del document["shadow"]
    return document


def _event_document(event: Event) -> EventDocument:
    document: EventDocument = {
        "at": event.at,
        "by": event.by,
        "action": event.action,
        "version": event.version,
        "traffic": dict(event.traffic),
        "reason": event.reason,
    }
    if event.verdict is not None:
        document["verdict"] = event.verdict
    if event.variants is not None:
        document["variants"] = dict(event.variants)
    return document


def from_document(document: Any, *, source: str) -> Release:
    """Parse a release file; refuses one whose traffic does not match its models.

    `document` is the file's YAML as parsed, whatever it holds (Any): this is where it is
    checked, and a refusal names the file and the field.
    """
    if not isinstance(document, dict):
        raise ReleaseError(
            f"{source}: not a release file (a mapping of environment, stable, canary and "
            f"history; got {type(document).__name__}); restore it from git"
        )
    try:
        canary = None
        if document.get("canary"):
            canary_doc = _mapping(document["canary"], "canary")
            weight = _field(lambda: int(canary_doc.pop("weight")), "canary.weight")
            shadow = canary_doc.pop("shadow", False)
            if not isinstance(shadow, bool):
                raise ValueError(f"canary.shadow is true or false, got {shadow!r}")
            canary = Canary(model=_model(canary_doc, "canary"), weight=weight, shadow=shadow)
        stable = _model(document["stable"], "stable") if document.get("stable") else None
        release = Release(
            environment=_field(lambda: str(document["environment"]), "environment"),
            stable=stable,
            canary=canary,
            experiment=_experiment(document["experiment"]) if document.get("experiment") else None,
            previous=tuple(
                _model(m, f"previous[{i}]") for i, m in enumerate(document.get("previous") or ())
            ),
            rolled_back=tuple(
                _model(m, f"rolled_back[{i}]")
                for i, m in enumerate(document.get("rolled_back") or ())
            ),
            history=tuple(
                _event(event, f"history[{i}]")
                for i, event in enumerate(document.get("history") or ())
            ),
        )
        unknown = sorted({e.action for e in release.history} - set(get_args(Action)))
        if unknown:
            raise ValueError(f"history: unknown action(s) {unknown}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReleaseError(f"{source}: not a release file ({exc}); restore it from git") from None
    experiment = release.experiment
    if experiment is not None and (stable is None or canary is not None):
        raise ReleaseError(f"{source}: an experiment runs beside a stable model and no canary")
    if experiment is not None and (
        sum(experiment.split.values()) != 100 or experiment.variants[0].model != stable
    ):
        raise ReleaseError(
            f"{source}: an experiment's shares add up to 100 and its first variant is the "
            "stable model; release files are written by `modelops release`, not by hand"
        )
    if canary is not None and stable is None:
        raise ReleaseError(f"{source}: a canary needs a stable model beside it")
    if canary is not None and canary.shadow and canary.weight != 0:
        raise ReleaseError(f"{source}: a shadow takes no traffic: its weight is 0")
    if canary is not None and not canary.shadow and not 0 < canary.weight < 100:
        raise ReleaseError(f"{source}: a canary needs a stable model and a weight from 1 to 99")
    if document.get("traffic", release.traffic) != release.traffic:
        raise ReleaseError(
            f"{source}: traffic {document['traffic']} does not match the models "
            f"({release.traffic}); release files are written by `modelops release`, not by hand"
        )
    return release


_T = TypeVar("_T")


def _field(read: Callable[[], _T], name: str) -> _T:
    """`read()`, with a failure that names the field it was reading."""
    try:
        return read()
    except KeyError as exc:
        raise ValueError(f"{name}: missing {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{name}: {exc}") from None


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name}: a mapping, got {type(value).__name__}")
    return dict(value)


def _event(value: Any, name: str) -> Event:
    return _field(lambda: Event(**_mapping(value, name)), name)


def _model(value: Any, name: str) -> ModelVersion:
    """A model of a release file; its hash must be a sha256 hex digest, before anything renders."""
    fields = _mapping(value, name)
    bundle, raw_bundle = None, fields.pop("bundle", None)
    if raw_bundle is not None:
        raw = _mapping(raw_bundle, f"{name}.bundle")
        bundle = _field(lambda: Bundle(**raw), f"{name}.bundle")
        if not isinstance(bundle.sha256, str) or not CONTENT_HASH.match(bundle.sha256):
            raise ValueError(f"{name}.bundle.sha256: not a sha256 hex digest ({bundle.sha256!r})")
    model = _field(lambda: ModelVersion(**fields, bundle=bundle), name)
    if not isinstance(model.model_hash, str) or not CONTENT_HASH.match(model.model_hash):
        raise ValueError(f"{name}.model_hash: not a sha256 hex digest ({model.model_hash!r})")
    return model

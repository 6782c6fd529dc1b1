"""The release state of one environment and the only ways it may change (pure functions).

States: no release yet; a stable model alone; a canary at some traffic weight beside the stable
model; a shadow beside it (a canary at weight 0 that Seldon sends a copy of every request, whose
answers no one sees). A deploy of a new model makes it stable (the `direct` strategy, or the
first model of an environment), starts a canary at the first step, or with `shadow_first` starts
a shadow; promote moves a shadow to the first step and a canary to the next one, and past the
last one makes it the stable model; rollback removes the canary or shadow; restore makes a
model that was stable before the stable one again. A request that would change nothing returns
`Unchanged` with the reason (a value, not an error); anything illegal raises `ReleaseError` with
what to do instead, and the release is left as it was.

A release file is only ever written by these functions, so its state must follow from its
history: `check_release` replays the history and refuses a file edited by hand.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import (
    Literal,
    TypeAlias,
    assert_never,
)

from modelops.errors import ReleaseError

Action: TypeAlias = Literal[
    "deploy",
    "start-shadow",
    "start-canary",
    "promote",
    "complete",
    "rollback",
    "restore",
    "start-experiment",
    "conclude-experiment",
    "stop-experiment",
]
Strategy: TypeAlias = Literal["direct", "canary", "batch", "edge"]
"""How a new model reaches an environment (`deploy.environments.<env>.strategy`)."""
KEEP_PREVIOUS = 5
"""Replaced stable models remembered per environment, so `restore` can bring one back."""
CONTENT_HASH = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Unchanged:
    """A request that would change nothing, and why (the command says so and succeeds)."""

    reason: str


_HAND_EDITED = (
    "Release files are written by `modelops release` only: restore it from git (`git log -- "
    "{source}` lists its commits, `git checkout <commit> -- {source}` brings one back) and make "
    "the change with a command"
)


@dataclass(frozen=True)
class Bundle:
    """An edge bundle archive (an edge environment's model), published under its sha256."""

    sha256: str
    format: str
    name: str


@dataclass(frozen=True)
class ModelVersion:
    """A published model, pinned: where it is (immutable), what it is, where it came from."""

    version: str
    model_uri: str
    model_hash: str
    data_version: str
    git_commit: str
    mlflow_run_id: str | None = None
    training_inputs: str | None = None
    """Fingerprint of what trained it (data, code, params in dvc.lock): two trainings from the
    same inputs are the same model even though their files differ (timestamps, ids)."""
    bundle: Bundle | None = None
    """In an edge environment: the archive devices download (`model_uri` is its address)."""

    def same_model(self, other: ModelVersion) -> bool:
        """The same bytes, or trained from the same inputs; bundles: the same archive (a new
        export of a model, say a fixed conversion, is a new release)."""
        if self.bundle is not None or other.bundle is not None:
            return self.bundle == other.bundle
        return self.model_hash == other.model_hash or (
            self.training_inputs is not None and self.training_inputs == other.training_inputs
        )


@dataclass(frozen=True)
class Canary:
    """A model taking `weight` percent of the traffic beside the stable one.

    A `shadow` takes none (weight 0): Seldon mirrors every request to it and discards its
    answers, so it can be judged against the stable model before any user depends on it.
    """

    model: ModelVersion
    weight: int
    shadow: bool = False

    @property
    def role(self) -> str:
        """The predictor's name and track: `shadow` or `canary`."""
        return "shadow" if self.shadow else "canary"

    def describe(self) -> str:
        """It in words, as in "a shadow (v2, mirrored)" or "a canary (v2 at 10%)"."""
        if self.shadow:
            return f"a shadow ({self.model.version}, mirrored)"
        return f"a canary ({self.model.version} at {self.weight}%)"


@dataclass(frozen=True)
class Event:
    """One step of the history: what happened, to which version, who did it, when and why."""

    at: str
    by: str
    action: Action
    version: str
    traffic: dict[str, int]
    reason: str
    verdict: str | None = None
    """The verdict this step followed (a path under manifests/releases/), if any."""
    variants: dict[str, str] | None = None
    """An experiment's step: each variant's model version (`version` is the winner's, or the
    stable model's)."""


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment: a model and its percent of the units."""

    name: str
    model: ModelVersion
    share: int


@dataclass(frozen=True)
class Experiment:
    """An A/B experiment: the stable model (the control, first) and candidates, each unit of
    assignment always answered by the same one (a hash of the unit and the salt)."""

    name: str
    salt: str
    unit: str
    variants: tuple[Variant, ...]
    covariate: str | None = None

    @property
    def split(self) -> dict[str, int]:
        """Percent of units per variant, the control first."""
        return {variant.name: variant.share for variant in self.variants}

    @property
    def versions(self) -> dict[str, str]:
        """Each variant's model version."""
        return {variant.name: variant.model.version for variant in self.variants}

    def describe(self) -> str:
        """It in words, as in "experiment offer-v2 (stable v1 50%, b v2 50%)"."""
        arms = ", ".join(f"{v.name} {v.model.version} {v.share}%" for v in self.variants)
        return f"experiment {self.name} ({arms})"


@dataclass(frozen=True)
class Change:
    """Who asks for a change, when, and why (recorded in the history: a reason is required)."""

    at: str
    by: str
    reason: str
    verdict: str | None = None

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ReleaseError("every release step records a reason: give --reason")


@dataclass(frozen=True)
class Release:
    """An environment's models and traffic, and how they got there."""

    environment: str
    stable: ModelVersion | None = None
    canary: Canary | None = None
    experiment: Experiment | None = None
    previous: tuple[ModelVersion, ...] = ()
    rolled_back: tuple[ModelVersion, ...] = ()
    """Models taken out of this environment (rolled back, or restored away from): a deploy
    skips them unless retried on purpose."""
    history: tuple[Event, ...] = ()

    @property
    def traffic(self) -> dict[str, int]:
        """Percent of requests per predictor; stable and canary always add up to 100.

        A shadow is listed at 0: it answers mirrored copies of the requests, none of its own.
        """
        if self.stable is None:
            return {}
        if self.experiment is not None:
            return self.experiment.split
        if self.canary is None:
            return {"stable": 100}
        return {"stable": 100 - self.canary.weight, self.canary.role: self.canary.weight}

    def describe(self) -> str:
        """One line: what serves this environment now."""
        if self.stable is None:
            return f"{self.environment}: no release yet"
        if self.experiment is not None:
            return f"{self.environment}: {self.experiment.describe()}"
        if self.canary is None:
            return f"{self.environment}: stable {self.stable.version} (100%)"
        if self.canary.shadow:
            return (
                f"{self.environment}: stable {self.stable.version} (100%), "
                f"shadow {self.canary.model.version} (mirrored, 0%)"
            )
        return (
            f"{self.environment}: stable {self.stable.version} ({100 - self.canary.weight}%), "
            f"canary {self.canary.model.version} ({self.canary.weight}%)"
        )


def deploy(
    release: Release,
    model: ModelVersion,
    *,
    strategy: Strategy,
    steps: Sequence[int],
    change: Change,
    retry: bool = False,
    shadow_first: bool = False,
) -> Release | Unchanged:
    """A new model for this environment: stable at once, a canary at the first step, or a shadow.

    `direct` and `batch` make it the stable model at once (a batch environment has no traffic
    to split); `edge` is `canary` over percents of a fleet of devices, without a shadow.

    With the `canary` strategy and a stable model to compare with, `shadow_first` starts it as a
    shadow (mirrored requests, 0% of the answers); the first promote makes it a canary. A model
    already serving (same bytes or same training inputs) is unchanged, and so is one that was
    taken out of this environment (rolled back, or restored away from), unless `retry` says to
    try it again on purpose; a retried model keeps the commit that trained it.
    """
    require_immutable(model)
    where = release.environment
    refuse_during_experiment(release, "deploy a new model")
    if release.canary is not None:
        if release.canary.model.same_model(model):
            role = release.canary.role
            return Unchanged(_already(model, release.canary.model, f"the {role} in {where}"))
        raise ReleaseError(
            f"{where} is running {release.canary.describe()}: promote or roll it back first "
            f"(modelops release promote|rollback --env {where})"
        )
    if release.stable is not None and release.stable.same_model(model):
        return Unchanged(_already(model, release.stable, f"the stable model in {where}"))
    withdrawn = [m for m in release.rolled_back if m.same_model(model)]
    if withdrawn and not retry:
        earlier = withdrawn[0]
        which = (
            ""
            if earlier.model_hash == model.model_hash
            else f" (trained from the same inputs as {earlier.version})"
        )
        return Unchanged(
            f"{model.version}{which} was taken out of {where} (rolled back, or restored away "
            f"from): not deployed again by itself. Merge a fix, or retry it on purpose: "
            f"modelops release deploy --env {where} --retry --reason ..."
        )
    if withdrawn:
        earlier = withdrawn[0]
        model = replace(
            model,
            git_commit=earlier.git_commit,
            mlflow_run_id=model.mlflow_run_id or earlier.mlflow_run_id,
        )
    release = replace(
        release, rolled_back=tuple(m for m in release.rolled_back if not m.same_model(model))
    )
    first_weight = steps[0] if steps else 100
    if strategy not in ("canary", "edge") or release.stable is None:
        return record_step(replace_stable(release, model), "deploy", model, change)
    if shadow_first:
        # Even with steps [100]: mirrored first, then all of the traffic at the first promote.
        shadowed = replace(release, canary=Canary(model=model, weight=0, shadow=True))
        return record_step(shadowed, "start-shadow", model, change)
    if first_weight >= 100:
        return record_step(replace_stable(release, model), "deploy", model, change)
    started = replace(release, canary=Canary(model=model, weight=first_weight))
    return record_step(started, "start-canary", model, change)


def promote(release: Release, *, steps: Sequence[int], change: Change) -> Release:
    """Move the canary to the next traffic step; past the last one it becomes the stable model.

    A shadow (weight 0) becomes a canary at the first step, taking real traffic from then on.
    """
    refuse_during_experiment(release, "promote")
    canary = release.canary
    if canary is None:
        raise ReleaseError(
            f"{release.environment} has no canary to promote: deploy a new model first "
            f"({release.describe()})"
        )
    step = next_step(canary.weight, steps)
    if step is None:
        completed = replace(replace_stable(release, canary.model), canary=None)
        return record_step(completed, "complete", canary.model, change)
    moved = replace(release, canary=replace(canary, weight=step, shadow=False))
    return record_step(moved, "promote", canary.model, change)


def next_step(weight: int, steps: Sequence[int]) -> int | None:
    """The canary weight after `weight`, or None when the next promote makes it stable.

    A shadow's weight is 0, so its next step is the first one.
    """
    following = [step for step in steps if step > weight]
    return following[0] if following and following[0] < 100 else None


def rollback(release: Release, *, change: Change) -> Release:
    """Remove the canary (or shadow): the stable model takes all traffic again."""
    refuse_during_experiment(release, "roll back")
    canary = release.canary
    if canary is None:
        raise ReleaseError(
            f"{release.environment} has no canary to roll back ({release.describe()}). To go "
            "back to an earlier model, deploy it: the history lists their versions and URIs"
        )
    rolled_back = (canary.model, *release.rolled_back)[:KEEP_PREVIOUS]
    return record_step(
        replace(release, canary=None, rolled_back=rolled_back), "rollback", canary.model, change
    )


def restore(release: Release, version: str, *, change: Change) -> Release | Unchanged:
    """Make a previously stable model (by version) the stable model again, at 100%.

    The model it replaces is taken out of the environment: merging again later does not bring
    it back as a canary (only `deploy --retry` does).
    """
    refuse_during_experiment(release, "restore a model")
    if release.canary is not None:
        raise ReleaseError(
            f"{release.environment} is running {release.canary.describe()}: roll it back first "
            f"(modelops release rollback --env {release.environment})"
        )
    if release.stable is not None and release.stable.version == version:
        return Unchanged(f"{version} is already the stable model in {release.environment}")
    found = [model for model in release.previous if model.version == version]
    if not found:
        known = [model.version for model in release.previous] or "none"
        raise ReleaseError(
            f"{release.environment} has no previous model {version}; it can restore {known}"
        )
    restored = found[0]
    withdrawn = release.rolled_back
    if release.stable is not None:
        withdrawn = (release.stable, *withdrawn)
    release = replace(
        release,
        rolled_back=tuple(m for m in withdrawn if not m.same_model(restored))[:KEEP_PREVIOUS],
    )
    return record_step(replace_stable(release, restored), "restore", restored, change)


def refuse_during_experiment(release: Release, what: str) -> None:
    """An experiment owns the environment's traffic until it is concluded or stopped."""
    if release.experiment is not None:
        where = release.environment
        raise ReleaseError(
            f"{where} is running {release.experiment.describe()}: cannot {what} until it ends. "
            f"Conclude it (modelops release experiment conclude --env {where} --verdict ...) "
            f"or stop it (modelops release experiment stop --env {where} --reason ...)"
        )


def require_immutable(model: ModelVersion) -> None:
    """A release may only point at a content-addressed model: its URI ends with its hash (a
    bundle's: with `<sha256>.tar.gz`)."""
    if not CONTENT_HASH.match(model.model_hash):
        raise ReleaseError(f"{model.version}: model_hash must be a sha256 hex digest")
    bundle = model.bundle
    if bundle is not None and CONTENT_HASH.match(bundle.sha256):
        if model.model_uri.endswith(f"/{bundle.sha256}.tar.gz"):
            return
        raise ReleaseError(f"bundle URI {model.model_uri} must end with its sha256 .tar.gz")
    if not model.model_uri.rstrip("/").endswith("/" + model.model_hash):
        raise ReleaseError(
            f"model URI {model.model_uri} is not immutable: it must end with the model's content "
            f"hash ({model.model_hash[:12]}…). Publish the model with `modelops release deploy`, "
            "which copies it to the store under its hash"
        )


def check_release(release: Release, *, steps: Sequence[int], source: str) -> None:
    """Refuse a release file that was edited around the commands.

    Its canary must sit on one of the environment's `canary_steps` (a shadow at 0), and
    replaying its history from an empty environment must give exactly its stable model and
    canary or shadow.

    Raises:
        ReleaseError: what does not add up, and how to put the file back.
    """
    fix = _HAND_EDITED.format(source=source)
    canary = release.canary
    if canary is not None and canary.shadow != (canary.weight == 0):
        what = "a shadow takes 0%" if canary.shadow else "a canary at 0% would be a shadow"
        raise ReleaseError(f"{source}: the {canary.role} takes {canary.weight}%, but {what}. {fix}")
    if canary is not None and not canary.shadow and canary.weight not in steps:
        raise ReleaseError(
            f"{source}: the canary takes {canary.weight}%, which is not one of canary_steps "
            f"{list(steps)} (deploy.environments.{release.environment}.canary_steps). {fix}. "
            f"If you changed canary_steps while this canary runs, keep {canary.weight} in the "
            "list until it completes or is rolled back"
        )
    replayed = _replay(release.history, source=source, fix=fix)
    experiment = release.experiment
    actual: _Replayed = (
        release.stable.version if release.stable else None,
        (canary.model.version, canary.weight) if canary else None,
        _arms(experiment.versions, experiment.split) if experiment else None,
    )
    if replayed != actual:
        raise ReleaseError(
            f"{source}: its state ({_state_words(*actual)}) does not follow from its history, "
            f"which ends at {_state_words(*replayed)}. {fix}"
        )
    known = {event.version for event in release.history} | {
        version for event in release.history for version in (event.variants or {}).values()
    }
    unknown = sorted({m.version for m in (*release.previous, *release.rolled_back)} - known)
    if unknown:
        raise ReleaseError(f"{source}: {unknown} never served here according to its history. {fix}")


_Arms: TypeAlias = tuple[tuple[str, str, int], ...]
"""An experiment's (variant, model version, share) in split order."""
_Replayed: TypeAlias = tuple[str | None, tuple[str, int] | None, _Arms | None]
"""(stable version, (canary version, weight), experiment arms); a weight of 0 is a shadow (a
canary's is 1-99)."""


def _arms(versions: dict[str, str], split: dict[str, int]) -> _Arms:
    return tuple((name, versions.get(name, "?"), share) for name, share in split.items())


def _replay(history: Sequence[Event], *, source: str, fix: str) -> _Replayed:
    """(stable version, (canary version, weight), experiment arms) after every event, checking
    each one."""
    stable: str | None = None
    canary: tuple[str, int] | None = None
    arms: _Arms | None = None
    for number, event in enumerate(history, start=1):
        weight = event.traffic.get("canary", 0)
        running = canary is not None and canary[0] == event.version
        problem = (
            "runs while an experiment runs" if arms and "experiment" not in event.action else None
        )
        match event.action:
            case "deploy":
                problem = "replaces the stable model while a canary runs" if canary else problem
                stable = event.version
            case "start-shadow":
                problem = "starts a shadow beside no stable model" if stable is None else problem
                problem = "starts a shadow while a canary or shadow runs" if canary else problem
                canary = (event.version, 0)
            case "start-canary":
                problem = "starts a canary beside no stable model" if stable is None else problem
                problem = "starts a canary while another runs" if canary else problem
                if problem is None and weight == 0:
                    problem = "starts a canary at 0% (a shadow is started by start-shadow)"
                canary = (event.version, weight)
            case "promote":
                if not running:
                    problem = "promotes a canary that is not running"
                elif canary is not None and weight <= canary[1]:
                    problem = f"does not raise the canary's traffic ({canary[1]}% -> {weight}%)"
                canary = (event.version, weight)
            case "complete":
                problem = None if running else "completes a canary that is not running"
                stable, canary = event.version, None
            case "rollback":
                problem = None if running else "rolls back a canary that is not running"
                canary = None
            case "restore":
                problem = "restores a model while a canary runs" if canary else problem
                stable = event.version
            case "start-experiment":
                problem = _starts_badly(event, stable, canary, arms)
                arms = _arms(event.variants or {}, event.traffic)
            case "conclude-experiment":
                problem = None if arms else "concludes an experiment that is not running"
                stable, arms = event.version, None
            case "stop-experiment":
                problem = None if arms else "stops an experiment that is not running"
                arms = None
            case _:
                assert_never(event.action)
        expected = _traffic(stable, canary, arms)
        if problem is None and event.traffic != expected:
            problem = f"records traffic {event.traffic}, but the history before it gives {expected}"
        if problem is not None:
            raise ReleaseError(
                f"{source}: history entry {number} ({event.action} {event.version}) {problem}. "
                f"{fix}"
            )
    return stable, canary, arms


def _starts_badly(
    event: Event, stable: str | None, canary: tuple[str, int] | None, arms: _Arms | None
) -> str | None:
    """Why an experiment's start does not follow from the state before it (None: it does)."""
    versions = event.variants or {}
    if stable is None or canary is not None or arms is not None:
        return "starts an experiment beside no stable model, or while a canary or one runs"
    if versions.get("stable") != stable or set(versions) != set(event.traffic):
        return f"names variants {versions} that are not the stable model and the split's arms"
    return None


def _traffic(
    stable: str | None, canary: tuple[str, int] | None, arms: _Arms | None = None
) -> dict[str, int]:
    if stable is None:
        return {}
    if arms is not None:
        return {name: share for name, _, share in arms}
    if canary is None:
        return {"stable": 100}
    if canary[1] == 0:
        return {"stable": 100, "shadow": 0}
    return {"stable": 100 - canary[1], "canary": canary[1]}


def _state_words(
    stable: str | None, canary: tuple[str, int] | None, arms: _Arms | None = None
) -> str:
    if stable is None:
        return "no model"
    words = f"stable {stable}"
    if arms is not None:
        return f"{words}, experiment " + ", ".join(f"{n} {v} {s}%" for n, v, s in arms)
    if canary is not None and canary[1] == 0:
        return f"{words}, shadow {canary[0]} (mirrored)"
    return f"{words}, canary {canary[0]} at {canary[1]}%" if canary else words


def _already(model: ModelVersion, serving: ModelVersion, role: str) -> str:
    if model.model_hash == serving.model_hash:
        return f"{model.version} is already {role}"
    return (
        f"{model.version} was trained from the same inputs (dvc.lock) as {serving.version}, "
        f"{role}: nothing new to deploy"
    )


def replace_stable(release: Release, model: ModelVersion) -> Release:
    """`model` becomes stable; the one it replaces is remembered first in `previous`."""
    kept = (release.stable, *release.previous) if release.stable is not None else release.previous
    previous = tuple(m for m in kept if m.model_hash != model.model_hash)[:KEEP_PREVIOUS]
    return replace(release, stable=model, previous=previous)


def record_step(
    release: Release,
    action: Action,
    model: ModelVersion,
    change: Change,
    *,
    variants: dict[str, str] | None = None,
) -> Release:
    event = Event(
        at=change.at,
        by=change.by,
        action=action,
        version=model.version,
        traffic=release.traffic,
        reason=change.reason,
        verdict=change.verdict,
        variants=variants,
    )
    return replace(release, history=(*release.history, event))

"""Release commands end to end: plan a change, render and validate, then write it all at once.

Nothing is written unless every environment's manifests rendered and validated: release files,
`manifests/rendered/<env>/` and `manifests/argocd/<env>.yaml` land together (or not at all), with
a commit message that says what changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from modelops import tracking
from modelops.deploy.fleet import fleet_problems, is_fleet_file, model_environments, refuse_edge
from modelops.deploy.gated import Requirement, check_gated
from modelops.deploy.render import render
from modelops.deploy.schemas import schema_source
from modelops.deploy.validate import validate
from modelops.errors import DeployError, ReleaseError
from modelops.gates.results import GatesRecord, read_record
from modelops.gitinfo import show_file
from modelops.identity import ModelIdentity, identify
from modelops.io import Writer, bytes_writer, commit, leftovers, tree_writer
from modelops.observability.budget import BudgetCheck, check_budget
from modelops.params import (
    BatchEnvironmentParams,
    EdgeEnvironmentParams,
    Params,
    RealtimeEnvironmentParams,
    canary_steps,
)
from modelops.paths import (
    GENERATED_DIRS,
    MANIFESTS_DIR,
    MODEL_CARD,
    RELEASES_DIR,
    TEMPLATES_DIR,
    ProjectPaths,
)
from modelops.releases import state
from modelops.releases.files import load_releases, release_file, release_text
from modelops.releases.publish import is_object_store, model_uri, publish
from modelops.releases.state import Change, ModelVersion, Release, Unchanged
from modelops.telemetry.prometheus import URL_ENV, connect

PLAIN = "prometheus/"
"""Generated files that are not Kubernetes objects (rules files for any Prometheus)."""
_Found = TypeVar("_Found")


@dataclass(frozen=True)
class Plan:
    """Every environment's release after a command, which ones changed, and why."""

    releases: dict[str, Release]
    changed: tuple[str, ...]
    message: str
    notes: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    """More files written with the release files (relative path: text), e.g. a verdict."""


def manifests(root: Path, params: Params, releases: Mapping[str, Release]) -> dict[Path, str]:
    """Rendered and validated manifests, by path relative to the project root.

    Raises:
        DeployError: a rendered object breaks its schema or Seldon's rules.
    """
    rendered = render(
        root / TEMPLATES_DIR,
        params.deploy,
        releases,
        threshold=params.evaluate.threshold,
        monitoring=params.monitoring,
    )
    objects = {
        path: text
        for path, text in rendered.items()
        if not path.startswith(PLAIN) and not is_fleet_file(path)
    }
    checked = validate(objects, schemas=schema_source(root), templated=templated_files(objects))
    problems = [
        *checked.problems,
        *(
            p
            for path, text in rendered.items()
            if is_fleet_file(path)
            for p in fleet_problems(path, text)
        ),
    ]
    if problems:
        raise DeployError("the manifests do not validate:\n  " + "\n  ".join(problems))
    return {Path(MANIFESTS_DIR) / path: text for path, text in rendered.items()}


def templated_files(files: Mapping[str, str]) -> set[str]:
    """The files rendered from a Jinja2 template: none of their text may look like one."""
    return {
        path for path in files if not path.endswith(("/prometheusrule.yaml", "/dashboards.yaml"))
    }


@dataclass(frozen=True)
class DeployRequest:
    """What `deploy_model` deploys, and how strictly (`modelops release deploy`'s options).

    Only a model the gates passed is published (`deploy.gated`; `gates` says how strictly it must
    be the merged commit's). `dry_run` publishes nothing. `object_store_only` refuses a local
    folder as the store: in CI it would vanish with the runner, leaving manifests pointing at
    nothing. `retry` deploys a model that was taken out before (otherwise skipped). A spent
    error budget refuses a new canary unless `budget_override` gives the reason.
    """

    model_dir: Path
    trained_at: str
    """The commit the model was trained at."""
    change: Change
    environments: Sequence[str] = ()
    """Only these environments (default: every one)."""
    dry_run: bool = False
    object_store_only: bool = False
    retry: bool = False
    gates: Requirement = "merged"
    budget_override: str | None = None


def deploy_model(
    root: Path,
    params: Params,
    request: DeployRequest,
    *,
    budget: Callable[[str], BudgetCheck] | None = None,
) -> Plan:
    """Publish the trained model and deploy it: stable where direct, a canary where canary.

    Where an environment has `shadow_first`, the new model starts as a shadow instead (mirrored
    requests, its answers discarded); its first promote makes it a canary. The MLflow registry
    is not touched here: `sync_registry` follows the release files once they are pushed.

    `budget` says whether a namespace's error budget allows a new canary (the error-budget
    policy, `configured_budget`); a spent budget refuses the deploy unless the request's
    `budget_override` gives the reason.
    """
    model_dir, change = request.model_dir, request.change
    if request.object_store_only and not is_object_store(params.deploy.store):
        raise DeployError(
            f"deploy.store is the local folder '{params.deploy.store}': a cluster cannot read "
            "it. Set deploy.store in params.yaml to your bucket (s3://bucket/models, "
            "gs://...) and give the job its credentials"
        )
    names = list(request.environments or model_environments(params.deploy.environments))
    unknown = sorted(set(names) - set(params.deploy.environments))
    if unknown:
        raise DeployError(
            f"unknown environment(s) {unknown}; params.yaml declares "
            f"{sorted(params.deploy.environments)}"
        )
    refuse_edge(params.deploy.environments, names)
    identity = _identity(root, model_dir)
    model = _planned_version(
        root, params, model_dir=model_dir, identity=identity, at=request.trained_at
    )
    releases, changed, notes = _apply(
        load_releases(root, params),
        model,
        names=names,
        params=params,
        change=change,
        retry=request.retry,
    )
    overrides = _budget_policy(params, releases, changed, notes, budget, request.budget_override)
    if changed:
        # Refused before anything is published: the gates must have passed this model.
        paths = ProjectPaths(root)
        workspace = _read(paths.gates_file)
        committed = show_file(root, "HEAD", paths.show(paths.gates_file))
        gated = check_gated(
            identity,
            workspace=_gates_record(workspace, source=paths.show(paths.gates_file)),
            committed=_gates_record(committed, source=f"HEAD:{paths.show(paths.gates_file)}"),
            require=request.gates,
        )
        notes.insert(0, gated)
    if changed and not request.dry_run:
        uri, digest = publish(
            model_dir, store=params.deploy.store, name=params.deploy.name, root=root
        )
        if digest != model.model_hash:
            raise DeployError(
                f"{model_dir} changed while it was being deployed; run the deploy again"
            )
        notes.insert(1, f"published to {uri}")
    deployed = _as_recorded(model, releases, changed)
    title = f"deploy: {deployed.version} to " + ", ".join(
        f"{name} ({_share(releases[name])})" for name in changed
    )
    provenance = (
        f"Model {deployed.version}: sha256 {deployed.model_hash[:16]}, data "
        f"{deployed.data_version[:16]}, trained at {deployed.git_commit[:12]}, published to "
        f"{deployed.model_uri}"
    )
    return Plan(
        releases=releases,
        changed=tuple(changed),
        message=commit_message(title, releases, changed, change, body=(provenance, *overrides)),
        notes=tuple(notes),
    )


def _budget_policy(
    params: Params,
    releases: Mapping[str, Release],
    changed: Sequence[str],
    notes: list[str],
    budget: Callable[[str], BudgetCheck] | None,
    override: str | None,
) -> list[str]:
    """Refuse a new canary where an error budget is spent, unless overridden with a reason;
    the override lines for the commit message."""
    if budget is None:
        return []
    overrides = []
    for name in changed:
        settings = params.deploy.environments[name]
        if releases[name].history[-1].action not in ("start-canary", "start-shadow"):
            continue
        if isinstance(settings, EdgeEnvironmentParams):
            continue  # devices spend no budget that Prometheus counts
        check = budget(settings.namespace)
        if check.note:
            notes.append(f"{name}: {check.note}")
        if check.allows:
            continue
        spent = ", ".join(check.spent)
        if not override:
            raise DeployError(
                f"{name}: the error budget is spent ({spent} left): by the error-budget policy "
                "no new canary starts until it recovers (runbooks/slo.md). To start one anyway, "
                "say why: modelops release deploy --override-budget 'REASON'"
            )
        line = f"{name}: error budget spent ({spent} left); canary started anyway: {override}"
        notes.append(line)
        overrides.append(f"Error-budget policy overridden in {line}")
    return overrides


def configured_budget(params: Params) -> Callable[[str], BudgetCheck]:
    """The error-budget check against the configured Prometheus (monitoring.prometheus_url,
    else $MODELOPS_PROMETHEUS_URL): a note instead of a check when there is none."""
    configured = params.monitoring.prometheus_url or os.environ.get(URL_ENV)
    prometheus = connect(None, configured) if configured else None
    return partial(check_budget, prometheus)


def releases_of(root: Path, params: Params, environment: str | None = None) -> dict[str, Release]:
    """Every environment's release, or only `environment`'s (refused when it is not one)."""
    releases = load_releases(root, params)
    if environment is None:
        return releases
    return {environment: release_in(releases, environment)}


def trial_role(root: Path, params: Params, environment: str) -> str:
    """`shadow` when the environment runs one, else `canary` (the words of a prompt)."""
    release_in(params.deploy.environments, environment)  # an unknown one before any file is read
    trial = release_in(load_releases(root, params), environment).canary
    return trial.role if trial is not None else "canary"


def promote(root: Path, params: Params, environment: str, *, change: Change) -> Plan:
    """Move an environment's canary one step, or past the last one make it the stable model."""
    releases = load_releases(root, params)
    before = release_in(releases, environment)
    settings = params.deploy.environments[environment]
    if isinstance(settings, BatchEnvironmentParams) and before.canary is None:
        raise ReleaseError(
            f"{environment} is a batch environment: a new model replaces the previous one at "
            "once (`modelops release deploy`), there are no traffic steps to promote through. "
            f"To go back to the previous model: modelops release rollback --env {environment}"
        )
    after = state.promote(before, steps=canary_steps(settings), change=change)
    releases[environment] = after
    event = after.history[-1]
    assert before.canary is not None
    fleet = isinstance(settings, EdgeEnvironmentParams)
    if after.canary is None:
        title = (
            f"complete: {environment} runs {event.version} ({'every device' if fleet else '100%'})"
        )
    elif before.canary.shadow:
        title = f"promote: {environment} shadow {event.version} -> canary at {after.canary.weight}%"
    else:
        title = (
            f"promote: {environment} {'candidate' if fleet else 'canary'} {event.version} "
            f"{before.canary.weight}% -> {after.canary.weight}%{' of devices' if fleet else ''}"
        )
    return Plan(releases, (environment,), commit_message(title, releases, (environment,), change))


def rollback(root: Path, params: Params, environment: str, *, change: Change) -> Plan:
    """Remove an environment's canary (or shadow): the stable model takes all traffic.

    A batch environment runs no canary: there rollback restores the previous stable model,
    so that the next scheduled run scores with it.
    """
    releases = load_releases(root, params)
    before = release_in(releases, environment)
    settings = params.deploy.environments[environment]
    if isinstance(settings, BatchEnvironmentParams | EdgeEnvironmentParams) and not before.canary:
        then = "the devices download it" if isinstance(settings, EdgeEnvironmentParams) else ""
        return _back_to_previous(releases, environment, change=change, then=then)
    after = state.rollback(before, change=change)
    releases[environment] = after
    assert after.stable is not None
    assert before.canary is not None
    fleet = isinstance(settings, EdgeEnvironmentParams)
    title = (
        f"rollback: {environment} {'candidate' if fleet else before.canary.role} "
        f"{after.history[-1].version} removed, {after.stable.version} takes "
        f"{'every device' if fleet else '100%'}"
    )
    return Plan(releases, (environment,), commit_message(title, releases, (environment,), change))


def _back_to_previous(
    releases: dict[str, Release], environment: str, *, change: Change, then: str
) -> Plan:
    """A batch or edge environment's rollback with no canary (or candidate) running: the latest
    model that was stable before the current one and was not taken out (a second rollback
    never brings back the model the first left)."""
    before = releases[environment]
    candidates = [
        model
        for model in before.previous
        if not any(model.same_model(taken) for taken in before.rolled_back)
    ]
    if before.stable is None or not candidates:
        raise ReleaseError(
            f"{environment} has no previous model to go back to that was not taken out "
            f"({before.describe()}); restore one by version (modelops release restore --env "
            f"{environment} --version ...) or deploy one"
        )
    previous = candidates[0].version
    after = state.restore(before, previous, change=change)
    assert isinstance(after, Release), "the previous model is never the stable one"
    releases[environment] = after
    then = then or "the next scheduled run scores with it"
    title = (
        f"rollback: {environment} back to {previous}, replacing {before.stable.version} ({then})"
    )
    return Plan(releases, (environment,), commit_message(title, releases, (environment,), change))


def restore(root: Path, params: Params, environment: str, version: str, *, change: Change) -> Plan:
    """Bring back a model that was stable before, at 100% (after a completed bad canary)."""
    releases = load_releases(root, params)
    before = release_in(releases, environment)
    after = state.restore(before, version, change=change)
    if isinstance(after, Unchanged):
        return Plan(releases, (), "", notes=(after.reason,))
    releases[environment] = after
    assert before.stable is not None
    title = f"restore: {environment} back to {version} (100%), replacing {before.stable.version}"
    return Plan(releases, (environment,), commit_message(title, releases, (environment,), change))


def write(root: Path, params: Params, plan: Plan) -> list[Path]:
    """Write the changed release files and every generated manifest together.

    Returns:
        What was written, relative to the root.
    """
    files = manifests(root, params, plan.releases)
    outputs: dict[Path, Writer] = {}
    for name in plan.changed:
        text = release_text(plan.releases[name])
        outputs[root / release_file(name)] = bytes_writer(text.encode())
    for relative, content in plan.files.items():
        outputs[root / relative] = bytes_writer(content.encode())
    outputs.update(_generated_writers(root, files))
    commit(outputs)
    return sorted(path.relative_to(root) for path in outputs)


def render_all(root: Path, params: Params) -> list[Path]:
    """Regenerate `manifests/rendered/` and `manifests/argocd/` from templates and releases."""
    outputs = _generated_writers(root, manifests(root, params, load_releases(root, params)))
    commit(outputs)
    return sorted(path.relative_to(root) for path in outputs)


def generated_files(root: Path) -> dict[Path, str]:
    """The generated manifests on disk (`rendered/`, `argocd/`), by path relative to the root."""
    return {
        path.relative_to(root): path.read_text(encoding="utf-8")
        for folder in GENERATED_DIRS
        if (root / folder).is_dir()
        for path in sorted((root / folder).rglob("*"))
        if path.is_file()
    }


def stale(root: Path, params: Params) -> list[str]:
    """How the generated manifests on disk differ from what templates and releases produce."""
    expected = manifests(root, params, load_releases(root, params))
    on_disk = generated_files(root)
    differences = [
        f"{path}: {'missing' if path not in on_disk else 'out of date'}"
        for path, text in sorted(expected.items())
        if on_disk.get(path) != text
    ]
    differences += [
        f"{path}: not produced by any release" for path in sorted(set(on_disk) - set(expected))
    ]
    differences += [
        f"{path.relative_to(root)}: left by an interrupted command (the next release command "
        "removes it; or delete it)"
        for folder in (root / MANIFESTS_DIR, root / RELEASES_DIR)
        for path in leftovers(folder)
    ]
    return differences


def _generated_writers(root: Path, files: Mapping[Path, str]) -> dict[Path, Writer]:
    """Each generated folder replaced whole, so files of a removed predictor or env go too."""
    return {
        root / folder: tree_writer(
            {p.relative_to(folder): t for p, t in files.items() if p.is_relative_to(folder)}
        )
        for folder in GENERATED_DIRS
    }


def _apply(
    current: Mapping[str, Release],
    model: ModelVersion,
    *,
    names: Sequence[str],
    params: Params,
    change: Change,
    retry: bool,
) -> tuple[dict[str, Release], list[str], list[str]]:
    """Deploy `model` to each named environment: (releases after, changed names, notes)."""
    releases, changed, notes = dict(current), [], []
    for name in names:
        environment = params.deploy.environments[name]
        after = state.deploy(
            releases[name],
            model,
            strategy=environment.strategy,
            steps=canary_steps(environment),
            change=change,
            retry=retry,
            shadow_first=isinstance(environment, RealtimeEnvironmentParams)
            and environment.shadow_first,
        )
        if isinstance(after, Unchanged):
            notes.append(after.reason)
        else:
            releases[name] = after
            changed.append(name)
    return releases, changed, notes


def _identity(root: Path, model_dir: Path) -> ModelIdentity:
    if not (model_dir / MODEL_CARD).is_file():
        raise DeployError(
            f"{model_dir}: no trained model (no {MODEL_CARD}); run `dvc repro train` first"
        )
    return identify(model_dir, root=root)


def _planned_version(
    root: Path, params: Params, *, model_dir: Path, identity: ModelIdentity, at: str
) -> ModelVersion:
    """The model as it will be published: its content hash names its version and address."""
    card = json.loads((model_dir / MODEL_CARD).read_text(encoding="utf-8"))
    paths = ProjectPaths(root)
    tracked = model_dir.resolve() == paths.model_dir.resolve()
    run = _read_json(paths.mlflow_run_file) if tracked else None
    digest = identity.model_hash
    return ModelVersion(
        version=digest[:12],
        model_uri=model_uri(params.deploy.store, params.deploy.name, digest),
        model_hash=digest,
        data_version=str(card["data_version"]),
        git_commit=at,
        mlflow_run_id=str(run["run_id"]) if run and run.get("run_id") else None,
        training_inputs=identity.training_inputs,
    )


def _as_recorded(
    model: ModelVersion, releases: Mapping[str, Release], changed: Sequence[str]
) -> ModelVersion:
    """The model as the releases record it (a retried one keeps the commit that trained it)."""
    for name in changed:
        release = releases[name]
        for recorded in (release.stable, release.canary.model if release.canary else None):
            if recorded is not None and recorded.model_hash == model.model_hash:
                return recorded
    return model


def _gates_record(text: str | None, *, source: str) -> GatesRecord | None:
    if text is None:
        return None
    try:
        return read_record(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise DeployError(f"{source} is not a gates record ({exc}); run `dvc repro`") from None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def sync_registry(root: Path, params: Params) -> list[str]:
    """Point the MLflow registry at what the release files serve; returns what it did.

    Run after the release commit is pushed (deploy.yml and rollout.yml do), so a refused push
    leaves the registry as it was; running it again reconciles the registry with `main`. Each
    served model is registered once (by content hash, from its immutable store URI, linked to
    its MLflow run when the server has that run); the alias `<environment>` names the stable
    model, `<environment>-canary` the canary and `<environment>-shadow` the shadow, each removed
    when there is none (a shadow takes no traffic: it is not called a canary).
    """
    if not tracking.registry_configured():
        return ["no MLflow registry configured (MLFLOW_TRACKING_URI unset): nothing to sync"]
    name = params.deploy.registered_model
    notes = []
    for environment, release in load_releases(root, params).items():
        if isinstance(params.deploy.environments[environment], EdgeEnvironmentParams):
            continue  # a bundle is no MLflow model; its release file is its record
        trial = release.canary
        aliases = [(environment, "stable", release.stable)] + [
            (f"{environment}-{role}", role, trial.model if trial and trial.role == role else None)
            for role in ("canary", "shadow")
        ]
        for alias, role, model in aliases:
            if model is None:
                if role != "stable" and tracking.move_alias(name, alias, None, root=root):
                    notes.append(f"{name}@{alias} removed (no {role})")
                continue
            version = tracking.register_version(
                name,
                source=model.model_uri,
                model_hash=model.model_hash,
                run_id=model.mlflow_run_id,
                root=root,
            )
            tracking.move_alias(name, alias, version, root=root)
            notes.append(f"{name}@{alias} -> version {version} ({model.version})")
    return notes


def release_in(releases: Mapping[str, _Found], environment: str) -> _Found:
    """`releases[environment]`, or a refusal that lists the environments."""
    if environment not in releases:
        raise ReleaseError(
            f"unknown environment '{environment}'; params.yaml declares {sorted(releases)}"
        )
    return releases[environment]


def _share(release: Release) -> str:
    if release.canary is None:
        return "100%"
    if release.canary.shadow:
        return "shadow, mirrored"
    return f"canary {release.canary.weight}%"


def commit_message(
    title: str,
    releases: Mapping[str, Release],
    changed: Sequence[str],
    change: Change,
    body: Sequence[str] = (),
) -> str:
    lines = [title, "", *body, *(releases[name].describe() for name in changed)]
    lines.append(f"By {change.by}: {change.reason}")
    return "\n".join(lines) + "\n"

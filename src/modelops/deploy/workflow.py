"""Release commands end to end: plan a change, render and validate, then write it all at once.

Nothing is written unless every environment's manifests rendered and validated: release files,
`manifests/rendered/<env>/` and `manifests/argocd/<env>.yaml` land together (or not at all), with
a commit message that says what changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import yaml

from modelops import tracking
from modelops.deploy import release as state
from modelops.deploy.publish import content_hash, is_object_store, model_uri, publish
from modelops.deploy.release import Change, ModelVersion, NothingToDo, Release, ReleaseError
from modelops.deploy.render import render
from modelops.deploy.schemas import schema_source
from modelops.deploy.validate import validate
from modelops.errors import ModelopsError
from modelops.io import Writer, bytes_writer, commit, tree_writer
from modelops.lockfile import stage_inputs
from modelops.params import Params
from modelops.paths import MODEL_CARD, ProjectPaths

MANIFESTS = Path("manifests")
RELEASES = MANIFESTS / "releases"
TEMPLATES = MANIFESTS / "templates"
GENERATED = (MANIFESTS / "rendered", MANIFESTS / "argocd")
TRAIN_STAGE = "train"
_HEADER = "# Written by `modelops release`; do not edit by hand: the history is the audit trail.\n"


class DeployError(ModelopsError):
    """Manifests that do not validate, or a deploy that cannot be prepared."""


@dataclass(frozen=True)
class Plan:
    """Every environment's release after a command, which ones changed, and why."""

    releases: dict[str, Release]
    changed: tuple[str, ...]
    message: str
    notes: tuple[str, ...] = ()


def load_releases(root: Path, params: Params) -> dict[str, Release]:
    """Each environment's release file, or an empty release when there is none yet."""
    releases = {}
    for name in params.deploy.environments:
        path = root / RELEASES / f"{name}.yaml"
        if path.is_file():
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
            releases[name] = state.from_document(document, source=str(path.relative_to(root)))
        else:
            releases[name] = Release(environment=name)
    return releases


def manifests(root: Path, params: Params, releases: Mapping[str, Release]) -> dict[Path, str]:
    """Rendered and validated manifests, by path relative to the project root.

    Raises:
        DeployError: a rendered object breaks its schema or Seldon's rules.
    """
    rendered = render(
        root / TEMPLATES, params.deploy, releases, threshold=params.evaluate.threshold
    )
    checked = validate(rendered, schemas=schema_source(root))
    if checked.problems:
        raise DeployError("the manifests do not validate:\n  " + "\n  ".join(checked.problems))
    return {MANIFESTS / path: text for path, text in rendered.items()}


def deploy_model(
    root: Path,
    params: Params,
    *,
    model_dir: Path,
    trained_at: str,
    change: Change,
    environments: Sequence[str] = (),
    dry_run: bool = False,
    object_store_only: bool = False,
    retry: bool = False,
) -> Plan:
    """Publish the trained model and deploy it: stable where direct, a canary where canary.

    `dry_run` publishes and registers nothing (the version is then the content hash's prefix,
    as it is whenever no MLflow registry is configured). `object_store_only` refuses a local
    folder as the store: in CI it would vanish with the runner, leaving manifests pointing at
    nothing. `retry` deploys a model that was rolled back (otherwise skipped).
    """
    if object_store_only and not is_object_store(params.deploy.store):
        raise DeployError(
            f"deploy.store is the local folder '{params.deploy.store}': a cluster cannot read "
            "it. Set deploy.store in params.yaml to your bucket (s3://bucket/models, "
            "gs://...) and give the job its credentials"
        )
    names = list(environments or params.deploy.environments)
    unknown = sorted(set(names) - set(params.deploy.environments))
    if unknown:
        raise DeployError(
            f"unknown environment(s) {unknown}; params.yaml declares "
            f"{sorted(params.deploy.environments)}"
        )
    # Plan with the content hash first: an illegal deploy is refused before anything is
    # published or registered.
    model = _planned_version(root, params, model_dir=model_dir, trained_at=trained_at)
    current = load_releases(root, params)
    apply = partial(_apply, current, names=names, params=params, change=change, retry=retry)
    releases, changed, notes = apply(model)
    if changed and not dry_run:
        model, published = _publish_and_register(root, params, model_dir=model_dir, planned=model)
        releases, changed, _ = apply(model)
        notes = [*published, *notes]
    title = f"deploy: {model.version} to " + ", ".join(
        f"{name} ({_share(releases[name])})" for name in changed
    )
    provenance = (
        f"Model {model.version}: sha256 {model.model_hash[:16]}, data {model.data_version[:16]}, "
        f"trained at {model.git_commit[:12]}, published to {model.model_uri}"
    )
    return Plan(
        releases=releases,
        changed=tuple(changed),
        message=_message(title, releases, changed, change, body=(provenance,)),
        notes=tuple(notes),
    )


def promote(root: Path, params: Params, environment: str, *, change: Change) -> Plan:
    """Move an environment's canary one step, or past the last one make it the stable model."""
    releases = load_releases(root, params)
    before = _release(releases, environment)
    after = state.promote(
        before, steps=params.deploy.environments[environment].canary_steps, change=change
    )
    releases[environment] = after
    event = after.history[-1]
    if after.canary is None:
        title = f"complete: {environment} runs {event.version} (100%)"
    else:
        assert before.canary is not None
        title = (
            f"promote: {environment} canary {event.version} "
            f"{before.canary.weight}% -> {after.canary.weight}%"
        )
    return Plan(releases, (environment,), _message(title, releases, (environment,), change))


def rollback(root: Path, params: Params, environment: str, *, change: Change) -> Plan:
    """Remove an environment's canary: the stable model takes all traffic."""
    releases = load_releases(root, params)
    after = state.rollback(_release(releases, environment), change=change)
    releases[environment] = after
    assert after.stable is not None
    title = (
        f"rollback: {environment} canary {after.history[-1].version} removed, "
        f"{after.stable.version} takes 100%"
    )
    return Plan(releases, (environment,), _message(title, releases, (environment,), change))


def restore(root: Path, params: Params, environment: str, version: str, *, change: Change) -> Plan:
    """Bring back a model that was stable before, at 100% (after a completed bad canary)."""
    releases = load_releases(root, params)
    before = _release(releases, environment)
    after = state.restore(before, version, change=change)
    releases[environment] = after
    assert before.stable is not None
    title = f"restore: {environment} back to {version} (100%), replacing {before.stable.version}"
    return Plan(releases, (environment,), _message(title, releases, (environment,), change))


def write(root: Path, params: Params, plan: Plan) -> list[Path]:
    """Write the changed release files and every generated manifest together, then point the
    registry's aliases at what the releases now serve.

    Returns:
        What was written, relative to the root.
    """
    files = manifests(root, params, plan.releases)
    outputs: dict[Path, Writer] = {}
    for name in plan.changed:
        text = _HEADER + yaml.safe_dump(
            state.to_document(plan.releases[name]), sort_keys=False, width=100
        )
        outputs[root / RELEASES / f"{name}.yaml"] = bytes_writer(text.encode())
    outputs.update(_generated_writers(root, files))
    commit(outputs)
    _move_aliases(params, plan, root=root)
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
        for folder in GENERATED
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
    return differences


def _generated_writers(root: Path, files: Mapping[Path, str]) -> dict[Path, Writer]:
    """Each generated folder replaced whole, so files of a removed predictor or env go too."""
    return {
        root / folder: tree_writer(
            {p.relative_to(folder): t for p, t in files.items() if p.is_relative_to(folder)}
        )
        for folder in GENERATED
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
        try:
            releases[name] = state.deploy(
                releases[name],
                model,
                strategy=environment.strategy,
                steps=environment.canary_steps,
                change=change,
                retry=retry,
            )
        except NothingToDo as unchanged:
            notes.append(str(unchanged))
        else:
            changed.append(name)
    return releases, changed, notes


def _planned_version(
    root: Path, params: Params, *, model_dir: Path, trained_at: str
) -> ModelVersion:
    """The model as it will be published: its content hash names its version and address."""
    try:
        card = json.loads((model_dir / MODEL_CARD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeployError(
            f"{model_dir}: no trained model (no {MODEL_CARD}); run `dvc repro train` first"
        ) from None
    digest = content_hash(model_dir)
    tracked = model_dir.resolve() == ProjectPaths(root).model_dir.resolve()
    return ModelVersion(
        version=digest[:12],
        model_uri=model_uri(params.deploy.store, params.deploy.name, digest),
        model_hash=digest,
        data_version=str(card["data_version"]),
        git_commit=trained_at,
        # dvc.lock describes the DVC-tracked model only, not one given by --model-dir.
        training_inputs=stage_inputs(_read(root / "dvc.lock"), TRAIN_STAGE) if tracked else None,
    )


def _publish_and_register(
    root: Path, params: Params, *, model_dir: Path, planned: ModelVersion
) -> tuple[ModelVersion, list[str]]:
    """Publish the model, and register it when an MLflow registry is configured."""
    deploy = params.deploy
    uri, digest = publish(model_dir, store=deploy.store, name=deploy.name, root=root)
    if digest != planned.model_hash:
        raise DeployError(f"{model_dir} changed while it was being deployed; run the deploy again")
    notes = [f"published to {uri}"]
    if not tracking.registry_configured():
        notes.append(
            "no MLflow server configured (MLFLOW_TRACKING_URI unset): deploying the DVC-tracked "
            "model, versioned by its content hash"
        )
        return planned, notes
    run = _mlflow_run(root)
    if run is None:
        notes.append("no MLflow run recorded (reports/mlflow_run.json): not registered")
        return planned, notes
    version = tracking.register_model(
        run["model_uri"], deploy.registered_model, run_id=run["run_id"], root=root
    )
    notes.append(f"registered as {deploy.registered_model} version {version} in MLflow")
    return replace(planned, version=version, mlflow_run_id=run["run_id"]), notes


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _mlflow_run(root: Path) -> dict[str, str] | None:
    try:
        run: dict[str, str] = json.loads(
            ProjectPaths(root).mlflow_run_file.read_text(encoding="utf-8")
        )
    except (OSError, ValueError):
        return None
    return run


def _move_aliases(params: Params, plan: Plan, *, root: Path) -> None:
    """Registry aliases follow the releases: `<environment>` (stable) and `canary`."""
    if not tracking.registry_configured():
        return
    name = params.deploy.registered_model
    for environment in plan.changed:
        release = plan.releases[environment]
        if release.stable is not None and release.stable.mlflow_run_id:
            tracking.move_alias(name, environment, release.stable.version, root=root)
        if params.deploy.environments[environment].strategy != "canary":
            continue
        canary = release.canary.model if release.canary else None
        if canary is None:
            tracking.move_alias(name, "canary", None, root=root)
        elif canary.mlflow_run_id:
            tracking.move_alias(name, "canary", canary.version, root=root)


def _release(releases: Mapping[str, Release], environment: str) -> Release:
    if environment not in releases:
        raise ReleaseError(
            f"unknown environment '{environment}'; params.yaml declares {sorted(releases)}"
        )
    return releases[environment]


def _share(release: Release) -> str:
    return f"canary {release.canary.weight}%" if release.canary else "100%"


def _message(
    title: str,
    releases: Mapping[str, Release],
    changed: Sequence[str],
    change: Change,
    body: Sequence[str] = (),
) -> str:
    lines = [title, "", *body, *(releases[name].describe() for name in changed)]
    lines.append(f"By {change.by}: {change.reason}")
    return "\n".join(lines) + "\n"

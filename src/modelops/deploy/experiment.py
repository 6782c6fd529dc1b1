"""`modelops release experiment start|stop|conclude`: an A/B experiment's release commits.

Start reads `experiments.<env>` from params.yaml, finds each candidate among the models the
release files know (a candidate must have been published by a release, with its gates on
record), checks that every variant's requests carry the unit field, and writes the release with
the experiment: the rendered predictor downloads every variant and routes each unit by its hash.
Conclude acts on a verdict of `modelops experiment analyze` (the winner becomes or stays the
stable model; the verdict is kept beside the release and linked from its history); stop ends
the experiment with nothing judged. Each is one commit, written like every release step
(`workflow.write`: release file and manifests together, or nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import yaml

from modelops.deploy.workflow import Plan, commit_message, release_in, releases_of
from modelops.errors import ReleaseError
from modelops.params import CONTROL, ExperimentParams, Params
from modelops.paths import RELEASES_DIR
from modelops.releases.experiment import (
    conclude_experiment,
    running_experiment,
    start_experiment,
    stop_experiment,
)
from modelops.releases.publish import fetched
from modelops.releases.state import Change, Experiment, ModelVersion, Release, Unchanged, Variant

DECIDED = ("winner", "no-difference")
"""Verdict kinds a conclude may act on; `keep-running` needs more data, `stop` a stop."""


def known_models(releases: Mapping[str, Release]) -> dict[str, ModelVersion]:
    """Every published model the release files record, by content hash."""
    found: dict[str, ModelVersion] = {}
    for release in releases.values():
        models = [release.stable, *release.previous, *release.rolled_back]
        if release.canary is not None:
            models.append(release.canary.model)
        if release.experiment is not None:
            models.extend(variant.model for variant in release.experiment.variants)
        for model in models:
            if model is not None:
                found.setdefault(model.model_hash, model)
    return found


def input_names(model_dir: Path) -> tuple[str, ...]:
    """The request fields a model reads: its MLflow signature's inputs."""
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text(encoding="utf-8"))
    inputs = json.loads((mlmodel.get("signature") or {}).get("inputs") or "[]")
    return tuple(str(spec["name"]) for spec in inputs)


def planned_experiment(
    settings: ExperimentParams,
    stable: ModelVersion,
    models: Mapping[str, ModelVersion],
    *,
    environment: str,
) -> Experiment:
    """The experiment params.yaml declares, on the published models it names (pure)."""
    arms = [Variant(CONTROL, stable, settings.split[CONTROL])]
    for name in settings.candidates:
        digest = settings.variants[name]
        if digest not in models:
            raise ReleaseError(
                f"experiments.{environment}.variants.{name}: no released model has content hash "
                f"{digest[:12]}…. A candidate must have been published by a release (for "
                "example `modelops release deploy --env staging`), so that its gates and "
                "store address are on record; `modelops release status` lists the known ones"
            )
        arms.append(Variant(name, models[digest], settings.split[name]))
    return Experiment(
        name=settings.name,
        salt=settings.assignment_salt,
        unit=settings.unit,
        variants=tuple(arms),
        covariate=settings.covariate,
    )


def unit_problems(
    experiment: Experiment, inputs: Mapping[str, tuple[str, ...]], *, id_column: str | None
) -> list[str]:
    """Variants whose requests would not carry the unit field (pure): it must be the data's id
    column, which every request may carry beside the inputs, or an input of every variant."""
    if experiment.unit == id_column:
        return []
    return [
        f"'{experiment.unit}' is neither prepare.columns.id ({id_column or 'unset'}) nor an "
        f"input of variant {variant.name} ({variant.model.version}: {', '.join(names)}): name "
        "a field every request carries, such as the id column"
        for variant in experiment.variants
        if experiment.unit not in (names := inputs[variant.name])
    ]


def start(root: Path, params: Params, environment: str, *, change: Change, cache: Path) -> Plan:
    """Start the experiment params.yaml declares for `environment`."""
    settings = params.experiment(environment)
    releases = releases_of(root, params)
    before = releases[environment]
    if before.stable is None:
        raise ReleaseError(
            f"{environment} has no stable model to compare with: deploy one first "
            f"(modelops release deploy --env {environment})"
        )
    experiment = planned_experiment(
        settings, before.stable, known_models(releases), environment=environment
    )
    inputs = {
        variant.name: input_names(fetched(variant.model.model_uri, cache=cache, root=root))
        for variant in experiment.variants
    }
    problems = unit_problems(experiment, inputs, id_column=params.prepare.columns.id)
    if problems:
        raise ReleaseError(f"experiments.{environment}.unit: " + "; ".join(problems))
    after = start_experiment(before, experiment, change=change)
    if isinstance(after, Unchanged):
        return Plan(releases, (), "", notes=(after.reason,))
    releases[environment] = after
    title = f"experiment start: {environment} {experiment.describe()}"
    return Plan(releases, (environment,), commit_message(title, releases, (environment,), change))


def stop(root: Path, params: Params, environment: str, *, change: Change) -> Plan:
    """End the experiment with nothing judged: the stable model takes all traffic again."""
    releases = releases_of(root, params)
    before = release_in(releases, environment)
    after = stop_experiment(before, change=change)
    releases[environment] = after
    assert before.experiment is not None
    assert after.stable is not None
    title = (
        f"experiment stop: {environment} {before.experiment.name} ended, "
        f"{after.stable.version} takes 100%"
    )
    return Plan(releases, (environment,), commit_message(title, releases, (environment,), change))


def conclude(
    root: Path,
    params: Params,
    environment: str,
    *,
    change: Change,
    verdict: Path | None,
    winner: str | None,
) -> Plan:
    """End the experiment on a verdict (or a named winner): the winner serves all traffic."""
    releases = releases_of(root, params)
    before = release_in(releases, environment)
    experiment = running_experiment(before, "conclude")
    files: dict[str, str] = {}
    body: list[str] = []
    if verdict is not None:
        decided = read_verdict(verdict, environment=environment, experiment=experiment)
        if winner is not None and winner != decided:
            raise ReleaseError(
                f"--winner {winner} contradicts the verdict in {verdict} ({decided}): drop "
                "--winner to act on the verdict, or drop --verdict to overrule it (say why in "
                "--reason)"
            )
        winner = decided
        stamp = change.at.replace("-", "").replace(":", "")
        kept = Path(RELEASES_DIR) / environment / "verdicts" / f"{stamp}-conclude"
        for suffix in (".json", ".md"):
            source = verdict.with_suffix(suffix)
            if source.is_file():
                files[str(kept.with_suffix(suffix))] = source.read_text(encoding="utf-8")
        change = Change(change.at, change.by, change.reason, verdict=str(kept.with_suffix(".md")))
        body.append(f"Verdict: {kept.with_suffix('.md')}")
    if winner is None:
        raise ReleaseError(
            "conclude acts on a verdict: give --verdict reports/experiments/"
            f"{environment}.json (from `modelops experiment analyze --env {environment}`), or "
            "name the winner with --winner and say why with --reason"
        )
    after = conclude_experiment(before, winner, change=change)
    releases[environment] = after
    assert after.stable is not None
    title = (
        f"experiment conclude: {environment} {experiment.name}, {winner} wins: "
        f"{after.stable.version} takes 100%"
    )
    message = commit_message(title, releases, (environment,), change, body)
    return Plan(releases, (environment,), message, files=files)


def read_verdict(path: Path, *, environment: str, experiment: Experiment) -> str:
    """The winner a verdict file decided for this experiment, or why it cannot conclude it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        kind, name = str(document["kind"]), str(document["experiment"])
        where, winner = str(document["environment"]), document.get("winner")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReleaseError(
            f"{path}: not an experiment verdict ({exc}); write one with `modelops experiment "
            f"analyze --env {environment}`"
        ) from None
    if (where, name) != (environment, experiment.name):
        raise ReleaseError(
            f"{path} judges experiment {name} in {where}, not {experiment.name} in {environment}"
        )
    if kind not in DECIDED:
        raise ReleaseError(
            f"{path} says {kind}: conclude needs a winner or no difference. "
            + (
                "Keep it running and analyze again later"
                if kind == "keep-running"
                else f"End it with `modelops release experiment stop --env {environment}`"
            )
        )
    return CONTROL if kind == "no-difference" else str(winner)

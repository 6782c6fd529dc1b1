"""An A/B experiment's steps in an environment's release (pure functions, like `state`'s).

Start puts the stable model and the candidates on their shares of the units; while it runs, no
deploy, canary or restore may change the environment's traffic. It ends one of two ways:
concluded on a verdict (the winner becomes, or stays, the stable model; the candidates that lost
are taken out of the environment, so merging them again does not redeploy them by itself), or
stopped (stable alone again, nothing judged: a broken split, a breached guardrail, a change of
plans).
"""

from __future__ import annotations

from dataclasses import replace

from modelops.errors import ReleaseError
from modelops.params import CONTROL
from modelops.releases.state import (
    KEEP_PREVIOUS,
    Change,
    Experiment,
    Release,
    Unchanged,
    record_step,
    replace_stable,
    require_immutable,
)


def start_experiment(
    release: Release, experiment: Experiment, *, change: Change
) -> Release | Unchanged:
    """Split the environment's units between its stable model and the candidates."""
    where = release.environment
    if release.experiment is not None:
        if release.experiment == experiment:
            return Unchanged(f"{where} is running {experiment.describe()} already")
        raise ReleaseError(
            f"{where} is running {release.experiment.describe()}: conclude or stop it first "
            f"(modelops release experiment conclude|stop --env {where})"
        )
    if release.canary is not None:
        raise ReleaseError(
            f"{where} is running {release.canary.describe()}: an experiment needs the whole "
            f"traffic. Promote or roll it back first (modelops release promote|rollback --env "
            f"{where})"
        )
    if release.stable is None:
        raise ReleaseError(
            f"{where} has no stable model to compare with: deploy one first "
            f"(modelops release deploy --env {where})"
        )
    control = experiment.variants[0]
    if control.name != CONTROL or control.model != release.stable:
        raise ReleaseError(f"the experiment's control must be {where}'s stable model")
    for variant in experiment.variants[1:]:
        require_immutable(variant.model)
        if variant.model.same_model(release.stable):
            raise ReleaseError(
                f"variant {variant.name} ({variant.model.version}) is {where}'s stable model "
                "already: an experiment compares another model with it"
            )
    started = replace(release, experiment=experiment)
    return record_step(
        started, "start-experiment", release.stable, change, variants=experiment.versions
    )


def conclude_experiment(release: Release, winner: str, *, change: Change) -> Release:
    """End the experiment on a verdict: `winner` serves all traffic as the stable model."""
    experiment = running_experiment(release, "conclude")
    arms = {variant.name: variant for variant in experiment.variants}
    if winner not in arms:
        raise ReleaseError(
            f"{winner!r} is not a variant of {experiment.describe()}: name one of {', '.join(arms)}"
        )
    chosen = arms[winner].model
    losers = [v.model for v in experiment.variants if v.name not in (winner, CONTROL)]
    ended = replace(release, experiment=None)
    if winner != CONTROL:
        ended = replace_stable(ended, chosen)
    kept = tuple(m for m in release.rolled_back if not any(m.same_model(x) for x in losers))
    ended = replace(ended, rolled_back=(*losers, *kept)[:KEEP_PREVIOUS])
    return record_step(ended, "conclude-experiment", chosen, change, variants=experiment.versions)


def stop_experiment(release: Release, *, change: Change) -> Release:
    """End the experiment with no verdict acted on: the stable model takes all traffic again."""
    experiment = running_experiment(release, "stop")
    assert release.stable is not None
    ended = replace(release, experiment=None)
    return record_step(
        ended, "stop-experiment", release.stable, change, variants=experiment.versions
    )


def running_experiment(release: Release, what: str) -> Experiment:
    """The environment's experiment, or a refusal to `what` it that says how to start one."""
    if release.experiment is None:
        raise ReleaseError(
            f"{release.environment} runs no experiment to {what} ({release.describe()}): start "
            f"one with modelops release experiment start --env {release.environment}"
        )
    return release.experiment

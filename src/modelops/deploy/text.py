"""What the release commands and `modelops render` print (pure): text from their results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from modelops.deploy.preview import DeployPreview, diff_stat
from modelops.deploy.workflow import Plan
from modelops.params import (
    EdgeEnvironmentParams,
    EnvironmentParams,
    Params,
    RealtimeEnvironmentParams,
    canary_steps,
)
from modelops.releases.state import ModelVersion, Release, next_step

STALE_HINT = (
    "render: manifests/ is not what the templates and releases produce; run `make render` and "
    "commit the result"
)
"""Why `render --check` failed, and the fix (on stderr)."""


def status(releases: Mapping[str, Release], params: Params, *, history: int) -> str:
    """Each release: what it serves, what a promote would do, what can be restored, and its
    last `history` events."""
    lines = []
    for name, release in releases.items():
        environment = params.deploy.environments[name]
        where = "" if isinstance(environment, EdgeEnvironmentParams) else environment.namespace
        lines.append(
            f"{release.describe()}   [{_kind(environment)}{where and ', namespace '}{where}]"
        )
        models: list[tuple[str, ModelVersion | None]] = [("stable", release.stable)]
        trial = release.canary
        if trial is not None:
            models.append((trial.role, trial.model))
            step = next_step(trial.weight, canary_steps(environment))
            after = f"a canary at {step}%" if trial.shadow else f"{step}%"
            lines.append(
                f"  next promote: {trial.role} {f'to {after}' if step else 'becomes stable'}"
            )
        if release.experiment is not None:
            models = [(variant.name, variant.model) for variant in release.experiment.variants]
            lines.append(
                f"  experiment {release.experiment.name}: units by {release.experiment.unit}; "
                f"modelops experiment analyze --env {name} for its verdict"
            )
        for role, model in models:
            if model is not None:
                lines.append(f"  {role} {model.version}: {model.model_uri}")
        if release.previous:
            restorable = ", ".join(m.version for m in release.previous)
            lines.append(f"  can restore: {restorable} (modelops release restore --env {name} ...)")
        if release.rolled_back:
            taken_out = ", ".join(m.version for m in release.rolled_back)
            lines.append(
                f"  taken out: {taken_out} (rolled back or restored away from; a merge does "
                "not bring them back, `deploy --retry` does)"
            )
        for event in release.history[-history:] if history > 0 else ():
            traffic = ", ".join(f"{k} {v}%" for k, v in event.traffic.items())
            lines.append(f"  {event.at}  {event.action:<12} {event.version:<12} [{traffic}]")
            lines.append(f"    by {event.by}: {event.reason}")
    return "\n".join(lines)


def _kind(environment: EnvironmentParams) -> str:
    """How a new model reaches the environment, in a few words."""
    if isinstance(environment, RealtimeEnvironmentParams):
        platform = " on KServe" if environment.target == "kserve" else ""
        shadow = ", shadow first" if environment.shadow_first else ""
        return f"{environment.strategy}{platform}{shadow}"
    if isinstance(environment, EdgeEnvironmentParams):
        steps = ", ".join(f"{step}%" for step in environment.cohort_steps) or "all at once"
        return f"edge, {environment.format} bundles to devices by cohort ({steps})"
    schedule = f"{environment.schedule!r} {environment.time_zone}"
    return f"batch, {environment.engine} engine, schedule {schedule}"


def manifests_state(differences: Sequence[str]) -> str:
    """Whether the generated manifests are current (`differences`: `workflow.stale`)."""
    current = "current" if not differences else f"{len(differences)} stale, run `make render`"
    return f"manifests: {current}"


def plan_notes(plan: Plan) -> str:
    """The plan's notes, one `release:` line each (empty when none)."""
    return "".join(f"release: {note}\n" for note in plan.notes)


def plan_outcome(plan: Plan, written: Sequence[Path], *, dry_run: bool = False) -> str:
    """After the notes: nothing to change, the dry run's commit message, or the commit
    message and what was written."""
    if not plan.changed:
        return "release: nothing to change; no file written\n"
    if dry_run:
        return (
            "release: dry run, nothing published or written; the commit would say:\n\n"
            + plan.message
        )
    return plan.message + f"release: wrote {', '.join(str(p) for p in written)}\n"


def preview(planned: DeployPreview, *, full_diff: bool, out: str) -> str:
    """What a merge would deploy, each file's change (or the whole diff), and where the
    manifests went (`out`, as shown to the user)."""
    lines = []
    for change in planned.changes:
        after = "(unchanged)" if change.before == change.after else "-> " + change.after
        lines.append(f"preview: {change.before} {after.replace(f'{change.environment}: ', '')}")
    text = "".join(f"{line}\n" for line in lines)
    if full_diff:
        text += planned.diff
    text += "".join(
        f"preview: {path}: +{added} -{removed}\n"
        for path, added, removed in diff_stat(planned.diff)
    )
    if not planned.diff:
        text += "preview: the manifests would not change\n"
    return text + f"preview: manifests a merge would commit and their diff -> {out}/\n"


def stale(differences: Sequence[str]) -> str:
    """`render --check`: each stale file, or that every generated file is current."""
    if differences:
        return "\n".join(f"stale: {difference}" for difference in differences)
    return "render: manifests/rendered/, manifests/argocd/ and manifests/prometheus/ are current"


def rendered(written: Sequence[Path]) -> str:
    """`render`: what was regenerated."""
    return f"render: {', '.join(str(p) for p in written)} regenerated"

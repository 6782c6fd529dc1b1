"""Everything the pull-request report shows, gathered from files, git and DVC.

`gather` is the only side-effecting part of the report: it reads the gate results, this branch's
metrics, the diffs DVC computes against the base ref, and the base's plots. `markdown.render`
turns the result into text without touching anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from modelops.deploy.preview import DeployPreview, preview
from modelops.errors import ModelopsError
from modelops.gates.results import GateResult, read_gates
from modelops.github import run_url
from modelops.gitinfo import (
    describe_commit,
    git_state,
    is_shallow,
    resolve_commit,
    show_bytes,
    show_file,
)
from modelops.io import JSONObject, flatten
from modelops.lockfile import output_versions
from modelops.params import load_params
from modelops.paths import (
    DATA_METRICS,
    LOCK_FILE,
    MODEL_METRICS,
    PLOTS_DIR,
    PREPARED_DIR,
    ProjectPaths,
)

PLOTS = (
    ("ROC curve", "roc.png", True),
    ("Precision-recall curve", "precision_recall.png", True),
    ("Confusion matrix", "confusion_matrix.png", False),
    ("Calibration", "calibration.png", False),
    ("Feature importance", "feature_importance.png", False),
)
"""(title, file in plots/, shown beside the base's)."""


@dataclass(frozen=True)
class ValueChange:
    """A metric or param, before (on the base ref) and after (on this branch)."""

    name: str
    old: Any
    """As DVC's diff gives it (None when absent): a number for a metric, any YAML value for a
    param; the report formats what it finds."""
    new: Any


Changes: TypeAlias = tuple[ValueChange, ...]


@dataclass(frozen=True)
class BaseRef:
    """The git ref this branch is compared with (the report's "Baseline" section): its commit,
    or why there are no comparison numbers. Not `metrics.Baseline`, the naive model's scores."""

    ref: str
    commit: str | None = None
    subject: str = ""
    date: str = ""
    data_version: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Plot:
    """A plot of this branch, and the base's version when it helps to see both.

    Paths are relative to the report's own folder: CML and Markdown previews resolve image
    links against the file that holds them, not the repository root.
    """

    title: str
    current: str
    base_image: str | None = None


@dataclass(frozen=True)
class ReportInputs:
    """The report's content, before formatting."""

    gates: tuple[GateResult, ...]
    base_ref: BaseRef
    metrics: tuple[ValueChange, ...] = ()
    data: tuple[ValueChange, ...] = ()
    params: tuple[ValueChange, ...] = ()
    errors: tuple[str, ...] = ()
    plots: tuple[Plot, ...] = ()
    html_reports: tuple[str, ...] = ()
    artifacts_url: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    deploy: DeployPreview | None = None


def gather(paths: ProjectPaths, *, base: str, images_dir: Path) -> ReportInputs:
    """Collect the report's content; base plots are extracted into `images_dir`."""
    try:
        gates = read_gates(json.loads(paths.gates_file.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ModelopsError(
            f"{paths.show(paths.gates_file)} does not exist; run `dvc repro` first"
        ) from None
    base_ref = _base_ref(paths.root, base)
    metrics, data, params, errors = _diffs(paths, base_ref)
    return ReportInputs(
        gates=gates,
        base_ref=base_ref,
        metrics=metrics,
        data=data,
        params=params,
        errors=errors,
        plots=_plots(paths, base_ref, images_dir),
        html_reports=tuple(sorted(p.name for p in paths.html_dir.glob("*.html"))),
        artifacts_url=run_url(),
        timings=_stage_timings(paths),
        deploy=_deploy_preview(paths),
    )


def _deploy_preview(paths: ProjectPaths) -> DeployPreview:
    """What `deploy.yml` would do with this model after the merge (nothing is published)."""
    if not (paths.model_dir / "MLmodel").is_file():
        return DeployPreview(problem=f"no trained model in {paths.show(paths.model_dir)}")
    return preview(
        paths.root,
        load_params(paths.params_file),
        model_dir=paths.model_dir,
        trained_at=git_state(paths.root).commit,
    )


def _base_ref(root: Path, ref: str) -> BaseRef:
    commit = resolve_commit(root, ref)
    if commit is None:
        if is_shallow(root):
            problem = (
                f"'{ref}' is not in this shallow clone: check out with fetch-depth: 0 "
                f"(or `git fetch origin {ref}`)"
            )
        else:
            problem = f"there is no '{ref}' branch yet, so nothing to compare against"
        return BaseRef(ref=ref, problem=problem)
    versions = output_versions(show_file(root, commit, LOCK_FILE))
    subject, date = describe_commit(root, commit)
    no_metrics = show_file(root, commit, MODEL_METRICS) is None
    return BaseRef(
        ref=ref,
        commit=commit,
        subject=subject,
        date=date,
        data_version=versions.get(PREPARED_DIR),
        problem=(
            f"'{ref}' has no committed metrics yet: this will be the first trained model"
            if no_metrics
            else None
        ),
    )


def _diffs(
    paths: ProjectPaths, base_ref: BaseRef
) -> tuple[Changes, Changes, Changes, tuple[str, ...]]:
    """Metric and param changes as DVC computes them against the base (workspace side)."""
    current = {name: _read_json(paths.root / name) for name in (MODEL_METRICS, DATA_METRICS)}
    errors = [
        f"{name} is missing or not valid JSON" for name, value in current.items() if not value
    ]
    if base_ref.commit is None:
        return (
            _as_new(current, MODEL_METRICS),
            _as_new(current, DATA_METRICS),
            (),
            tuple(errors),
        )

    from dvc.repo import Repo

    with Repo(str(paths.root)) as repo:
        metrics = repo.metrics.diff(a_rev=base_ref.commit, b_rev="workspace", all=True)
        params = repo.params.diff(a_rev=base_ref.commit, b_rev="workspace", all=False)
    errors.extend(_errors(metrics))
    changes = metrics.get("diff", {})
    params_changes = tuple(
        ValueChange(name, values.get("old"), values.get("new"))
        for file_changes in params.get("diff", {}).values()
        for name, values in sorted(file_changes.items())
    )
    return (
        _changes(changes.get(MODEL_METRICS, {})) or _as_new(current, MODEL_METRICS),
        _changes(changes.get(DATA_METRICS, {})) or _as_new(current, DATA_METRICS),
        params_changes,
        tuple(errors),
    )


def _changes(diff: dict[str, JSONObject]) -> Changes:
    return tuple(
        ValueChange(name, values.get("old"), values.get("new"))
        for name, values in sorted(diff.items())
    )


def _as_new(current: JSONObject, name: str) -> Changes:
    """Values of this branch alone, for when there is nothing to diff against."""
    return tuple(
        ValueChange(key, None, value) for key, value in sorted(flatten(current[name] or {}).items())
    )


def _errors(diff: JSONObject) -> list[str]:
    """DVC reports unreadable metrics files here (and gives an empty diff): surface them."""
    found = []
    for rev, problems in (diff.get("errors") or {}).items():
        items = problems.items() if isinstance(problems, dict) else [("", problems)]
        for name, error in items:
            if isinstance(error, FileNotFoundError):
                continue  # absent is not broken: the baseline section says what is missing
            side = "this branch" if rev == "workspace" else "the base"
            found.append(f"{name or 'metrics'} on {side} could not be read: {error}")
    return found


def _plots(paths: ProjectPaths, base_ref: BaseRef, images_dir: Path) -> tuple[Plot, ...]:
    images_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    for title, name, side_by_side in PLOTS:
        current = paths.plots_dir / name
        if not current.is_file():
            continue
        base_image = None
        if side_by_side and base_ref.commit is not None:
            content = show_bytes(paths.root, base_ref.commit, f"{PLOTS_DIR}/{name}")
            if content:
                base_image = images_dir / f"{base_ref.ref.replace('/', '-')}-{name}"
                base_image.write_bytes(content)
        plots.append(
            Plot(
                title,
                _link(paths, current),
                _link(paths, base_image) if base_image is not None else None,
            )
        )
    return tuple(plots)


def _link(paths: ProjectPaths, target: Path) -> str:
    """`target` as the report file links to it (relative to the report's folder)."""
    return Path(os.path.relpath(target, paths.report_file.parent)).as_posix()


def _stage_timings(paths: ProjectPaths) -> dict[str, float]:
    """Seconds each stage last took, by `dvc.yaml` stage name and in pipeline order."""
    recorded = _read_json(paths.timings_file) or {}
    stages = (yaml.safe_load(paths.dvc_file.read_text(encoding="utf-8")) or {}).get("stages", {})
    timings = {}
    for stage, spec in stages.items():
        command = str(spec.get("cmd", "")).removeprefix("modelops ")
        if command in recorded:
            timings[stage] = float(recorded[command])
    return timings


def _read_json(path: Path) -> Any:
    """Whatever JSON the file holds (None when it cannot be read): callers check its shape."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None

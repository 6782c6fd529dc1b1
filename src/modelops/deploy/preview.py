"""What merging this branch would deploy: the release changes and the diff of the manifests.

A dry run of `modelops release deploy` (nothing published, nothing registered) compared with the
manifests committed now; the pull-request report shows it, `modelops release preview` prints it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelops.deploy.workflow import DeployRequest, deploy_model, generated_files, manifests
from modelops.errors import ModelopsError
from modelops.gitinfo import git_state
from modelops.io import commit, tree_writer
from modelops.params import Params
from modelops.releases.files import load_releases
from modelops.releases.state import Change

DIFF_FILE = "changes.diff"
"""Beside the previewed manifests: their diff from the committed ones."""


@dataclass(frozen=True)
class EnvironmentChange:
    """One environment before and after the merge, in words."""

    environment: str
    before: str
    after: str


@dataclass(frozen=True)
class DeployPreview:
    """The planned releases and manifests, or why the merge would not deploy."""

    changes: tuple[EnvironmentChange, ...] = ()
    files: Mapping[Path, str] | None = None
    diff: str = ""
    notes: tuple[str, ...] = ()
    problem: str | None = None


def preview(
    root: Path, params: Params, *, model_dir: Path, trained_at: str | None = None
) -> DeployPreview:
    """Plan the deploy a merge would make; a refusal is reported, not raised.

    `trained_at`: the commit the model was trained at (default: HEAD).
    """
    trained_at = trained_at if trained_at is not None else git_state(root).commit
    before = load_releases(root, params)
    change = Change(at="(at merge)", by="deploy.yml", reason="preview")
    try:
        # Before the merge only this checkout's gates exist: the preview asks that they
        # passed the model; deploy.yml then checks the merged commit's record as well.
        request = DeployRequest(model_dir, trained_at, change, dry_run=True, gates="workspace")
        plan = deploy_model(root, params, request)
        files = manifests(root, params, plan.releases)
    except ModelopsError as refused:
        return DeployPreview(problem=str(refused))
    changes = tuple(
        EnvironmentChange(name, before[name].describe(), plan.releases[name].describe())
        for name in sorted(params.deploy.environments)
    )
    return DeployPreview(
        changes=changes,
        files=files,
        diff=manifest_diff(root, files),
        notes=plan.notes,
    )


def keep(planned: DeployPreview, out: Path) -> Path:
    """Write the previewed manifests (as under manifests/) and their diff to the folder `out`,
    replacing what it held."""
    if planned.files is None:
        raise ModelopsError(f"a merge would not deploy ({planned.problem}): nothing to write")
    files = {path.relative_to("manifests"): text for path, text in planned.files.items()}
    files[Path(DIFF_FILE)] = planned.diff
    commit({out: tree_writer(files)})
    return out


def manifest_diff(root: Path, files: Mapping[Path, str]) -> str:
    """A unified diff from the generated manifests on disk to `files`."""
    current = generated_files(root)
    chunks: list[str] = []
    for path in sorted(set(current) | set(files)):
        old, new = current.get(path), files.get(path)
        if old == new:
            continue
        chunks.extend(
            difflib.unified_diff(
                (old or "").splitlines(keepends=True),
                (new or "").splitlines(keepends=True),
                fromfile=f"a/{path}" if old is not None else "/dev/null",
                tofile=f"b/{path}" if new is not None else "/dev/null",
            )
        )
    return "".join(chunks)


def diff_stat(diff: str) -> list[tuple[str, int, int]]:
    """(file, lines added, lines removed) for each file of a unified diff."""
    lines = diff.splitlines()
    stats: list[tuple[str, int, int]] = []
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if line.startswith("--- ") and following.startswith("+++ "):
            old, new = line[4:], following[4:]
            stats.append(((old if new == "/dev/null" else new)[2:], 0, 0))
        elif stats and line.startswith("+") and not line.startswith("+++ "):
            name, added, removed = stats[-1]
            stats[-1] = (name, added + 1, removed)
        elif stats and line.startswith("-") and not following.startswith("+++ "):
            name, added, removed = stats[-1]
            stats[-1] = (name, added, removed + 1)
    return stats

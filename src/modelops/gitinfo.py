"""Git provenance for runs and releases: which commit, and whether the tree had local changes."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

UNKNOWN = "unknown"


@dataclass(frozen=True)
class GitState:
    """The commit checked out at `root` and whether tracked files differ from it."""

    commit: str
    dirty: bool


def git_state(root: Path) -> GitState:
    """Read the HEAD commit; outside a repository (or without git) the commit is `unknown`."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return GitState(commit=UNKNOWN, dirty=False)
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return GitState(commit=commit, dirty=bool(status))


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip()

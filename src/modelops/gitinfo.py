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


def resolve_commit(root: Path, ref: str) -> str | None:
    """The commit `ref` names, also trying `origin/<ref>` (CI checkouts lack local branches)."""
    for candidate in (ref, f"origin/{ref}"):
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
        if commit:
            return commit
    return None


def show_file(root: Path, commit: str, path: str) -> str | None:
    """A file's content at `commit`, or None when it is not there."""
    return _git(root, "show", f"{commit}:{path}")


def show_bytes(root: Path, commit: str, path: str) -> bytes | None:
    """A file's bytes at `commit` (for binary files such as plots), or None."""
    try:
        done = subprocess.run(
            ["git", "show", f"{commit}:{path}"], cwd=root, capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def describe_commit(root: Path, commit: str) -> tuple[str, str]:
    """(subject, commit date as YYYY-MM-DD) of a commit."""
    subject = _git(root, "log", "-1", "--format=%s", commit) or ""
    date = _git(root, "log", "-1", "--format=%cs", commit) or ""
    return subject, date


def user_name(root: Path) -> str | None:
    """The configured git user name (`git config user.name`), if any."""
    return _git(root, "config", "user.name") or None


def is_shallow(root: Path) -> bool:
    """Whether this clone has only part of the history (as CI checkouts do by default)."""
    return _git(root, "rev-parse", "--is-shallow-repository") == "true"


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip()

"""One release command at a time per checkout: the release files are read, changed, written.

Light on purpose (the standard library only): the command line wraps its handlers with it
before it knows which command runs.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from modelops.errors import ReleaseError
from modelops.paths import RELEASES_DIR

if TYPE_CHECKING:
    from modelops.paths import ProjectPaths

LOCK_NAME = "modelops-release.lock"
"""Held by the command changing the release files, in git's own directory (never in the work
tree, so no `git add` picks it up); the kernel frees it when the holder exits."""
WAIT_SECONDS = 30.0
"""How long a release command waits for another one in the same checkout before refusing."""
ArgsT = TypeVar("ArgsT")


@contextmanager
def exclusive(root: Path, *, wait_seconds: float = WAIT_SECONDS) -> Iterator[None]:
    """The release files of this checkout to one command at a time, from read to write.

    Two promotes (or a promote and a rollback) that both read the same release would each
    write their own step and both print success, one update lost: the second waits here up to
    `wait_seconds`, then refuses. An flock: a killed command leaves no stale lock.

    Raises:
        ReleaseError: another release command held the lock for all of `wait_seconds`.
    """
    path = lock_path(root)
    with path.open("a+", encoding="utf-8") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise ReleaseError(
                        f"another release command ({holder}) has been changing {RELEASES_DIR}/ "
                        f"in this checkout for over {wait_seconds:g} s: let it finish, then run "
                        "this one again (it will read what that one wrote)"
                    ) from None
                time.sleep(0.05)
        handle.seek(0)
        handle.truncate()
        handle.write(f"PID {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_path(root: Path) -> Path:
    """The lock of `root`'s release files: in its git directory (a worktree's `.git` file names
    it), or beside the system's temporary files, keyed by the checkout, outside git."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git / LOCK_NAME
    if dot_git.is_file():
        pointer = dot_git.read_text(encoding="utf-8").strip()
        if pointer.startswith("gitdir:"):
            folder = Path(pointer.removeprefix("gitdir:").strip())
            folder = folder if folder.is_absolute() else root / folder
            if folder.is_dir():
                return folder / LOCK_NAME
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"{key}-{LOCK_NAME}"


def one_at_a_time(
    command: Callable[[ArgsT, ProjectPaths], int],
) -> Callable[[ArgsT, ProjectPaths], int]:
    """`command` run holding its checkout's release lock (`exclusive`)."""

    @functools.wraps(command)
    def run(args: ArgsT, paths: ProjectPaths) -> int:
        with exclusive(paths.root):
            return command(args, paths)

    return run

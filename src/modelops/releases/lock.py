"""One release command at a time per checkout: the release files are read, changed, written.

Light on purpose (the standard library only): the command line wraps its handlers with it
before it knows which command runs.
"""

from __future__ import annotations

import fcntl
import functools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from modelops.errors import ReleaseError
from modelops.paths import RELEASES_DIR

if TYPE_CHECKING:
    from modelops.paths import ProjectPaths

LOCK_FILE = Path(RELEASES_DIR) / ".lock"
"""Held by the command changing the release files (git-ignored; the kernel frees it on exit)."""
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
    path = root / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
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


def one_at_a_time(
    command: Callable[[ArgsT, ProjectPaths], int],
) -> Callable[[ArgsT, ProjectPaths], int]:
    """`command` run holding its checkout's release lock (`exclusive`)."""

    @functools.wraps(command)
    def run(args: ArgsT, paths: ProjectPaths) -> int:
        with exclusive(paths.root):
            return command(args, paths)

    return run

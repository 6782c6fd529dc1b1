"""A stage that `dvc repro` started stops when that dvc is gone.

DVC runs a stage's command as its child and waits for it. Killed (SIGKILL, an OOM kill, a
closed CI job), dvc leaves its child running: the orphan went on to write `models/model` while
the run started to recover trained a new one. A command run by dvc (DVC sets `DVC_STAGE`)
watches the dvc that started it and, once that is gone, interrupts itself as Ctrl-C would
(`interrupt`): nothing it computed is moved into place, and it exits.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from modelops.io import process_alive

POLL_SECONDS = 0.5
_SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "fish"})


@contextmanager
def stopped_when_dvc_is_gone() -> Iterator[None]:
    """Watch the dvc that started this stage while the block runs (nothing outside dvc)."""
    if "DVC_STAGE" not in os.environ or threading.current_thread() is not threading.main_thread():
        yield
        return
    parent, watched = _STARTED_UNDER
    done = threading.Event()
    threading.Thread(
        target=_watch, args=(parent, watched, done), name="dvc-watch", daemon=True
    ).start()
    try:
        yield
    finally:
        done.set()


def _watch(parent: int, watched: int | None, done: threading.Event) -> None:
    while not done.wait(POLL_SECONDS):
        # Orphaned: the parent's death hands this process to init (or a subreaper).
        if os.getppid() != parent or (watched is not None and not process_alive(watched)):
            print(
                f"error: the dvc that ran stage '{os.environ.get('DVC_STAGE', '')}' is gone "
                "(killed): stopping without writing anything; run `dvc repro` again",
                file=sys.stderr,
                flush=True,
            )
            os.kill(os.getpid(), signal.SIGINT)
            return


def _command_name(pid: int) -> str:
    """The process's command name, '' where /proc cannot tell (not Linux)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _parent_of(pid: int) -> int | None:
    try:
        # /proc/PID/stat: "pid (comm) state ppid ...", comm may hold spaces and parentheses.
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _started_under() -> tuple[int, int | None]:
    """This process's parent, and the dvc to watch: the parent, or its parent when dvc ran the
    command through a shell."""
    parent = os.getppid()
    return parent, (_parent_of(parent) if _command_name(parent) in _SHELLS else parent)


_STARTED_UNDER = _started_under()
"""Read when `modelops` starts (this module is among its first imports). Read later, a dvc killed
while the command was still importing would be missed: by then the orphan's parent (or its
shell's) is already init, which stays alive."""

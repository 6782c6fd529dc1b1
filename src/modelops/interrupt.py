"""Ctrl-C that no library can swallow.

Deepchecks runs each check inside a broad `except`, so a KeyboardInterrupt raised in a check
becomes a check error and the command would go on to write a verdict the user stopped. The
handler here remembers the request as well as raising it, and `io.commit` checks it before it
moves any output into place: an interrupted command writes nothing, wherever the interrupt
landed. Moving finished outputs into place (milliseconds) is never cut in half: a Ctrl-C then
takes effect right after.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_requested = False
_deferred = False
_wrote = False


@contextmanager
def handled() -> Iterator[None]:
    """Handle Ctrl-C here while the block runs (the command line wraps each command in it).

    Outside the main thread, where Python delivers no signals, the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_interrupt)
    _forget()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _forget()


def ignore_from_now() -> None:
    """The command's work is done and written: a late Ctrl-C changes nothing."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def requested() -> bool:
    """Whether Ctrl-C was pressed in the `handled` block, even if a library swallowed it."""
    return _requested


def wrote_outputs() -> bool:
    """Whether outputs were moved into place in the `handled` block."""
    return _wrote


def raise_if_requested() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed, however it was handled since."""
    if _requested:
        raise KeyboardInterrupt


@contextmanager
def writing_outputs() -> Iterator[None]:
    """Move outputs into place: refuse if Ctrl-C was pressed, hold it off while moving."""
    global _deferred, _wrote
    raise_if_requested()
    _deferred = True
    try:
        yield
        _wrote = True
    finally:
        _deferred = False
    raise_if_requested()


def _forget() -> None:
    global _requested, _wrote
    _requested = _wrote = False


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    global _requested
    _requested = True
    if not _deferred:
        raise KeyboardInterrupt

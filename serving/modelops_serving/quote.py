"""Quote what a client sent inside an error message: a short prefix, on one line, never all of it.

A message that echoed a bad value whole would send a 5 MiB string back to its sender and into
the log; one with a raw newline from a client could forge log lines.
"""

from __future__ import annotations

import reprlib
from typing import Any

EXCERPT_CHARS = 40
MESSAGE_CHARS = 300
ELLIPSIS = "…"

# reprlib stops walking a container after a few items and levels: the cost of quoting a huge
# list is the cost of what is shown, not of the list.
_CONTAINERS = reprlib.Repr()
_CONTAINERS.maxlevel = 2
_CONTAINERS.maxlist = _CONTAINERS.maxdict = _CONTAINERS.maxtuple = 4
_CONTAINERS.maxstring = _CONTAINERS.maxlong = _CONTAINERS.maxother = EXCERPT_CHARS


def excerpt(value: Any) -> str:
    """The start of `value`'s repr: at most EXCERPT_CHARS characters, then "…" if cut."""
    if isinstance(value, str):
        text = repr(value[: EXCERPT_CHARS + 1])
    elif isinstance(value, list | dict | tuple):
        text = _CONTAINERS.repr(value)
    else:
        text = repr(value)
    return _cut(text, EXCERPT_CHARS)


def name(text: str) -> str:
    """A client-given name as it is when printable, else its repr; cut like `excerpt`."""
    shown = text[: EXCERPT_CHARS + 1]
    return _cut(shown if shown.isprintable() else repr(shown), EXCERPT_CHARS)


def capped(message: str) -> str:
    """A whole message from a library that may quote the request: one line, MESSAGE_CHARS long."""
    shown = message[: MESSAGE_CHARS + 1]
    if not shown.isprintable():
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
    return _cut(shown, MESSAGE_CHARS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + ELLIPSIS

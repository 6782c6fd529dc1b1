"""Atomic output writing: a failed command leaves the previous outputs intact.

Stages compute everything first, then hand their outputs to `commit`: each file or directory is
staged next to its target and swapped in with a rename, so a reader never sees half a file. A
Ctrl-C pressed before the swap (even one a library swallowed) moves nothing: see `interrupt`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from modelops import interrupt

Writer = Callable[[Path], None]
"""Writes one output (a file or a directory) at the path it is given."""
JSONObject: TypeAlias = dict[str, Any]
"""A JSON (or YAML) object whose shape is not ours to type: parsed from a file or an answer
before anything checked it, or built by a library to another project's schema (a Grafana
dashboard, a JSON schema). Its values are Any; documents whose shape we fix are TypedDicts."""
Leaf = TypeVar("Leaf")
Nested: TypeAlias = Mapping[str, "Leaf | Nested[Leaf]"]
"""Mappings nested to any depth, with leaves of one type (metrics: numbers)."""


def json_bytes(data: object) -> bytes:
    """Deterministic, readable JSON: sorted keys, two-space indent, trailing newline."""
    return (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def flatten(data: Nested[Leaf]) -> dict[str, Leaf]:
    """Nested mappings as one level of dotted keys (`per_class.yes.recall`), leaves unchanged.

    The names DVC gives nested metrics and params in its diffs, and the keys MLflow stores.
    """
    flat: dict[str, Leaf] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{inner}": leaf for inner, leaf in flatten(value).items()})
        else:
            flat[str(key)] = value
    return flat


def bytes_writer(content: bytes) -> Writer:
    """A writer that puts `content` in a file."""

    def write(path: Path) -> None:
        path.write_bytes(content)

    return write


def tree_writer(files: Mapping[Path, str]) -> Writer:
    """A writer that makes a directory holding `files` (relative path -> text)."""

    def write(path: Path) -> None:
        path.mkdir(parents=True)
        for name, text in sorted(files.items()):
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_text(text, encoding="utf-8")

    return write


def commit(outputs: Mapping[Path, Writer]) -> None:
    """Write every output to a staging path, then move them all into place.

    If any writer fails, nothing is moved and the staged files are removed.
    """
    staged: dict[Path, Path] = {}
    try:
        for target, write in outputs.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            recover(target)
            staging = _sibling(target, "tmp")
            _remove(staging)
            staged[target] = staging
            write(staging)
    except BaseException:
        for staging in staged.values():
            _remove(staging)
        raise
    try:
        with interrupt.writing_outputs():
            for target, staging in staged.items():
                _swap_in(staging, target)
    finally:
        for staging in staged.values():
            _remove(staging)


@contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty staging directory that replaces `target` if the block succeeds."""
    recover(target)
    staging = _sibling(target, "tmp")
    _remove(staging)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        _remove(staging)
        raise
    try:
        with interrupt.writing_outputs():
            _swap_in(staging, target)
    finally:
        _remove(staging)


_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<purpose>tmp|old)-(?P<pid>\d+)$")


def leftovers(folder: Path) -> list[Path]:
    """Staging and parked copies in `folder` that a killed command left (its process is gone)."""
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        match = _LEFTOVER.match(path.name)
        if match and not _alive(int(match["pid"])):
            found.append(path)
    return found


def recover(target: Path) -> None:
    """Undo what a killed command left beside `target`: a parked copy comes back if the kill
    fell between its two renames (the target is then missing); staged copies are removed."""
    for path in leftovers(target.parent):
        match = _LEFTOVER.match(path.name)
        if match is None or match["name"] != target.name:
            continue
        if match["purpose"] == "old" and not target.exists() and not target.is_symlink():
            path.rename(target)
        else:
            _remove(path)


def process_alive(pid: int) -> bool:
    """Whether a process with this PID exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(pid: int) -> bool:
    return pid == os.getpid() or process_alive(pid)


def _sibling(target: Path, purpose: str) -> Path:
    return target.with_name(f".{target.name}.{purpose}-{os.getpid()}")


def _swap_in(staging: Path, target: Path) -> None:
    if target.exists() and (staging.is_dir() or target.is_dir()):
        # A directory cannot be renamed over a non-empty one: park the old one first.
        parked = _sibling(target, "old")
        _remove(parked)
        target.rename(parked)
        staging.rename(target)
        _remove(parked)
    else:
        staging.replace(target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()

"""A device's state directory: the bundles it holds, which one it runs, and its counts.

- `bundles/<sha256>/`: each bundle unpacked and verified, named by its archive's sha256 (the
  current one and the previous one; older ones are removed);
- `current.json`: the bundle the device runs and the one before it (`Installed`); switching
  bundles is one atomic rename of this file, so a reader sees the old bundle or the new one;
- `counts.json`: the rows counted in the profile's bins since the current bundle was installed
  on its track (`modelops_device.counts.Counts`).

Every file is written to a temporary file beside it and renamed over it (`write_json`); a lock
file keeps two commands (an update and a score) from interleaving their reads and writes.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

BUNDLES = "bundles"
CURRENT = "current.json"
COUNTS = "counts.json"
_LOCK = ".lock"


class DeviceError(Exception):
    """The device cannot do what it was asked: the message says why and what to run."""


@dataclass(frozen=True)
class Installed:
    """A bundle on the device, as the fleet manifest named it."""

    sha256: str
    version: str
    model_hash: str
    track: str
    """`stable` or `candidate`: which bundle of the fleet manifest this device took."""

    def directory(self, state: Path) -> Path:
        return state / BUNDLES / self.sha256

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls(
            str(raw["sha256"]), str(raw["version"]), str(raw["model_hash"]), str(raw["track"])
        )


@dataclass(frozen=True)
class Current:
    """The bundle the device runs, and the one it ran before (kept for a switch back)."""

    installed: Installed
    previous: Installed | None = None

    def to_json(self) -> dict[str, Any]:
        previous = asdict(self.previous) if self.previous else None
        return {"installed": asdict(self.installed), "previous": previous}


def read_current(state: Path) -> Current | None:
    """What `current.json` says, or None on a device that never installed a bundle."""
    path = state / CURRENT
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        previous = Installed.from_json(raw["previous"]) if raw["previous"] else None
        return Current(Installed.from_json(raw["installed"]), previous)
    except (ValueError, KeyError, TypeError) as exc:
        raise DeviceError(f"{path} is damaged ({exc!r}): run `update` to install again") from None


def installed(state: Path) -> Installed:
    """The bundle the device runs; refused with what to run when there is none."""
    current = read_current(state)
    if current is None:
        raise DeviceError(f"{state}: no bundle installed; run `modelops-device update` first")
    return current.installed


def write_json(path: Path, document: object) -> None:
    """Replace `path` with `document` atomically: a reader sees the old file or the new one."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=1, sort_keys=True)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        temporary.chmod(0o644)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


@contextmanager
def locked(state: Path) -> Iterator[None]:
    """Hold the state directory's lock (made with the directory if needed)."""
    (state / BUNDLES).mkdir(parents=True, exist_ok=True)
    with (state / _LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

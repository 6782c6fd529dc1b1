"""The bundle as one deterministic tar.gz: same files, same bytes, whoever builds it when."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path


def archive_bytes(directory: Path) -> bytes:
    """A tar.gz of `directory`'s files at the archive's root: sorted members, mtime 0, uid and
    gid 0, no owner names, mode 0644 (0755 for the shared library), gzip header without time."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            name = path.relative_to(directory).as_posix()
            info = tarfile.TarInfo(name)
            data = path.read_bytes()
            info.size, info.mtime, info.uid, info.gid = len(data), 0, 0, 0
            info.uname = info.gname = ""
            info.mode = 0o755 if name.endswith(".so") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0)

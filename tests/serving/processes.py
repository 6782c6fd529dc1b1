"""What the operating system says about the server's processes and sockets (Linux /proc).

The tests ask the kernel rather than the server: which processes of a session or process group
are still alive, and on which addresses they listen.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")
_LISTEN = "0A"


def alive(*, session: int | None = None, group: int | None = None) -> list[int]:
    """Processes (not zombies) in `session` or process `group`."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited meanwhile
        state, _, pgrp, sid = stat.rsplit(")", 1)[1].split()[:4]
        if state == "Z":
            continue
        if (session is not None and int(sid) == session) or (
            group is not None and int(pgrp) == group
        ):
            found.append(int(entry.name))
    return sorted(found)


def listening(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state that one of `pids` holds."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in (PROC / str(pid) / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = str(fd.readlink())
                    if target.startswith("socket:["):
                        inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in (PROC / "net" / table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and inode in inodes:
                address, port = local.split(":")
                found.add((_address(address), int(port, 16)))
    return found


def wait_for_listeners(
    pids_of: Callable[[], list[int]], count: int, *, within: float
) -> set[tuple[str, int]]:
    """Poll `listening(pids_of())` until it has `count` sockets (or `within` seconds pass)."""
    deadline = time.monotonic() + within
    while True:
        found = listening(pids_of())
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def can_listen(port: int) -> bool:
    """Whether a server could listen on loopback `port` now (nothing holds it on 127.0.0.1 or
    0.0.0.0). With SO_REUSEADDR, as servers bind: connections in TIME_WAIT do not count."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


def _address(hex_address: str) -> str:
    """/proc/net/tcp prints addresses as 32-bit words in the machine's byte order. An IPv4
    address on an IPv6 socket (::ffff:127.0.0.1, as gRPC binds) is shown as IPv4."""
    words = [int(hex_address[i : i + 8], 16) for i in range(0, len(hex_address), 8)]
    address = ipaddress.ip_address(b"".join(struct.pack("=I", word) for word in words))
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)

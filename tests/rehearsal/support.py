"""What the rehearsal tests share: the request the plan tests vary (`dataclasses.replace`),
and the check that `modelops down` leaves nothing behind."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from modelops.cli import main
from modelops.rehearsal import processes
from modelops.rehearsal.plan import UpRequest

UP_REQUEST = UpRequest(
    env="production",
    minutes=10.0,
    rate=5.0,
    rows=1,
    canary_percent=None,
    canary_errors=0.0,
    label_delay=30.0,
    time_scale=60.0,
    shift=None,
    shift_at=60.0,
    shift_for=120.0,
    prometheus_port=9090,
    alertmanager_port=9093,
    stable_port=9000,
    canary_port=9001,
    stable_metrics_port=6000,
    canary_metrics_port=6001,
)


def listening(port: int) -> bool:
    """Whether something accepts connections on the loopback `port`."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def down_leaves_nothing(
    project: Path, started: Sequence[processes.Started], ports: Mapping[str, int]
) -> None:
    """`modelops down` in `project` stops every process `up` started and frees every port."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        assert main(["down"]) == 0
    assert processes.running(project) == []
    assert not any(processes._alive(p.pid) for p in started), "every process is gone"
    assert not any(listening(port) for port in ports.values()), "every port is free"

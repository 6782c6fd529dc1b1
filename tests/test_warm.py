"""The warm `modelops` (tests/warm.py) is the installed one, faster: same output, same exit."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import venv_bin
from tests.warm import SHIMS_VARIABLE, SOCKET_VARIABLE


def _run(command: Path, *args: str, cwd: Path) -> tuple[int, str, str]:
    done = subprocess.run([str(command), *args], cwd=cwd, capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def warm() -> Path:
    """The session's shim, once its server listens."""
    socket = Path(os.environ[SOCKET_VARIABLE])
    deadline = time.monotonic() + 60
    while not socket.exists():
        assert time.monotonic() < deadline, "the warm server did not start listening in 60 s"
        time.sleep(0.1)
    return Path(os.environ[SHIMS_VARIABLE]) / "modelops"


@pytest.mark.parametrize(
    "args",
    [("--help",), ("gate", "nothing"), ("prepare",), ("gates",), ("prepare", "--unknown")],
    ids=["help", "usage-error", "no-params-in-the-cwd", "failing-command", "unknown-option"],
)
def test_the_warm_command_prints_and_exits_as_the_installed_one(
    warm: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    installed = _run(venv_bin() / "modelops", *args, cwd=tmp_path)
    assert _run(warm, *args, cwd=tmp_path) == installed


def test_without_a_server_the_shim_runs_the_installed_command(warm: Path, tmp_path: Path) -> None:
    environment = {**os.environ, SOCKET_VARIABLE: str(tmp_path / "no-server.sock")}
    done = subprocess.run(
        [str(warm), "--help"], capture_output=True, text=True, env=environment, cwd=tmp_path
    )
    installed = _run(venv_bin() / "modelops", "--help", cwd=tmp_path)
    assert (done.returncode, done.stdout) == installed[:2]

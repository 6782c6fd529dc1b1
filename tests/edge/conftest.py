"""Fixtures of the edge export tests: a copy of the shared trained project that runs the real
exporter from this checkout's edge/.venv (`make install-edge` when it is missing), and a key pair
made with openssl."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.shared import copy_project
from tests.support import REPO_ROOT, tool_or_skip

EDGE_VENV = REPO_ROOT / "edge" / ".venv"
EDGE_PYTHON = EDGE_VENV / "bin" / "python"


def ensure_edge_environment() -> None:
    """edge/.venv, built by `make install-edge` if missing (so CI installs it on demand)."""
    if (EDGE_VENV / ".installed").is_file():
        return
    done = subprocess.run(["make", "install-edge"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"make install-edge failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def edge_project(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained project, copied, with this checkout's edge/.venv linked in."""
    tool_or_skip("gcc", install="apt-get install gcc")
    ensure_edge_environment()
    root = copy_project(trained_project, tmp_path_factory.mktemp("edge") / "project")
    (root / "edge").mkdir(exist_ok=True)
    (root / "edge" / ".venv").symlink_to(EDGE_VENV)
    return root


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(private, public) P-256 keys, as runbooks/edge.md makes them."""
    openssl = tool_or_skip("openssl", install="apt-get install openssl")
    keys = tmp_path_factory.mktemp("keys")
    private, public = keys / "edge-signing.key", keys / "edge-signing.pub"
    subprocess.run(
        [openssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(private)],
        check=True,
    )
    subprocess.run(
        [openssl, "ec", "-in", str(private), "-pubout", "-out", str(public)],
        check=True,
        capture_output=True,
    )
    return private, public

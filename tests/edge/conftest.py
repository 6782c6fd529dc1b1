"""Fixtures of the edge export tests: a copy of the shared trained project that runs the real
exporter from this checkout's edge/.venv (`make install-edge` when it is missing), and a key pair
made with openssl."""

from __future__ import annotations

import contextlib
import io
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from modelops.cli import main
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


def make_key_pair(folder: Path) -> tuple[Path, Path]:
    """(private, public) P-256 keys in `folder`, as runbooks/edge.md makes them."""
    openssl = tool_or_skip("openssl", install="apt-get install openssl")
    private, public = folder / "edge-signing.key", folder / "edge-signing.pub"
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


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(private, public) P-256 keys, as runbooks/edge.md makes them."""
    return make_key_pair(tmp_path_factory.mktemp("keys"))


class SignedBundle(NamedTuple):
    """An exported bundle: its directory, its archive, and the key pair it was signed with."""

    directory: Path
    archive: Path
    private_key: Path
    public_key: Path


@pytest.fixture(scope="session")
def signed_native(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> SignedBundle:
    """The default model exported once per session by the real `modelops export --format
    native`, signed with a key made here; for the device client's tests, which only read it."""
    tool_or_skip("gcc", install="apt-get install gcc")
    ensure_edge_environment()
    base = tmp_path_factory.mktemp("device-bundle")
    root = copy_project(trained_project, base / "project")
    (root / "edge").mkdir(exist_ok=True)
    (root / "edge" / ".venv").symlink_to(EDGE_VENV)
    private, public = make_key_pair(base)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), contextlib.chdir(root):
        code = main(
            ["export", "--format", "native", "--out", str(base / "bundles"), "--key", str(private)]
        )
    assert code == 0, err.getvalue()
    (archive,) = (base / "bundles").glob("*.tar.gz")
    directory = archive.with_name(archive.name.removesuffix(".tar.gz"))
    return SignedBundle(directory, archive, private, public)

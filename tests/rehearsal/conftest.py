"""Fixtures for the rehearsal tests: Prometheus (required under CI) and a trained project."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from modelops.rehearsal import processes
from tests.shared import built_once, copy_project, own_store
from tests.support import (
    REPO_ROOT,
    copy_template,
    isolate,
    run_modelops,
    small_params,
    tool_or_skip,
)


def _build(root: Path) -> None:
    """The template with a model trained on 2,000 rows (prepare and train only)."""
    copy_template(root, small_params())
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch, store=own_store(root))
        patch.chdir(root)
        run_modelops("prepare", "train")


@pytest.fixture(scope="session")
def rehearsal_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained once per test run for every rehearsal module (tests/shared.py)."""
    return built_once(tmp_path_factory, "rehearsal", _build)


@pytest.fixture(scope="module")
def project(rehearsal_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the trained project whose serving/.venv is this checkout's."""
    tool_or_skip("prometheus", install="apt-get install prometheus")
    tool_or_skip(
        "alertmanager", "prometheus-alertmanager", install="apt-get install prometheus-alertmanager"
    )
    root = copy_project(rehearsal_project, tmp_path_factory.mktemp("rehearsal") / "project")
    (root / "serving" / ".venv").symlink_to(REPO_ROOT / "serving" / ".venv")
    yield root
    processes.down(root)


@pytest.fixture(autouse=True)
def reap_what_a_command_stopped() -> Iterator[None]:
    """Wait for the servers this process started and a `modelops` subprocess stopped.

    `processes.up` runs in this test process, so its servers are this process's children; when
    `modelops canary auto` (a subprocess) restarts one, the old one exits, but only its parent,
    this process, can reap it: left alone it stays a zombie until the worker exits.
    """
    yield
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error, ChildProcessError):
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, 0)

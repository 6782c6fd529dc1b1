"""Fixtures for the rehearsal tests: Prometheus (required under CI) and a trained project."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.rehearsal import processes
from tests.support import REPO_ROOT, copy_template, run_modelops, small_params


def _prometheus_or_skip() -> str:
    found = shutil.which("prometheus")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("prometheus is not installed: .ci/run installs it (apt-get install prometheus)")
    pytest.skip("no prometheus on PATH (apt-get install prometheus); CI installs it")


def _alertmanager_or_skip() -> None:
    try:
        processes.find_alertmanager()
    except processes.RehearsalError:
        if os.environ.get("CI"):
            pytest.fail(
                "alertmanager is not installed: .ci/run installs it "
                "(apt-get install prometheus-alertmanager)"
            )
        pytest.skip("no alertmanager on PATH (apt-get install prometheus-alertmanager)")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A trained project whose serving/.venv is this checkout's."""
    _prometheus_or_skip()
    _alertmanager_or_skip()
    root = copy_template(tmp_path_factory.mktemp("rehearsal") / "project", small_params())
    (root / "serving" / ".venv").symlink_to(REPO_ROOT / "serving" / ".venv")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        run_modelops("prepare", "train")
    yield root
    processes.down(root)

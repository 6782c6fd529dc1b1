"""Fixtures for the rehearsal tests: Prometheus (required under CI) and a trained project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.rehearsal import processes
from tests.support import REPO_ROOT, copy_template, run_modelops, small_params, tool_or_skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A trained project whose serving/.venv is this checkout's."""
    tool_or_skip("prometheus", install="apt-get install prometheus")
    tool_or_skip(
        "alertmanager", "prometheus-alertmanager", install="apt-get install prometheus-alertmanager"
    )
    root = copy_template(tmp_path_factory.mktemp("rehearsal") / "project", small_params())
    (root / "serving" / ".venv").symlink_to(REPO_ROOT / "serving" / ".venv")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        run_modelops("prepare", "train")
    yield root
    processes.down(root)

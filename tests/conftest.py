"""Shared fixtures. Every test points MLflow at a throwaway store: none touches a real one."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.paths import ProjectPaths
from tests.support import small_params, write_params


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite tracking store for the session (creating one costs about 2 s)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, mlflow_store: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "WARNING")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    # Commits made by tests never depend on the machine's git identity.
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "modelops tests")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tests@modelops.invalid")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectPaths:
    """An empty project directory with small params, as the working directory."""
    root = tmp_path / "project"
    root.mkdir()
    write_params(root, small_params())
    monkeypatch.chdir(root)
    return ProjectPaths(root=root)

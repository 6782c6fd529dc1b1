"""Shared fixtures. Every test points MLflow at a throwaway store: none touches a real one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelops.paths import ProjectPaths
from tests.shared import build_template_project, build_trained_project, built_once
from tests.support import isolate, small_params, venv_bin, write_params
from tests.warm import SHIMS_VARIABLE, SOCKET_VARIABLE, start


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadscope` (what `make test` runs): the slowest scope first (tests/scheduling.py)."""
    if config.getoption("dist") != "loadscope":
        return None
    from tests.scheduling import SlowestFirstScheduling

    return SlowestFirstScheduling(config, log)


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite tracking store for the session (creating one costs about 2 s)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="session", autouse=True)
def _warm_modelops(tmp_path_factory: pytest.TempPathFactory, mlflow_store: str) -> Iterator[None]:
    """The pipeline stages that tests run through `dvc` start warm (tests/warm.py): one fork
    server per test process, started in the tests' environment, stopped by its pid at the end."""
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch, store=mlflow_store)  # what the libraries read as they are imported
        server = start(tmp_path_factory.mktemp("warm"), venv_bin() / "modelops")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SOCKET_VARIABLE, str(server.socket))
        patch.setenv(SHIMS_VARIABLE, str(server.shims))
        patch.setenv("PATH", f"{server.shims}{os.pathsep}{os.environ['PATH']}")
        try:
            yield
        finally:
            server.stop()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, mlflow_store: str) -> None:
    isolate(monkeypatch, store=mlflow_store)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectPaths:
    """An empty project directory with small params, as the working directory."""
    root = tmp_path / "project"
    root.mkdir()
    write_params(root, small_params())
    monkeypatch.chdir(root)
    return ProjectPaths(root=root)


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template trained and committed once per test run, shared by every worker.

    Read it in place, or `tests.shared.copy_project` it to change anything (tests/shared.py).
    """
    return built_once(tmp_path_factory, "trained", build_trained_project)


@pytest.fixture(scope="session")
def template_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template with its own params and data (20,000 rows), trained and committed once per
    test run; its MLflow run is in its own store. Copy it (`tests.shared.copy_project`) to
    change anything."""
    return built_once(tmp_path_factory, "template", build_template_project)

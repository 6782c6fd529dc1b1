"""The serving environment and image agree with training and with what the tests run."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from modelops_serving.launch import (
    BIND_HOST_ENV,
    DEFAULT_THREADS,
    DEFAULT_WORKERS,
    EXECUTABLE,
    SERVER_CLASS,
    SERVER_ENVIRONMENT,
)

from tests.serving.conftest import SERVING_DIR
from tests.serving.dockerfile import DOCKERFILE, entrypoint, environment, instructions
from tests.support import REPO_ROOT

SHARED_WITH_TRAINING = ("scikit-learn", "skops", "numpy", "scipy", "pandas")


def _locked(lock: Path) -> dict[str, str]:
    return {p["name"]: p["version"] for p in tomllib.loads(lock.read_text())["package"]}


@pytest.mark.parametrize("package", SHARED_WITH_TRAINING)
def test_the_model_libraries_match_the_training_environment(package: str) -> None:
    training, serving = _locked(REPO_ROOT / "uv.lock"), _locked(SERVING_DIR / "uv.lock")
    assert serving[package] == training[package], (
        f"{package}: serving {serving[package]} != training {training[package]}; a model may "
        "not load where it is served. Pin the same version in serving/pyproject.toml"
    )


def test_seldon_core_is_the_last_apache_release() -> None:
    assert _locked(SERVING_DIR / "uv.lock")["seldon-core"] == "1.17.1", "1.18+ is BSL-1.1"


def test_the_image_runs_the_command_the_tests_run() -> None:
    assert entrypoint() == [EXECUTABLE, SERVER_CLASS]
    scripts = tomllib.loads((SERVING_DIR / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[EXECUTABLE] == "modelops_serving.microservice:main"
    env = environment()
    assert env[BIND_HOST_ENV] == "0.0.0.0", "in a pod, the executor and Prometheus connect"
    assert env["GUNICORN_WORKERS"] == str(DEFAULT_WORKERS)
    assert env["GUNICORN_THREADS"] == str(DEFAULT_THREADS)
    for key, value in SERVER_ENVIRONMENT.items():
        assert env[key] == value
    assert env["MODEL_URI"] == "/mnt/models", "where Seldon's storage initializer puts the model"


def test_the_image_copies_each_path_dependency_before_installing_the_dependencies() -> None:
    # The telemetry contract is a path dependency (serving/contract): the build context is
    # serving/, and `uv sync --frozen --no-install-project` installs it with the others.
    pyproject = tomllib.loads((SERVING_DIR / "pyproject.toml").read_text())
    paths = {
        name: source["path"]
        for name, source in pyproject["tool"]["uv"]["sources"].items()
        if "path" in source
    }
    assert "modelops-contract" in paths
    first_sync = DOCKERFILE.index("RUN uv sync")
    for name, path in paths.items():
        copy = re.search(rf"^COPY {re.escape(path)} \./{re.escape(path)}$", DOCKERFILE, re.M)
        assert copy, f"the Dockerfile does not COPY {path} ({name})"
        assert copy.start() < first_sync, f"{path} is copied after the first uv sync"
        assert (SERVING_DIR / path / "pyproject.toml").is_file()
    assert "--no-install-project --no-editable" in DOCKERFILE, (
        "the runtime stage copies only .venv: path dependencies must be installed, not linked"
    )


def test_the_image_is_pinned_locked_and_non_root() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert base
    assert re.fullmatch(r"python:3\.11[\w.-]*@sha256:[0-9a-f]{64}", base[1])
    assert DOCKERFILE.count("FROM ${PYTHON_IMAGE}") == 2
    assert "uv sync --frozen" in DOCKERFILE, "the image installs serving/uv.lock, nothing else"
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert makefile_uv
    assert f"uv=={makefile_uv[1]}" in DOCKERFILE
    (user,) = instructions("USER")
    assert user not in ("0", "root")

"""Fixtures for the deploy tests: model versions, trained models, and the shared schemas."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support import (
    REPO_ROOT,
    git,
    run_modelops,
    small_params,
    template_params,
    write_params,
)

SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"


@pytest.fixture(scope="session")
def schema_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One schema cache for the session: tests never read or fill the user's own cache."""
    return tmp_path_factory.mktemp("schema-cache")


@pytest.fixture(autouse=True)
def _shared_schemas(monkeypatch: pytest.MonkeyPatch, schema_cache: Path) -> None:
    """Validate against the shared schemas when this machine has them.

    An already-set MODELOPS_SCHEMAS wins (a worktree anywhere can point at them); without
    either, the pinned upstream files are downloaded once into the session's cache.
    """
    if SHARED_SCHEMAS.is_dir() and not os.environ.get("MODELOPS_SCHEMAS"):
        monkeypatch.setenv("MODELOPS_SCHEMAS", str(SHARED_SCHEMAS))
    monkeypatch.setenv("MODELOPS_SCHEMAS_CACHE", str(schema_cache))


@pytest.fixture
def shared_schemas() -> Path:
    """The shared schemas folder itself (reference data, read in place), or skip."""
    folder = Path(os.environ.get("MODELOPS_SCHEMAS") or SHARED_SCHEMAS)
    if not (folder / "seldon").is_dir():
        pytest.skip(f"no shared schemas at {folder} (set MODELOPS_SCHEMAS to use them)")
    return folder


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory, mlflow_store: str) -> list[Path]:
    """Three real trained models (different learning rates), each with an MLflow run file."""
    models = []
    for rate in (0.05, 0.1, 0.2):
        root = tmp_path_factory.mktemp(f"model-{rate}")
        params = small_params(1500)
        params["train"]["model"]["learning_rate"] = rate
        write_params(root, params)
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(root)
            patch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
            run_modelops("prepare", "train", "evaluate")
        models.append(root)
    return models


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The template's params and templates in a fresh repository, as the working directory."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "manifests" / "templates", root / "manifests" / "templates")
    write_params(root, template_params())
    (root / ".gitignore").write_text("/models/\n/model-store/\n/reports/*\n!/reports/gates.json\n")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "Start from the template")
    monkeypatch.chdir(root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("GITHUB_ACTOR", "deploy-bot")
    return root

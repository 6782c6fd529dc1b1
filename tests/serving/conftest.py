"""The server's pure modules (artifact, validation, launch, quote) import in the pipeline's env.

The server itself runs in its own environment (serving/.venv): the HTTP tests start the real
microservice from there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT, run_modelops, small_params, write_params

SERVING_DIR = REPO_ROOT / "serving"
SERVING_BIN = SERVING_DIR / ".venv" / "bin"
if str(SERVING_DIR) not in sys.path:
    sys.path.insert(0, str(SERVING_DIR))


@pytest.fixture(scope="session")
def served_project(tmp_path_factory: pytest.TempPathFactory, mlflow_store: str) -> Path:
    """A model trained on small data (only prepare and train), shared by the serving tests.

    Tests that change a model directory change a copy of `models/model`, never this one.
    """
    root = tmp_path_factory.mktemp("served")
    write_params(root, small_params(3000))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
        run_modelops("prepare", "train")
    return root


@pytest.fixture(scope="session")
def model_dir(served_project: Path) -> Path:
    return served_project / "models" / "model"

"""The server's pure modules (artifact, validation, launch, quote) import in the pipeline's env.

The server itself runs in its own environment (serving/.venv): the HTTP tests start the real
microservice from there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

SERVING_DIR = REPO_ROOT / "serving"
SERVING_BIN = SERVING_DIR / ".venv" / "bin"
if str(SERVING_DIR) not in sys.path:
    sys.path.insert(0, str(SERVING_DIR))


@pytest.fixture(scope="session")
def served_project(trained_project: Path) -> Path:
    """The shared trained project (tests/shared.py), read in place by the serving tests.

    Tests that change a model directory change a copy of `models/model`, never this one.
    """
    return trained_project


@pytest.fixture(scope="session")
def model_dir(served_project: Path) -> Path:
    return served_project / "models" / "model"

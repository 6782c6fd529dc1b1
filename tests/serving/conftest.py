"""The server's pure modules (artifact, validation, launch, quote) import in the pipeline's env.

The server itself runs in its own environment (serving/.venv): the HTTP tests start the real
microservice from there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelops_contract import Experiment
from modelops_serving.launch import Server

from tests.serving.experiment_models import half_and_half, with_candidate
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


@pytest.fixture(scope="module")
def models(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An experiment's model_uri, holding `b/`: the trained model with its baseline shifted
    (`tests.serving.experiment_models`)."""
    return with_candidate(model_dir, tmp_path_factory.mktemp("experiment"))


@pytest.fixture(scope="module")
def experiment(model_dir: Path, models: Path) -> Experiment:
    """stable (the trained model) and b, half and half, by `customer_id`."""
    return half_and_half(model_dir, models)


def serving(server: Server, log: Path) -> Iterator[Server]:
    """Start a `launch.Server`, hand it over, and check that it stopped cleanly."""
    server.start()
    try:
        yield server
    finally:
        assert server.stop() == 0, f"the server did not stop cleanly:\n{log.read_text()[-2000:]}"

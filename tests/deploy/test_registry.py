"""With an MLflow registry configured, deploys register versions and aliases follow releases.

`<environment>` points at what serves an environment as stable; `canary` at the running canary
(and is deleted when there is none). The store is the tests' throwaway SQLite one.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from modelops import tracking
from tests.deploy.support import merge_model, modelops, step
from tests.support import write_params


@pytest.fixture
def registered(repo: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A registry-backed project: MLFLOW_TRACKING_URI set, a registered model name of its own."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    name = f"churn-{uuid.uuid4().hex[:8]}"
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["deploy"]["registered_model"] = name
    write_params(repo, params)
    return name


def _aliases(store: str, name: str) -> dict[str, str]:
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    found = {}
    for alias in ("staging", "production", "canary"):
        try:
            found[alias] = str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            continue
    return found


def test_aliases_follow_every_release_step(
    repo: Path,
    registered: str,
    mlflow_store: str,
    trained_models: list[Path],
) -> None:
    merge_model(repo, trained_models[0])
    assert modelops("release", "deploy", "--dry-run")[0] == 0
    assert _aliases(mlflow_store, registered) == {}, "a dry run registers nothing"
    assert step(repo, "deploy") == "deploy: 1 to staging (100%), production (100%)"
    assert _aliases(mlflow_store, registered) == {"staging": "1", "production": "1"}
    release = yaml.safe_load((repo / "manifests" / "releases" / "staging.yaml").read_text())
    run = yaml.safe_load((trained_models[0] / "reports" / "mlflow_run.json").read_text())
    assert release["stable"]["mlflow_run_id"] == run["run_id"]

    merge_model(repo, trained_models[1])
    assert step(repo, "deploy") == "deploy: 2 to staging (100%), production (canary 10%)"
    assert _aliases(mlflow_store, registered) == {"staging": "2", "production": "1", "canary": "2"}

    for _ in range(3):
        step(repo, "promote", "--env", "production")
    assert _aliases(mlflow_store, registered) == {"staging": "2", "production": "2"}

    merge_model(repo, trained_models[2])
    step(repo, "deploy")
    assert _aliases(mlflow_store, registered)["canary"] == "3"
    step(repo, "rollback", "--env", "production", "--reason", "latency")
    assert _aliases(mlflow_store, registered) == {"staging": "3", "production": "2"}


def test_registering_the_same_run_twice_reuses_its_version(
    repo: Path,
    registered: str,
    trained_models: list[Path],
) -> None:
    run = yaml.safe_load((trained_models[0] / "reports" / "mlflow_run.json").read_text())
    first = tracking.register_model(run["model_uri"], registered, run_id=run["run_id"], root=repo)
    again = tracking.register_model(run["model_uri"], registered, run_id=run["run_id"], root=repo)
    assert first == again == "1"


def test_without_a_run_file_the_deploy_still_works_and_says_so(
    repo: Path,
    registered: str,
    trained_models: list[Path],
) -> None:
    merge_model(repo, trained_models[0])
    (repo / "reports" / "mlflow_run.json").unlink()
    code, out, _ = modelops("release", "deploy")
    assert code == 0
    assert "no MLflow run recorded" in out


def test_without_a_registry_the_deploy_says_it_uses_the_dvc_tracked_model(
    repo: Path,
    trained_models: list[Path],
) -> None:
    merge_model(repo, trained_models[0])
    code, out, _ = modelops("release", "deploy")
    assert code == 0
    assert "no MLflow server configured (MLFLOW_TRACKING_URI unset)" in out

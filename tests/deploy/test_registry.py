"""The MLflow registry follows the release files, and only after they were pushed.

`modelops release deploy|promote|rollback|restore` never touch the registry: a release commit
whose push is refused leaves it as it was. `modelops release sync-registry` (run by deploy.yml and
rollout.yml after their push) registers each served model once, by content hash, and points
`<environment>` at the stable model, `<environment>-canary` at the canary and
`<environment>-shadow` at the shadow (each removed when there is none). The store is the tests'
throwaway SQLite one.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.deploy.support import merge_model, modelops, step
from tests.support import write_params

ALIASES = ("staging", "production", "production-canary", "staging-canary", "production-shadow")


@pytest.fixture
def registered(repo: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A registry-backed project: MLFLOW_TRACKING_URI set, a registered model name of its own."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    name = f"churn-{uuid.uuid4().hex[:8]}"
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["deploy"]["registered_model"] = name
    write_params(repo, params)
    return name


def _client(store: str) -> MlflowClient:
    return MlflowClient(tracking_uri=store, registry_uri=store)


def _aliases(store: str, name: str) -> dict[str, str]:
    found = {}
    for alias in ALIASES:
        try:
            found[alias] = str(_client(store).get_model_version_by_alias(name, alias).version)
        except MlflowException:
            continue
    return found


def _versions(store: str, name: str) -> int:
    return len(_client(store).search_model_versions(f"name = '{name}'"))


def _sync() -> str:
    code, out, err = modelops("release", "sync-registry")
    assert code == 0, err
    return out


def test_release_steps_leave_the_registry_alone_until_it_is_synced(
    repo: Path, registered: str, mlflow_store: str, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    v1 = step(repo, "deploy").split()[1]
    assert _versions(mlflow_store, registered) == 0, "a release commit not yet pushed"
    assert f"{registered}@production -> version 1 ({v1})" in _sync()
    assert _aliases(mlflow_store, registered) == {"staging": "1", "production": "1"}
    version = _client(mlflow_store).get_model_version(registered, "1")
    release = yaml.safe_load((repo / "manifests" / "releases" / "production.yaml").read_text())
    assert version.source == release["stable"]["model_uri"], "the immutable published copy"
    assert version.run_id == release["stable"]["mlflow_run_id"], "linked to its MLflow run"
    assert version.tags["model_hash"] == release["stable"]["model_hash"]

    merge_model(repo, trained_models[1])
    step(repo, "deploy")
    assert _aliases(mlflow_store, registered) == {"staging": "1", "production": "1"}
    _sync()
    assert _aliases(mlflow_store, registered) == {
        "staging": "2",
        "production": "1",
        "production-canary": "2",
    }

    for reason in ("ok at 10%", "ok at 25%", "ok at 50%"):
        step(repo, "promote", "--env", "production", "--reason", reason)
    assert "production-canary removed (no canary)" in _sync()
    assert _aliases(mlflow_store, registered) == {"staging": "2", "production": "2"}

    merge_model(repo, trained_models[2])
    step(repo, "deploy")
    _sync()
    assert _aliases(mlflow_store, registered)["production-canary"] == "3"
    step(repo, "rollback", "--env", "production", "--reason", "latency")
    _sync()
    assert _aliases(mlflow_store, registered) == {"staging": "3", "production": "2"}


def test_a_shadow_has_its_own_alias_until_it_is_promoted_to_a_canary(
    repo: Path, registered: str, mlflow_store: str, trained_models: list[Path]
) -> None:
    # Given shadow_first in production, a second model is a shadow: @production-shadow, not
    # @production-canary (it takes no traffic); promoted, the alias moves to -canary.
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["deploy"]["environments"]["production"]["shadow_first"] = True
    write_params(repo, params)
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    _sync()
    merge_model(repo, trained_models[1])
    step(repo, "deploy")
    _sync()
    assert _aliases(mlflow_store, registered) == {
        "staging": "2",
        "production": "1",
        "production-shadow": "2",
    }
    step(repo, "promote", "--env", "production", "--reason", "agrees with stable")
    assert "production-shadow removed (no shadow)" in _sync()
    assert _aliases(mlflow_store, registered) == {
        "staging": "2",
        "production": "1",
        "production-canary": "2",
    }


def test_syncing_again_changes_nothing_and_registers_nothing_twice(
    repo: Path, registered: str, mlflow_store: str, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    first = _sync()
    assert _sync() == first
    assert _versions(mlflow_store, registered) == 1, "staging and production share one version"


def test_a_run_that_the_server_does_not_have_is_not_linked(
    repo: Path, registered: str, mlflow_store: str, trained_models: list[Path]
) -> None:
    # Given a model evaluated against another tracking store (a pull request's throwaway one),
    # when its release is synced, it is registered from its store URI without a run link.
    merge_model(repo, trained_models[0])
    run_file = repo / "reports" / "mlflow_run.json"
    run = yaml.safe_load(run_file.read_text())
    run_file.write_text(yaml.safe_dump({**run, "run_id": uuid.uuid4().hex}))
    step(repo, "deploy")
    _sync()
    assert _client(mlflow_store).get_model_version(registered, "1").run_id is None


def test_without_a_registry_the_release_still_records_the_run_and_sync_says_so(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    release = yaml.safe_load((repo / "manifests" / "releases" / "production.yaml").read_text())
    run = yaml.safe_load((trained_models[0] / "reports" / "mlflow_run.json").read_text())
    assert release["stable"]["mlflow_run_id"] == run["run_id"], "filled whenever a run exists"
    assert "MLFLOW_TRACKING_URI unset" in _sync()

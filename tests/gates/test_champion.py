"""The champion gate against a real `main` in a real git + DVC repository."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from modelops.errors import ParamsError
from modelops.gates.champion import compare
from modelops.lockfile import stage_inputs
from modelops.params import ChampionGateParams, parse_params
from modelops.releases.documents import to_document
from modelops.releases.publish import publish
from modelops.releases.state import Change, ModelVersion, Release, deploy
from modelops.statistics import Interval
from tests.shared import copy_project, trained_params
from tests.support import git, run_dvc, run_modelops, write_params

_CHANGE = Change(at="2026-12-01T00:00:00Z", by="tests", reason="the weak model")


def _params(**train_model: Any) -> dict[str, Any]:
    """main's params (the shared trained project's, tests/shared.py), `train_model` changed."""
    params = trained_params()
    params["train"]["model"].update(train_model)
    return params


def _champion(root: Path, *, retrain: bool = False) -> dict[str, Any]:
    """The champion gate's record for the workspace model.

    The workspace starts with main's own model, evaluated: a test that changes only gate params
    judges that very model. With `retrain`, the params written changed the model, so it is
    trained and evaluated first (the data, and so `prepare`, never change here).
    """
    if retrain:
        run_modelops("train", "evaluate")
    run_modelops("gate model champion")
    loaded: dict[str, Any] = json.loads((root / "reports/gates/champion.json").read_text())
    return loaded


@pytest.fixture(scope="module")
def main_branch(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose `main` has a trained model recorded in dvc.lock (and in the cache)."""
    return copy_project(trained_project, tmp_path_factory.mktemp("champion") / "repo")


@pytest.fixture
def branch(main_branch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clone of that repository (DVC cache included) on a feature branch, as the cwd."""
    root = copy_project(main_branch, tmp_path / "branch")
    git(root, "switch", "--quiet", "--create", "feature")
    monkeypatch.chdir(root)
    return root


def test_a_candidate_clearly_worse_than_main_fails_the_champion_gate(branch: Path) -> None:
    write_params(branch, _params(max_iter=2, learning_rate=0.05))
    gate = _champion(branch, retrain=True)
    assert gate["status"] == "fail"
    failed = {c["check"]: c for c in gate["checks"] if c["status"] == "fail"}
    assert "log_loss" in failed, gate["checks"]
    worse = failed["log_loss"]
    assert worse["value"].startswith("candidate ")
    assert " vs champion " in worse["value"]
    assert ", worse (95% paired bootstrap on " in worse["value"], "the interval says why"
    assert worse["reason"] == "the candidate is worse than the model it would replace"
    assert gate["context"]["source"] == "DVC cache or remote"
    assert gate["context"]["commit"] == git(branch, "rev-parse", "main").strip()


def test_the_same_model_as_main_passes(branch: Path) -> None:
    gate = _champion(branch)
    assert gate["status"] == "pass"
    assert all(
        ": +0.0000 [+0.0000, +0.0000], within noise" in c["value"] for c in gate["checks"]
    ), gate["checks"]


def test_without_a_dvc_cache_the_champion_is_rebuilt_from_main(branch: Path) -> None:
    shutil.rmtree(branch / ".dvc" / "cache")
    write_params(branch, _params(max_iter=2, learning_rate=0.05))
    gate = _champion(branch, retrain=True)
    assert gate["status"] == "fail", "the rebuilt champion is still the better model"
    assert gate["context"]["source"].startswith("rebuilt from main")
    assert "feature" in git(branch, "branch", "--show-current"), "the worktree left HEAD alone"
    assert git(branch, "worktree", "list").count("\n") == 1, "the worktree was removed"


def test_without_a_cache_and_without_rebuilding_the_gate_fails_closed(branch: Path) -> None:
    shutil.rmtree(branch / ".dvc" / "cache")
    params = _params()
    params["gates"]["champion"]["reproduce"] = False
    write_params(branch, params)
    gate = _champion(branch)
    assert gate["status"] == "fail"
    (record,) = gate["checks"]
    assert record["status"] == "error"
    assert "configure a DVC remote" in record["value"]


def test_an_explicit_model_uri_is_the_champion(branch: Path, main_branch: Path) -> None:
    params = _params()
    params["gates"]["champion"]["model_uri"] = str(main_branch / "models" / "model")
    write_params(branch, params)
    gate = _champion(branch)
    assert gate["status"] == "pass"
    assert gate["context"]["champion"] == str(main_branch / "models" / "model")
    assert gate["context"]["source"] == "model_uri"
    assert gate["context"]["champion_metrics"].startswith("roc_auc "), "its own numbers are shown"


def test_a_registered_champion_is_downloaded_from_the_mlflow_registry(
    branch: Path, mlflow_store: str
) -> None:
    run_modelops("evaluate")  # logs main's model, the workspace's, as a run of this store
    logged = json.loads((branch / "reports" / "mlflow_run.json").read_text())["model_uri"]
    client = MlflowClient(tracking_uri=mlflow_store)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
        version = mlflow.register_model(logged, "churn-test")
    client.set_registered_model_alias("churn-test", "champion", version.version)
    params = _params()
    params["gates"]["champion"]["model_uri"] = "models:/churn-test@champion"
    write_params(branch, params)
    gate = _champion(branch)
    assert gate["status"] == "pass", "the registered champion is this very model"
    assert gate["context"]["champion"] == "models:/churn-test@champion"


# What production serves is the champion --------------------------------------------------------


@pytest.fixture(scope="module")
def released_main(tmp_path_factory: pytest.TempPathFactory, main_branch: Path) -> Path:
    """main, plus a production release of a weak model (published to the local store).

    main's own dvc.lock records the good model; production still serves an older, weak one,
    trained at a commit of its own, as after a canary that has not been promoted yet.
    """
    root = copy_project(main_branch, tmp_path_factory.mktemp("released") / "repo")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        git(root, "switch", "--quiet", "--create", "weak")
        write_params(root, _params(max_iter=2, learning_rate=0.05))
        run_dvc(root, "repro", "train")
        git(root, "commit", "--quiet", "--all", "--message", "A weak model")
        weak_commit = git(root, "rev-parse", "HEAD").strip()
        uri, digest = publish(
            root / "models" / "model", store="model-store", name="churn", root=root
        )
        git(root, "switch", "--quiet", "main")
        run_dvc(root, "checkout", "train")
    lock = git(root, "show", f"{weak_commit}:dvc.lock")
    weak = ModelVersion(
        version=digest[:12],
        model_uri=uri,
        model_hash=digest,
        data_version="d" * 32,
        git_commit=weak_commit,
        training_inputs=stage_inputs(lock),
    )
    release = deploy(Release("production"), weak, strategy="direct", steps=(100,), change=_CHANGE)
    assert isinstance(release, Release)
    path = root / "manifests" / "releases" / "production.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_document(release), sort_keys=False))
    git(root, "add", str(path))
    git(root, "commit", "--quiet", "--message", "Release the weak model to production")
    return root


@pytest.fixture
def released_branch(released_main: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(released_main, tmp_path / "branch")
    git(root, "switch", "--quiet", "--create", "feature")
    monkeypatch.chdir(root)
    return root


def test_the_champion_is_what_production_serves_taken_from_the_store(
    released_branch: Path,
) -> None:
    gate = _champion(released_branch)
    assert gate["context"]["champion"].startswith("production's stable model ")
    assert "manifests/releases/production.yaml on main" in gate["context"]["champion"]
    assert gate["context"]["source"].startswith("the model store (")
    assert gate["status"] == "pass", "the good candidate against the weak model production serves"
    roc = next(c for c in gate["checks"] if c["check"] == "roc_auc")
    assert "(+0.0000)" not in roc["value"], "compared with production's model, not main's"


def test_without_the_store_the_served_model_comes_from_dvc_at_its_commit(
    released_branch: Path,
) -> None:
    shutil.rmtree(released_branch / "model-store")
    gate = _champion(released_branch)
    assert gate["context"]["source"].startswith("DVC at "), gate["context"]
    assert gate["context"]["model_version"] in gate["context"]["champion"]


def test_nothing_released_or_no_environment_means_mains_model(branch: Path) -> None:
    gate = _champion(branch)
    assert gate["context"]["champion"].startswith("nothing released to production yet, so ")
    params = _params()
    params["gates"]["champion"]["environment"] = None
    write_params(branch, params)
    gate = _champion(branch)
    assert gate["context"]["champion"].startswith("models/model at main")


def test_a_champion_environment_that_is_not_declared_is_a_params_error() -> None:
    raw = _params()
    raw["gates"]["champion"]["environment"] = "prod"
    with pytest.raises(ParamsError, match=r"gates.champion.environment 'prod' is not one of"):
        parse_params(raw)


def _compare(roc_auc: Interval, log_loss: Interval, *, positives: int = 200) -> list[Any]:
    params = ChampionGateParams(max_drop={"roc_auc": 0.01}, max_rise={"log_loss": 0.02})
    observed = {"roc_auc": (0.8, 0.8), "log_loss": (0.4, 0.4)}
    deltas = {"roc_auc": roc_auc, "log_loss": log_loss}
    return compare(deltas, observed, params, rows=1000, positives=positives, confidence=0.95)


def test_compare_fails_only_when_the_whole_interval_is_beyond_the_tolerance() -> None:
    beyond = _compare(Interval(-0.03, -0.05, -0.011), Interval(0.04, 0.021, 0.06))
    assert [r.status for r in beyond] == ["fail", "fail"]
    assert beyond[0].condition == "roc_auc not lower than the champion's by more than 0.01"
    assert (
        "-0.0300 [-0.0500, -0.0110], worse (95% paired bootstrap on 1000 rows)" in beyond[0].value
    )
    assert beyond[1].tuned_by == "gates.champion.max_rise.log_loss = 0.02"
    reaching = _compare(Interval(-0.012, -0.03, 0.005), Interval(0.01, -0.01, 0.03))
    assert [r.status for r in reaching] == ["inconclusive", "inconclusive"]
    assert "within noise" in reaching[0].value
    assert "more test rows would" in reaching[0].reason
    within = _compare(Interval(-0.002, -0.009, 0.004), Interval(0.001, -0.01, 0.019))
    assert [r.status for r in within] == ["pass", "pass"]
    better = _compare(Interval(0.05, 0.03, 0.07), Interval(-0.05, -0.07, -0.03))
    assert [r.status for r in better] == ["pass", "pass"]
    assert all(", better (" in r.value for r in better), "a lower log loss reads better"


def test_compare_with_too_few_positives_is_inconclusive_whatever_the_interval() -> None:
    few = _compare(Interval(-0.3, -0.4, -0.2), Interval(0.3, 0.2, 0.4), positives=5)
    assert [r.status for r in few] == ["inconclusive", "inconclusive"]
    assert "5 test rows of the rarer class" in few[0].reason

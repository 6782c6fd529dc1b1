"""Only what the gates passed is deployed: the real `dvc repro`, gates and deploy, end to end.

A pull request ran the pipeline and its gates and pushed the gated model to a DVC remote (a
local folder stands in for the bucket), then merged. deploy.yml's two paths are replayed in
fresh clones of the merged commit: with the remote it pulls exactly that model; without it, it
retrains and gates again. A model whose enforced gates failed is refused on every path.
"""

from __future__ import annotations

import json
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

import pytest
import yaml

from modelops.cli import main
from modelops.identity import content_hash
from tests.shared import copy_project, own_store
from tests.support import REPO_ROOT, git, run_dvc, write_params

pytestmark = pytest.mark.pipeline


def modelops(root: Path, *args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
        patch.chdir(root)
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    shared = REPO_ROOT.parent / "shared" / "schemas"
    if shared.is_dir():
        monkeypatch.setenv("MODELOPS_SCHEMAS", str(shared))


@pytest.fixture(scope="module")
def merged(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """main after a merge: the pipeline and gates ran, results committed, the model pushed.

    The shared trained project (tests/shared.py): its model gate leaves out the two checks that
    flag noise at 600 test rows (see the gate scenarios); this module is about what a deploy
    does with a verdict.
    """
    base = tmp_path_factory.mktemp("merged")
    root = copy_project(trained_project, base / "main")
    run_dvc(root, "remote", "add", "--default", "storage", str(base / "dvc-remote"))
    run_dvc(root, "push", "--run-cache")
    git(root, "commit", "--quiet", "--all", "--message", "Merge pull request #1: the first model")
    return root


def _clone(merged: Path, tmp_path: Path, *, remote: bool) -> Path:
    clone = tmp_path / "deploy"
    git(tmp_path, "clone", "--quiet", str(merged), str(clone))
    if not remote:
        run_dvc(clone, "remote", "remove", "storage")
        git(clone, "commit", "--quiet", "--all", "--message", "No remote in this repository")
    return clone


def _judged(root: Path, rev: str | None = None) -> dict[str, str]:
    text = (
        git(root, "show", f"{rev}:reports/gates.json")
        if rev
        else (root / "reports" / "gates.json").read_text()
    )
    judged: dict[str, str] = json.loads(text)["judged"]
    return judged


def test_the_gates_record_the_model_they_judged(merged: Path) -> None:
    judged = _judged(merged)
    assert judged["model_hash"] == content_hash(merged / "models" / "model")
    assert judged["training_inputs"], "dvc.lock's fingerprint of the training inputs"


def test_with_a_remote_the_deploy_takes_exactly_the_gated_model(
    merged: Path, tmp_path: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    clone = _clone(merged, tmp_path, remote=True)
    run_dvc(clone, "pull", "train", "evaluate")
    code, out, err = modelops(clone, "release", "deploy", "--exact")
    assert code == 0, err
    assert "is the one the merged commit's gates passed" in out
    release = yaml.safe_load((clone / "manifests/releases/production.yaml").read_text())
    assert release["stable"]["model_hash"] == _judged(merged)["model_hash"]


def test_without_a_remote_the_deploy_retrains_gates_again_and_publishes_that(
    merged: Path, tmp_path: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    clone = _clone(merged, tmp_path, remote=False)
    run_dvc(clone, "repro")
    retrained = content_hash(clone / "models" / "model")
    assert retrained != _judged(merged)["model_hash"], "a retrain has new bytes"
    assert _judged(clone)["training_inputs"] == _judged(clone, "HEAD")["training_inputs"]
    code, out, err = modelops(clone, "verdict", "--committed")
    assert code == 0, err
    assert modelops(clone, "verdict", "--committed", "--exact")[0] == 1, "not the same bytes"

    assert modelops(clone, "release", "deploy", "--exact")[0] == 1
    code, out, err = modelops(clone, "release", "deploy")
    assert code == 0, err
    assert "was retrained from the inputs the merged commit's gates passed" in out
    release = yaml.safe_load((clone / "manifests/releases/production.yaml").read_text())
    assert release["stable"]["model_hash"] == retrained


def test_a_model_whose_gates_failed_is_refused_on_every_path(
    merged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a branch that raises the bar beyond what the model reaches and reruns the gates...
    branch = copy_project(merged, tmp_path / "branch")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", own_store(branch))  # where its run is
    params = yaml.safe_load((branch / "params.yaml").read_text())
    params["gates"]["model"]["min_roc_auc"] = 0.999
    write_params(branch, params)
    done = run_dvc(branch, "repro")
    assert "Running stage 'gate_model'" in done.stdout
    assert "Running stage 'train'" not in done.stdout, "the model did not change"
    record = json.loads((branch / "reports" / "gates.json").read_text())
    assert record["verdict"]["status"] == "fail"
    # ...then neither a deploy by hand nor either path of deploy.yml publishes it, even once it
    # is committed (a merge of a blocked pull request).
    git(branch, "commit", "--quiet", "--all", "--message", "Merge a blocked pull request")
    for args in (("deploy",), ("deploy", "--exact"), ("preview",)):
        _, out, err = modelops(branch, "release", *args)
        assert "the gates blocked model" in err, (args, out, err)
    assert not (branch / "model-store").exists(), "nothing published"

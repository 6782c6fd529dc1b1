"""The champion gate is never stale: it reruns when the champion moves, through the real DVC.

`dvc repro` on a branch judges the candidate against main's model; when main then moves to
another model, the next `dvc repro` on the branch (nothing changed there) reruns the champion
gate against the new one, and a repro with nothing moved reruns nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.shared import copy_project, own_store, trained_params
from tests.support import git, run_dvc, template_params, write_params

pytestmark = pytest.mark.pipeline


def _params(**model: Any) -> dict[str, Any]:
    """The shared trained project's params (tests/shared.py), with `model` changed."""
    params = trained_params()
    params["train"]["model"].update(model)
    return params


def _ran(done: Any) -> list[str]:
    return re.findall(r"Running stage '([\w-]+)'", done.stdout)


def _json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


@pytest.fixture(scope="module")
def repo(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """main with a trained model, and a branch `feature` that ran its pipeline against it."""
    root = copy_project(trained_project, tmp_path_factory.mktemp("fresh") / "repo")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", own_store(root))
        git(root, "switch", "--quiet", "--create", "feature")
        write_params(root, _params(learning_rate=0.12))
        run_dvc(root, "repro")
        git(root, "commit", "--quiet", "--all", "--message", "Tune the learning rate")
    return root


def test_a_repro_with_nothing_moved_does_not_rerun_the_champion_gate(repo: Path) -> None:
    done = run_dvc(repo, "repro")
    assert _ran(done) == ["champion"], done.stdout


def test_when_main_moves_the_champion_gate_reruns_against_the_new_model(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", own_store(repo))  # where the branch's run is
    before = _json(repo / "reports" / "champion.json")
    # Given main moves to another model (a merge elsewhere)...
    git(repo, "switch", "--quiet", "main")
    run_dvc(repo, "checkout")
    write_params(repo, _params(learning_rate=0.3))
    run_dvc(repo, "repro", "train")
    git(repo, "commit", "--quiet", "--all", "--message", "Another model on main")
    new_main = git(repo, "rev-parse", "main").strip()
    main_md5 = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["train"]["outs"][0]["md5"]
    git(repo, "switch", "--quiet", "feature")
    run_dvc(repo, "checkout")
    # ...when the branch runs its pipeline again with nothing changed on it...
    done = run_dvc(repo, "repro")
    # ...then only the champion and what depends on it rerun, against main's new model.
    assert _ran(done) == ["champion", "gate_model", "gates"], done.stdout
    after = _json(repo / "reports" / "champion.json")
    assert after["model_md5"] == main_md5 != before["model_md5"]
    gate = _json(repo / "reports" / "gates" / "champion.json")
    assert gate["context"]["commit"] == new_main
    assert "champion_metrics" in gate["context"], "the report shows the champion's numbers"


def test_after_a_schema_change_the_champion_is_scored_on_its_own_columns(
    template_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given main's model uses `contract`, the strongest feature of the default data (all 20,000
    # rows: the drop must be clear beyond the 0.01 tolerance, which 600 test rows cannot show)...
    root = copy_project(template_project, tmp_path / "repo")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", own_store(root))
    # ...when a branch drops it (a schema change) and reruns the pipeline...
    git(root, "switch", "--quiet", "--create", "drop-contract")
    params = template_params()
    params["prepare"]["columns"]["drop"] = ["contract"]
    params["gates"]["runner"]["html_reports"] = "never"
    params["evaluate"].update(importance_rows=200, importance_repeats=2)
    write_params(root, params)
    run_dvc(root, "repro")
    # ...then the champion is still scored (on `contract`, kept beside the test rows), and the
    # clearly worse candidate is blocked: no error, and no advice that would let it through.
    gate = _json(root / "reports" / "gates" / "champion.json")
    assert gate["status"] == "fail", gate
    failed = {c["check"]: c for c in gate["checks"] if c["status"] == "fail"}
    assert "roc_auc" in failed, gate["checks"]
    assert ", worse (" in failed["roc_auc"]["value"]
    document = (root / "reports" / "gates.json").read_text()
    assert json.loads(document)["verdict"]["status"] == "fail"
    assert "mode: warn" not in document

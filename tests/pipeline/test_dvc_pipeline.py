"""The real `dvc repro` on a copy of the template, in a temporary git repo.

Covers what a user does: a first run on the default data (every gate passes), a run with
nothing changed, a hyperparameter change with its diffs and pull-request report, determinism
across clean runs, and failures that keep the previous outputs. The first run is the shared
`template_project` (the default data, 20,000 rows); what is about DVC's bookkeeping rather than
the default data runs on copies of the smaller `trained_project` (tests/shared.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from modelops.cli import main
from tests.shared import copy_project, own_store, trained_params
from tests.support import copy_template, declared_outputs, git, run_dvc

pytestmark = pytest.mark.pipeline


def _metrics(root: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((root / "metrics" / "model.json").read_text())
    return loaded


def _digest(root: Path, relative: str) -> str:
    path = root / relative
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(root)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _snapshot(root: Path) -> dict[str, str]:
    return {out: _digest(root, out) for out in [*declared_outputs(root), "dvc.lock"]}


@pytest.fixture(scope="module")
def repo(template_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template after its first `dvc repro` on the default data, results committed."""
    return copy_project(template_project, tmp_path_factory.mktemp("first") / "repo")


def test_first_repro_writes_every_declared_output(repo: Path) -> None:
    missing = [out for out in declared_outputs(repo) if not (repo / out).exists()]
    assert not missing, f"declared but not written: {missing}"
    assert (repo / "dvc.lock").is_file()
    assert not git(repo, "status", "--porcelain"), "outputs are committed or git-ignored"


def test_the_default_model_clearly_beats_a_majority_baseline(repo: Path) -> None:
    metrics = _metrics(repo)
    baseline = metrics["baseline"]
    assert metrics["roc_auc"] > baseline["roc_auc"] + 0.25, metrics
    assert metrics["accuracy"] > baseline["accuracy"] + 0.02, metrics
    assert metrics["log_loss"] < 0.85 * baseline["log_loss"], metrics
    assert 0.15 < metrics["positive_rate"] < 0.3


def test_on_the_default_data_every_gate_passes(repo: Path) -> None:
    document = json.loads((repo / "reports" / "gates.json").read_text())
    statuses = {gate["name"]: gate["status"] for gate in document["gates"]}
    assert statuses == {
        "data": "pass",
        "drift": "pass",
        "model": "pass",
        "champion": "skipped",
        "latency": "skipped",
        "edge": "skipped",
    }
    assert "has no trained model yet" in document["gates"][3]["notes"][0]
    assert document["gates"][4]["notes"] == document["gates"][3]["notes"], "the same reason"
    assert document["verdict"]["status"] == "pass"


def test_the_mlflow_run_carries_the_commit_that_was_checked_out(repo: Path) -> None:
    record = json.loads((repo / "reports" / "mlflow_run.json").read_text())
    run = MlflowClient(tracking_uri=own_store(repo)).get_run(record["run_id"])
    first_commit = git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    assert run.data.tags["git_commit"] == first_commit
    assert run.data.tags["mlflow.source.git.commit"] == first_commit


@pytest.fixture
def trained(trained_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shared trained project (3,000 rows), its own MLflow store in use."""
    root = copy_project(trained_project, tmp_path / "trained")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", own_store(root))
    return root


def test_a_second_repro_with_nothing_changed_does_nothing(trained: Path) -> None:
    repo = trained
    # Committing made this model main's: the champion moved from "none yet" to it, so one repro
    # re-judges against it. After that only the champion stage runs (it always does: the
    # champion lives on main, outside the workspace); its record is unchanged, so nothing after
    # it reruns.
    moved = run_dvc(repo, "repro")
    assert re.findall(r"Running stage '([\w-]+)'", moved.stdout) == [
        "champion",
        "gate_model",
        "gates",
    ]
    before = _snapshot(repo)
    done = run_dvc(repo, "repro")
    ran = re.findall(r"Running stage '([\w-]+)'", done.stdout)
    assert ran == ["champion"], done.stdout
    assert _snapshot(repo) == before


def test_a_failing_stage_keeps_every_previous_output(repo: Path) -> None:
    before = _snapshot(repo)
    params = (repo / "params.yaml").read_text()
    try:
        (repo / "params.yaml").write_text(params.replace("learning_rate:", "learning_rat:"))
        done = run_dvc(repo, "repro", check=False)
        assert done.returncode != 0
        assert "train.model.learning_rat: unknown key" in done.stderr + done.stdout
        assert _snapshot(repo) == before

        (repo / "params.yaml").write_text(params.replace("source: synthetic", "source: gone.csv"))
        done = run_dvc(repo, "repro", check=False)
        assert done.returncode != 0
        assert "gone.csv: file not found" in done.stderr + done.stdout
        assert _snapshot(repo) == before
    finally:
        (repo / "params.yaml").write_text(params)


@pytest.fixture(scope="module")
def tuned(trained_project: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A trained project with the learning rate changed and the pipeline rerun (uncommitted)."""
    repo = copy_project(trained_project, tmp_path_factory.mktemp("tuned") / "repo")
    prepared = _digest(repo, "data/prepared")
    params = (repo / "params.yaml").read_text()
    assert "learning_rate: 0.1\n" in params
    (repo / "params.yaml").write_text(
        params.replace("learning_rate: 0.1\n", "learning_rate: 0.3\n")
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", own_store(repo))
        done = run_dvc(repo, "repro")
    assert _digest(repo, "data/prepared") == prepared
    return repo, done.stdout


def test_a_hyperparameter_change_reruns_only_what_depends_on_it(tuned: tuple[Path, str]) -> None:
    repo, printed = tuned
    assert "Stage 'prepare' didn't change, skipping" in printed
    assert "Stage 'gate_data' didn't change, skipping" in printed, "data gates skip model changes"
    for stage in ("train", "evaluate", "gate_model", "gates"):
        assert f"Running stage '{stage}'" in printed

    params_diff = json.loads(run_dvc(repo, "params", "diff", "--json").stdout)
    change = params_diff["params.yaml"]["train.model.learning_rate"]
    assert (change["old"], change["new"]) == (0.1, 0.3)
    metrics_diff = json.loads(run_dvc(repo, "metrics", "diff", "--json").stdout)
    assert "roc_auc" in metrics_diff["metrics/model.json"]


def test_the_champion_is_the_committed_model_from_the_dvc_cache(tuned: tuple[Path, str]) -> None:
    repo, _ = tuned
    champion = json.loads((repo / "reports" / "gates" / "champion.json").read_text())
    assert champion["status"] in ("pass", "fail"), champion
    assert champion["context"]["source"] == "DVC cache or remote"
    assert champion["context"]["commit"] == git(repo, "rev-parse", "HEAD").strip()


def test_the_report_compares_the_change_with_main(
    tuned: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = tuned
    monkeypatch.chdir(repo)
    with redirect_stdout(StringIO()):
        assert main(["report"]) == 0
    text = (repo / "reports" / "report.md").read_text()
    assert text.splitlines()[0].startswith("## ")
    assert "### Metrics: this branch against `main`" in text
    assert "| `train.model.learning_rate` | `0.1` | `0.3` |" in text
    head = git(repo, "rev-parse", "HEAD").strip()
    assert f"`main` at `{head[:12]}`" in text
    assert "![ROC curve](report/main-roc.png)" in text
    assert (repo / "reports" / "report" / "main-roc.png").read_bytes().startswith(b"\x89PNG")
    # CML (and any Markdown preview) resolves image links against the report's own folder.
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 5, text
    for link in links:
        assert (repo / "reports" / link).is_file(), f"{link} does not resolve from reports/"
    assert "Stage timings: prepare" in text


@pytest.mark.parametrize(
    ("clone_options", "expected"),
    [
        (["--single-branch"], "there is no 'main' branch yet"),
        (["--single-branch", "--depth", "1"], "'main' is not in this shallow clone"),
    ],
)
def test_the_report_explains_a_missing_baseline(
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clone_options: list[str],
    expected: str,
) -> None:
    source = repo
    git(source, "branch", "--force", "feature", "HEAD")
    clone = tmp_path / "clone"
    git(
        tmp_path,
        "clone",
        "--quiet",
        *clone_options,
        "--branch",
        "feature",
        source.as_uri(),
        str(clone),
    )
    monkeypatch.chdir(clone)
    with redirect_stdout(StringIO()):
        assert main(["report"]) == 0
    text = (clone / "reports" / "report.md").read_text()
    assert f"No comparison numbers: {expected}" in text
    assert "| roc_auc | — |" in text, "this branch's numbers are still shown"


def test_two_clean_runs_give_identical_results(
    trained_project: Path, tmp_path: Path, mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    first = _snapshot(trained_project)
    again = copy_template(tmp_path / "second", trained_params())
    # Every deterministic output below is written by evaluate or before it.
    run_dvc(again, "repro", "evaluate")
    deterministic = [
        out for out in declared_outputs(again) if out.startswith(("metrics/", "plots/"))
    ] + ["data/prepared", "reports/feature_importance.json"]
    for output in deterministic:
        assert _digest(again, output) == first[output], f"{output} differs"

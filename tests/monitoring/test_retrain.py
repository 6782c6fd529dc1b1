"""The retraining branch, with the real `dvc` in a temporary git repository.

The project's data is imported with `dvc import-url` from a file outside it (the upstream
export); a bare repository is its remote. New upstream rows, then `modelops retrain`: it must
branch, `dvc update` the import, reproduce, commit, push the branch and open one pull request
(GitHub is the local stand-in, tests/github_fake.py: it cannot exist here), then leave the
checkout on main. The branch's pull-request report shows the refreshed data. A second decision
while that PR is open comments on it instead of opening another. As monitor.yml runs it, in two
steps, the token is in the second only, and in neither reaches DVC, the pipeline or an argv.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelops.gates.registry import GATE_NAMES
from modelops.synth import generate_churn
from tests.github_fake import TOKEN, serve
from tests.support import (
    command_path,
    copy_template,
    git,
    isolate,
    modelops_command,
    recording_shims,
    run_dvc,
    small_params,
)

ENV = "production"


def _modelops(
    root: Path, *args: str, env: dict[str, str] | None = None, path: str | None = None
) -> str:
    import os

    done = subprocess.run(
        [modelops_command(), *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": command_path(*([Path(path)] if path else [])), **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _report(root: Path, *, retrain: bool) -> None:
    folder = root / "reports" / "monitor" / ENV
    folder.mkdir(parents=True, exist_ok=True)
    reasons = ["feature_drift breached in 3 of 7 windows, the latest included (tenure_months)"]
    document = {
        "environment": ENV,
        "model_version": "v1",
        "at": "2026-12-03T08:00:00Z",
        "decision": {"retrain": retrain, "reasons": reasons if retrain else [], "causes": []},
    }
    (folder / "report.json").write_text(json.dumps(document), encoding="utf-8")
    (folder / "report.md").write_text("# Drift monitor: production\n", encoding="utf-8")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, mlflow_store: str) -> tuple[Path, Path]:
    """(where the project lives, a copy of it as it was built): trained once for the module.

    The upstream export, the project (whose import names the export by absolute path) and its
    bare remote live side by side in one folder; each test gets a fresh copy of that folder at
    the very place it was built, so every absolute path in it still holds.
    """
    work = tmp_path_factory.mktemp("retrain") / "work"
    upstream = work / "upstream" / "customers.csv"
    upstream.parent.mkdir(parents=True)
    generate_churn(1500, seed=1).to_csv(upstream, index=False)
    params = small_params()
    params["prepare"]["source"] = "data/raw/customers.csv"
    for gate in GATE_NAMES:
        params["gates"][gate]["mode"] = "off"
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch, store=mlflow_store)
        root = copy_template(work / "project", params)
        run_dvc(root, "import-url", str(upstream), "data/raw/customers.csv")
        run_dvc(root, "repro")
        git(root, "add", "--all")
        git(root, "commit", "--quiet", "--message", "Train on the imported export")
        git(work, "init", "--quiet", "--bare", "origin.git")
        git(root, "remote", "add", "origin", str(work / "origin.git"))
        git(root, "push", "--quiet", "origin", "main")
    snapshot = work.parent / "pristine"
    shutil.copytree(work, snapshot, symlinks=True)
    return work, snapshot


@pytest.fixture
def project(pristine: tuple[Path, Path]) -> Path:
    """The trained project with its export and remote, as built, whatever earlier tests did."""
    work, snapshot = pristine
    shutil.rmtree(work)
    shutil.copytree(snapshot, work, symlinks=True)
    return work / "project"


def test_a_retrain_decision_becomes_one_pull_request_with_the_refreshed_data(
    project: Path,
) -> None:
    upstream = project.parent / "upstream" / "customers.csv"
    generate_churn(2400, seed=2).to_csv(upstream, index=False)  # the export grew
    _report(project, retrain=True)
    before = json.loads((project / "metrics" / "data.json").read_text())
    with serve() as github:
        env = {
            "GITHUB_API_URL": github.url,
            "GITHUB_REPOSITORY": "octo/repo",
            "GITHUB_TOKEN": TOKEN,
        }
        printed = _modelops(project, "retrain", "--env", ENV, "--remote", "origin", env=env)
        assert "pull request: https://github.test/octo/repo/pull/" in printed, printed
        assert "dvc update data/raw/customers.csv.dvc" in printed
        pulls = [
            r for r in github.requests if (r.method, r.path) == ("POST", "/repos/octo/repo/pulls")
        ]
        assert len(pulls) == 1
        body = pulls[0].body
        assert body["head"] == "retrain/production"
        assert body["base"] == "main"
        assert "feature_drift breached" in body["body"]
        assert "rows" in body["body"]

        again = _modelops(project, "retrain", "--env", ENV, "--remote", "origin", env=env)
        assert "open already" in again, again
        posted = [r for r in github.requests if r.method == "POST" and r.path.endswith("/pulls")]
        assert len(posted) == 1  # no second pull request
        assert any(r.path.endswith("/comments") for r in github.requests)

    assert git(project, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert json.loads((project / "metrics" / "data.json").read_text()) == before
    status = run_dvc(project, "status").stdout
    assert "changed outs" not in status, f"main's outputs are back: {status}"
    changed = git(project, "diff", "--name-only", "main", "origin/retrain/production").split()
    assert "data/raw/customers.csv.dvc" in changed
    assert "dvc.lock" in changed
    assert "metrics/data.json" in changed
    git(project, "switch", "--quiet", "retrain/production")
    run_dvc(project, "checkout")
    after = json.loads((project / "metrics" / "data.json").read_text())
    assert after != before
    _modelops(project, "report", "--base", "main", "--no-images")
    report = (project / "reports" / "report.md").read_text(encoding="utf-8")
    rows_line = [line for line in report.splitlines() if "rows" in line.lower()]
    assert any("2400" in line or "1,920" in line or "1920" in line for line in rows_line), report


def test_no_decision_means_no_branch_and_a_dirty_checkout_is_refused(project: Path) -> None:
    _report(project, retrain=False)
    printed = _modelops(project, "retrain", "--env", ENV)
    assert "decided not to retrain" in printed
    assert "retrain/production" not in git(project, "branch", "--list")
    _report(project, retrain=True)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["seed"] = 7
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run(
        [modelops_command(), "retrain", "--env", ENV],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "uncommitted changes" in done.stderr
    assert "retrain/production" not in git(project, "branch", "--list")


def test_as_monitor_yml_runs_it_the_token_reaches_the_push_alone(project: Path) -> None:
    # Given the two steps of monitor.yml: `retrain` (no remote) refreshes, reproduces and
    # commits; `retrain --push-only` pushes that commit and opens the pull request. Even with a
    # token in the environment of both, no DVC process (and so no stage) has it in its
    # environment, no git has it on its command line, and the second step reproduces nothing.
    upstream = project.parent / "upstream" / "customers.csv"
    generate_churn(2400, seed=2).to_csv(upstream, index=False)
    _report(project, retrain=True)
    seen = project.parent / "seen.log"
    shims = recording_shims(project.parent / "shims", seen, argv=("git",), env=("dvc",))
    with serve() as github:
        env = {
            "GITHUB_API_URL": github.url,
            "GITHUB_REPOSITORY": "octo/repo",
            "GITHUB_TOKEN": TOKEN,
        }
        made = _modelops(project, "retrain", "--env", ENV, env=env, path=str(shims))
        assert "branch retrain/production, committed" in made, made
        assert not github.requests, "the first step never talks to GitHub"
        commit = git(project, "rev-parse", "retrain/production").strip()
        first = seen.read_text()
        assert "dvc repro" in first
        pushed = _modelops(
            project,
            *("retrain", "--env", ENV, "--remote", "origin", "--push-only"),
            env=env,
            path=str(shims),
        )
        assert "pull request: https://github.test/octo/repo/pull/" in pushed, pushed
        pulls = [r for r in github.requests if r.method == "POST" and r.path.endswith("/pulls")]
        assert len(pulls) == 1
        assert pulls[0].body["head"] == "retrain/production"
        assert "feature_drift breached" in pulls[0].body["body"]
        assert "Data: `dvc update data/raw/customers.csv.dvc`" in pulls[0].body["body"]
    second = seen.read_text()[len(first) :]
    assert "dvc repro" not in second, "the step that holds the token runs no pipeline"
    assert "dvc update" not in second
    assert "git push" in second
    assert TOKEN not in seen.read_text(), "no token in DVC's environment or on a command line"
    assert git(project.parent / "origin.git", "rev-parse", "retrain/production").strip() == commit
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    again = subprocess.run(
        [modelops_command(), "retrain", "--env", ENV, "--push-only"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1
    assert "give --remote" in again.stderr

"""The scripts pr.yml's jobs run around the credentials, with the real dvc and git.

GitHub cannot run here: the jobs are played by hand on one machine. A small DVC project (one
stage, one param) stands for the template; local folders stand for the DVC remote and for the
`dvc-candidate` artifact, and a `npx` first on PATH for CML's asset upload (npm is not reachable
here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import REPO_ROOT, git, venv_bin

PUSH = REPO_ROOT / ".github" / "scripts" / "push-candidate.sh"
PUBLISH = REPO_ROOT / ".github" / "scripts" / "publish-report-images.py"
DVC_YAML = """\
stages:
  train:
    cmd: python -c "print('the model')" > model.txt
    params:
      - seed
    outs:
      - model.txt
"""


def _dvc(root: Path, *args: str) -> str:
    done = subprocess.run(
        [str(venv_bin() / "dvc"), *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
        check=False,
    )
    assert done.returncode == 0, f"dvc {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def gated(tmp_path: Path) -> Path:
    """main's repository with a DVC remote, and a pull request's commit the gates job ran on:
    reproduced, and bundled as the gates job bundles it (`dvc push --run-cache` to a folder)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    _dvc(repo, "init", "--quiet")
    (repo / "params.yaml").write_text("seed: 1\n")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    _dvc(repo, "remote", "add", "--default", "storage", str(tmp_path / "remote"))
    git(repo, "add", "--all")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "main")
    git(repo, "switch", "--quiet", "--create", "change")
    (repo / "params.yaml").write_text("seed: 2\n")
    _dvc(repo, "repro", "--quiet")
    git(repo, "add", "--all")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "change")
    _dvc(repo, "remote", "add", "--local", "--force", "candidate", str(tmp_path / "artifact"))
    _dvc(repo, "push", "--run-cache", "--remote", "candidate")
    git(repo, "switch", "--quiet", "main")
    return repo


def test_the_candidate_reaches_mains_remote_from_mains_tooling_alone(
    gated: Path, tmp_path: Path
) -> None:
    # Given the candidate job's two checkouts (main with its environment, the pull request's
    # commit as data) and the artifact, when the script pushes, then main's remote holds the
    # model and its run-cache entry, as `dvc repro --pull` on the merged commit needs them; a
    # remote the pull request's own .dvc/config names receives nothing.
    trusted, candidate = tmp_path / "trusted", tmp_path / "candidate"
    git(tmp_path, "clone", "--quiet", "--branch", "main", str(gated), str(trusted))
    (trusted / ".venv").symlink_to(venv_bin().parent)
    git(tmp_path, "clone", "--quiet", "--branch", "change", str(gated), str(candidate))
    elsewhere = tmp_path / "elsewhere"
    _dvc(candidate, "remote", "add", "--default", "--force", "storage", str(elsewhere))
    (candidate / ".dvc" / "config.local").write_text(f"['remote \"storage\"']\nurl = {elsewhere}\n")

    done = subprocess.run(
        ["bash", str(PUSH), str(trusted), str(candidate), str(tmp_path / "artifact")],
        capture_output=True,
        text=True,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _files(tmp_path / "remote") == _files(tmp_path / "artifact")
    assert any(name.startswith("runs/") for name in _files(tmp_path / "remote")), "run-cache"
    assert not elsewhere.exists(), "the pull request's DVC settings were set aside"
    merged = tmp_path / "merged"
    git(tmp_path, "clone", "--quiet", "--branch", "change", str(gated), str(merged))
    _dvc(merged, "repro", "--pull")
    assert (merged / "model.txt").read_text() == "the model\n"
    assert "up to date" in _dvc(merged, "status")


def test_without_a_remote_on_main_nothing_is_pushed(gated: Path, tmp_path: Path) -> None:
    trusted = tmp_path / "trusted"
    git(tmp_path, "clone", "--quiet", "--branch", "main", str(gated), str(trusted))
    (trusted / ".venv").symlink_to(venv_bin().parent)
    _dvc(trusted, "remote", "remove", "storage")
    done = subprocess.run(
        ["bash", str(PUSH), str(trusted), str(gated), str(tmp_path / "artifact")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "nothing to push" in done.stdout
    assert not (tmp_path / "remote").exists()


def test_the_gates_job_uploads_only_the_reports_images_and_links_them_by_address(
    tmp_path: Path,
) -> None:
    # Given a report that embeds two plots (one beside it, one in plots/ at the root) and also
    # names files that are not images of the checkout, when the gates job uploads, then the
    # plots alone are uploaded and their links become the addresses; the rest is left as it
    # is, and the comment job (which posts with --no-publish) uploads nothing of it.
    root = tmp_path / "checkout"
    (root / "reports" / "report").mkdir(parents=True)
    (root / "plots").mkdir()
    (root / "plots" / "roc.png").write_bytes(b"png")
    (root / "reports" / "report" / "main-roc.png").write_bytes(b"png")
    (root / "reports" / "notes.txt").write_text("not an image")
    report = root / "reports" / "report.md"
    report.write_text(
        "# Report\n\n| this | main |\n|---|---|\n"
        "| ![ROC](../plots/roc.png) | ![ROC](report/main-roc.png) |\n\n"
        "![env](/proc/self/environ) ![up](../../outside.png) ![t](notes.txt)\n"
        "![gone](missing.png) ![web](https://example.test/a.png) ![ROC](../plots/roc.png)\n"
    )
    (tmp_path / "outside.png").write_bytes(b"png")
    bin_dir, log = tmp_path / "bin", tmp_path / "npx.log"
    bin_dir.mkdir()
    (bin_dir / "npx").write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> "{log}"\n'
        'for last; do :; done\necho "https://asset.cml.dev/$(basename "$last")?cml=png"\n'
    )
    (bin_dir / "npx").chmod(0o755)
    done = subprocess.run(
        [sys.executable, str(PUBLISH), "reports/report.md"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "uploaded 2 of 2 images" in done.stdout
    uploads = log.read_text().splitlines()
    assert len(uploads) == 2
    assert all(line.startswith("--yes @dvcorg/cml@0.20.6 asset publish ") for line in uploads)
    text = report.read_text()
    assert text.count("(https://asset.cml.dev/roc.png?cml=png)") == 2
    assert "(https://asset.cml.dev/main-roc.png?cml=png)" in text
    for untouched in ("/proc/self/environ", "../../outside.png", "notes.txt", "missing.png"):
        assert f"({untouched})" in text, untouched
    assert "(https://example.test/a.png)" in text


def test_a_failed_upload_keeps_the_local_link_and_warns(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    (root / "plots").mkdir(parents=True)
    (root / "plots" / "roc.png").write_bytes(b"png")
    report = root / "report.md"
    report.write_text("![ROC](plots/roc.png)\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npx").write_text("#!/bin/sh\necho 'npm error network' >&2\nexit 1\n")
    (bin_dir / "npx").chmod(0o755)
    done = subprocess.run(
        [sys.executable, str(PUBLISH), "report.md"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        check=False,
    )
    assert done.returncode == 0, "a missing plot does not fail the gates"
    assert "::warning::could not upload plots/roc.png: npm error network" in done.stdout
    assert report.read_text() == "![ROC](plots/roc.png)\n"


EDGE_SCRIPT = REPO_ROOT / ".github" / "scripts" / "install-edge-if-needed.sh"


def test_the_gates_a_reproducing_deploy_and_a_retraining_build_edge_venv_first() -> None:
    for name, job, reproduce in (
        ("pr.yml", "gates", "Reproduce the pipeline and run the gates"),
        ("deploy.yml", "deploy", "Reproduce the model and run its gates (no DVC remote)"),
        (
            "monitor.yml",
            "monitor",
            "On a retraining decision, refresh, reproduce and commit branch retrain/<env> "
            "(no token)",
        ),
    ):
        workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / name).read_text())
        steps = workflow["jobs"][job]["steps"]
        runs = [step.get("run", "") for step in steps]
        (index,) = [i for i, run in enumerate(runs) if EDGE_SCRIPT.name in run]
        at = [step.get("name") for step in steps].index(reproduce)
        assert index == at - 1, f"{name}: edge/.venv is built right before the pipeline runs"
        assert steps[index].get("if") == steps[at].get("if"), name


@pytest.mark.parametrize("edge", [False, True], ids=["no-edge-environment", "an-edge-environment"])
def test_edge_venv_is_built_only_for_an_edge_environment(tmp_path: Path, edge: bool) -> None:
    # Given the template's params, with or without an edge environment, the real `modelops
    # params` in .venv, and a `make` first on PATH that records what it was asked
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    if edge:
        params["deploy"]["environments"]["tills"] = {
            "strategy": "edge",
            "format": "native",
            "bundle_base_url": "https://models.example.com/churn/bundles",
            "public_key": "churn-edge.pub",
        }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(venv_bin())
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "make").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "made"}\n')
    (fake / "make").chmod(0o755)
    # When the workflows' step runs
    done = subprocess.run(
        [str(EDGE_SCRIPT)],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
    )
    # Then edge/.venv is built exactly when an edge environment needs it
    assert done.returncode == 0, done.stdout + done.stderr
    made = (tmp_path / "made").read_text() if (tmp_path / "made").exists() else ""
    assert made == ("install-edge\n" if edge else "")
    assert ("the edge gate does not apply" in done.stdout) is not edge

"""The GitHub workflows, checked by real linters and against the promises they make.

zizmor audits security (pinning, permissions, injection, credentials) at its strictest persona;
check-jsonschema validates them against GitHub's workflow schema. GitHub itself cannot run here,
so what its runners would do is checked by reading the files.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import REPO_ROOT, venv_bin

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
SHA_PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_zizmor_finds_nothing_even_at_its_pedantic_persona() -> None:
    done = subprocess.run(
        [
            str(venv_bin() / "zizmor"),
            "--offline",
            "--persona",
            "pedantic",
            "--no-progress",
            *map(str, WORKFLOWS),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_workflow_matches_githubs_schema() -> None:
    done = subprocess.run(
        [
            str(venv_bin() / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, WORKFLOWS),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit(path: Path) -> None:
    for step in _steps(_load(path)):
        if "uses" in step:
            assert SHA_PINNED.match(step["uses"]), f"{path.name}: {step['uses']} is not SHA-pinned"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_starts_read_only(path: Path) -> None:
    assert _load(path)["permissions"] == {"contents": "read"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_run_step_interpolates_an_expression(path: Path) -> None:
    for step in _steps(_load(path)):
        assert "${{" not in step.get("run", ""), f"{path.name}: pass values through env: instead"


def test_the_pr_workflow_keeps_its_promises() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "pr.yml")
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML reads `on` as True
    assert set(triggers) == {"pull_request"}, "never pull_request_target with PR code"
    assert workflow["concurrency"]["cancel-in-progress"] is True
    assert "pull_request.number" in workflow["concurrency"]["group"]
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    steps = {step.get("name", step.get("uses", "")): step for step in job["steps"]}
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    assert checkout["with"]["persist-credentials"] is False
    post = steps["Post or update the report comment"]
    assert post["continue-on-error"] is True, "a read-only token must not fail the job"
    assert "@dvcorg/cml@0.20.6 comment update --target=pr" in post["run"]
    assert "--watermark-title" in post["run"]
    names = [step.get("name", "") for step in job["steps"]]
    assert names.index("Post or update the report comment") < names.index("Verdict"), (
        "the job fails on the verdict only after the comment is posted"
    )
    assert "modelops verdict" in steps["Verdict"]["run"]
    assert any("uses" in s and "upload-artifact" in s["uses"] for s in job["steps"])


def _triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    triggers: dict[str, Any] = workflow[True] if True in workflow else workflow["on"]
    return triggers


def _run_text(workflow: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in _steps(workflow))


def test_deploys_and_rollouts_are_serialised_and_never_cancelled() -> None:
    groups = set()
    for name in ("deploy.yml", "rollout.yml"):
        workflow = _load(REPO_ROOT / ".github" / "workflows" / name)
        assert workflow["concurrency"]["cancel-in-progress"] is False, name
        groups.add(workflow["concurrency"]["group"])
        (job,) = workflow["jobs"].values()
        assert job["permissions"] == {"contents": "write"}, f"{name}: only pushing a commit"
        checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
        assert checkout["with"]["persist-credentials"] is False, name
        assert ".github/scripts/commit-and-push.sh" in _run_text(workflow), name
        assert "make install-pipeline" in _run_text(workflow), name
    assert len(groups) == 1, "one concurrency group for every release change"


def test_the_deploy_workflow_runs_on_merges_and_skips_its_own_commits() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "deploy.yml")
    triggers = _triggers(workflow)
    assert triggers["push"]["branches"] == ["main"]
    assert set(triggers["push"]["paths-ignore"]) == {
        "manifests/releases/**",
        "manifests/rendered/**",
        "manifests/argocd/**",
    }
    (job,) = workflow["jobs"].values()
    assert job["if"] == "${{ vars.MODELOPS_DEPLOY == 'true' }}", "off until a bucket is set"
    run = _run_text(workflow)
    assert "modelops release deploy --object-store-only" in run
    assert "--message-file" in run


def test_the_rollout_workflow_passes_its_inputs_through_env_and_its_environment() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "rollout.yml")
    triggers = _triggers(workflow)
    assert set(triggers) == {"workflow_dispatch"}
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert inputs["action"]["options"] == ["promote", "rollback", "restore"]
    declared = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["deploy"]["environments"]
    assert set(inputs["environment"]["options"]) == set(declared), "keep in step with params.yaml"
    (job,) = workflow["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}", "production's reviewers approve"
    assert {job["env"][k] for k in ("ACTION", "ENVIRONMENT", "REASON", "VERSION")} == {
        f"${{{{ inputs.{name} }}}}" for name in ("action", "environment", "reason", "version")
    }
    assert "inputs." not in _run_text(workflow)


def test_every_make_target_a_workflow_calls_exists() -> None:
    targets = set(re.findall(r"^([a-z-]+):", (REPO_ROOT / "Makefile").read_text(), re.M))
    for path in WORKFLOWS:
        for target in re.findall(r"\bmake ([a-z-]+)", _run_text(_load(path))):
            assert target in targets, f"{path.name}: make {target} does not exist"

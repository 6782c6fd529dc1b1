"""The GitHub workflows, checked by real linters and against the promises they make.

zizmor audits security (pinning, permissions, injection, credentials) at its strictest persona
(auditor), offline; a finding passes only where a comment ignores it and says why;
check-jsonschema validates them against GitHub's workflow schema. GitHub itself cannot run here,
so what its runners would do is checked by reading the files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import REPO_ROOT, venv_bin

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
SHA_PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def _load(path: Path) -> dict[Any, Any]:
    """A workflow as YAML 1.1 reads it: keys are text, but for `on`, read as True."""
    loaded: dict[Any, Any] = yaml.safe_load(path.read_text())
    return loaded


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    triggers: dict[str, Any] = workflow[True] if True in workflow else workflow["on"]
    return triggers


# `# zizmor: ignore[rule, ...] reason`: zizmor honours the rules; the reason is ours to demand.
IGNORE_COMMENT = re.compile(r"#\s*zizmor:\s*ignore\[([^\]]*)\](.*)$")
GITHUB_DIR = REPO_ROOT / ".github"


def _zizmor(*flags: str) -> list[dict[str, Any]]:
    """zizmor's findings on .github/ (workflows and Dependabot's configuration) at its strictest
    persona, offline (no network, no token), from comments alone (no configuration file)."""
    done = subprocess.run(
        [
            str(venv_bin() / "zizmor"),
            *("--offline", "--persona", "auditor", "--no-config", "--no-progress"),
            *("--format", "json", *flags, str(GITHUB_DIR)),
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.endswith("TOKEN")},
        check=False,
    )
    # 0: no findings; 10 and up: findings (by their highest severity); anything else: it failed.
    assert done.returncode == 0 or done.returncode >= 10, done.stderr
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    return findings


def _where(finding: dict[str, Any]) -> list[tuple[Path, int, int]]:
    """(file, first line, last line) of each primary location (lines counted from 0)."""
    spans = []
    for location in finding["locations"]:
        if location["symbolic"]["kind"] != "Primary":
            continue
        path = REPO_ROOT / location["symbolic"]["key"]["Local"]["verbatim_path"]
        concrete = location["concrete"]["location"]
        spans.append((path, concrete["start_point"]["row"], concrete["end_point"]["row"]))
    return spans


def test_zizmor_as_auditor_finds_nothing_that_a_comment_does_not_explain() -> None:
    reported = _zizmor()
    assert reported == [], "\n".join(f"{f['ident']}: {f['desc']} at {_where(f)}" for f in reported)
    # What the comments silence: each finding has, within its span, an ignore comment that
    # names its rule and says why.
    for finding in _zizmor("--no-ignores"):
        reasons = [
            found[2].strip(" -:")
            for path, first, last in _where(finding)
            for line in path.read_text().splitlines()[first : last + 1]
            if (found := IGNORE_COMMENT.search(line))
            and finding["ident"] in {rule.strip() for rule in found[1].split(",")}
        ]
        assert any(len(reason) >= 10 for reason in reasons), (
            f"{finding['ident']} at {_where(finding)}: an ignore comment must say why"
        )
    # And no ignore comment, needed or not, goes without its reason.
    for path in sorted(GITHUB_DIR.rglob("*.y*ml")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            found = IGNORE_COMMENT.search(line)
            if found:
                reason = found[2].strip(" -:")
                assert len(reason) >= 10, f"{path.name}:{number}: the ignore needs its reason"


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


# A shell line that expands a token puts it on some command's argv (or in a URL); the commands
# that need one read it from their environment.
TOKEN_EXPANSION = re.compile(r"\$\{?\w*(TOKEN|SECRET|PRIVATE_KEY)\w*")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_run_step_puts_a_token_on_a_command_line_or_in_a_url(path: Path) -> None:
    for step in _steps(_load(path)):
        run = step.get("run", "")
        assert "x-access-token" not in run, f"{path.name}: {step.get('name')}: a token in a URL"
        found = TOKEN_EXPANSION.search(run)
        assert found is None, f"{path.name}: {step.get('name')} expands {found and found[0]}"


NODE24_PINS = {
    # From ../shared/STACK-NOTES.md: the releases whose action.yml runs on node24.
    "actions/checkout": "3d3c42e5aac5ba805825da76410c181273ba90b1",
    "actions/setup-python": "5fda3b95a4ea91299a34e894583c3862153e4b97",
    "actions/cache": "27d5ce7f107fe9357f9df03efb73ab90386fccae",
    "actions/upload-artifact": "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",
    # Read from the upstream repositories (tag -> commit, action.yml `using: node24`):
    # create-github-app-token v3.1.1 (2026-04-11), download-artifact v8.0.1 (2026-03-11).
    "actions/create-github-app-token": "1b10c78c7865c340bc4f6099eb2f838309f1e8c3",
    "actions/download-artifact": "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c",
    # helm/kind-action v1.14.0 (2026-01-26; it downloads kind and kubectl sha256-checked).
    "helm/kind-action": "ef37e7f390d99f746eb8b610417061a60e82a6cc",
}
# A secret, the workflow token, or a token minted by a step, anywhere in an expression.
SECRET = re.compile(r"\$\{\{[^}]*\b(secrets\.|github\.token|outputs\.token)")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_runs_on_node24(path: Path) -> None:
    for step in _steps(_load(path)):
        if "uses" in step:
            action, sha = step["uses"].split("@")
            assert NODE24_PINS.get(action) == sha, f"{path.name}: {step['uses']} is not node24"


def _job(workflow: dict[str, Any], name: str) -> dict[str, Any]:
    job: dict[str, Any] = workflow["jobs"][name]
    return job


def _named(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step.get("name", step.get("uses", "")): step for step in job["steps"]}


def _secret_steps(job: dict[str, Any]) -> set[str]:
    """Names of the steps that are given a secret or the workflow token."""
    assert not any(SECRET.search(str(v)) for v in (job.get("env") or {}).values()), (
        "secrets go to the steps that need them, never to the whole job"
    )
    return {
        step.get("name", "")
        for step in job["steps"]
        if any(SECRET.search(str(value)) for value in (step.get("env") or {}).values())
    }


def test_the_pr_workflow_keeps_its_promises() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "pr.yml")
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML reads `on` as True
    assert set(triggers) == {"pull_request"}, "never pull_request_target with PR code"
    assert workflow["concurrency"]["cancel-in-progress"] is True
    assert "pull_request.number" in workflow["concurrency"]["group"]
    assert set(workflow["jobs"]) == {"gates", "comment", "candidate"}
    gates = _job(workflow, "gates")
    assert gates["permissions"] == {"contents": "read"}
    steps = _named(gates)
    checkout = next(s for s in gates["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
    assert checkout["with"]["persist-credentials"] is False
    names = list(steps)
    verdict = next(name for name in names if name.startswith("Verdict"))
    assert names[-1] == verdict, "the job fails on the verdict after it kept the report"
    assert "modelops verdict --committed" in steps[verdict]["run"], "what merges is what deploys"
    assert any("uses" in s and "upload-artifact" in s["uses"] for s in gates["steps"])
    bundle = next(step for name, step in steps.items() if name.startswith("Bundle the candidate"))
    assert "dvc push --run-cache --remote candidate" in bundle["run"]
    assert bundle["if"] == (
        "${{ github.event.pull_request.head.repo.full_name == github.repository }}"
    )
    assert names.index(bundle["name"]) > names.index("Reproduce the pipeline and run the gates")
    assert gates["outputs"]["candidate"] == "${{ steps.candidate.outputs.bundled }}"

    comment = _job(workflow, "comment")
    assert comment["needs"] == "gates"
    assert comment["if"] == "${{ !cancelled() }}", "a failed gate is reported too"
    assert comment["permissions"] == {"pull-requests": "write"}
    post = _named(comment)["Post or update the report comment"]
    assert post["continue-on-error"] is True, "a read-only token must not fail the job"
    assert "@dvcorg/cml@0.20.6 comment update --target=pr" in post["run"]
    assert "--watermark-title" in post["run"]

    candidate = _job(workflow, "candidate")
    assert candidate["needs"] == "gates", "only a candidate whose gates passed"
    assert "needs.gates.outputs.candidate == 'true'" in candidate["if"]
    assert "head.repo.full_name == github.repository" in candidate["if"], "never a fork's"
    assert candidate["environment"] == {"name": "candidates", "deployment": False}
    assert candidate["permissions"] == {"contents": "read"}
    assert _secret_steps(gates) == set()
    assert _secret_steps(comment) == {"Post or update the report comment"}
    assert _secret_steps(candidate) == {"Push it to main's DVC remote"}


def _runs_checked_out_code(job: dict[str, Any]) -> bool:
    """Whether a job checks the triggering commit out into the workspace's root and then runs
    anything at all: on `pull_request`, that is the pull request's code (its Makefile, locked
    environment, pipeline, scripts, even the .npmrc that npx reads)."""
    at_root = any(
        s.get("uses", "").startswith("actions/checkout@")
        and not {"path", "ref"} & set(s.get("with", {}))
        for s in job.get("steps", [])
    )
    return at_root and any("run" in s for s in job.get("steps", []))


PULL_REQUEST_WORKFLOWS = [p for p in WORKFLOWS if "pull_request" in _triggers(_load(p))]


@pytest.mark.parametrize("path", PULL_REQUEST_WORKFLOWS, ids=lambda p: p.name)
def test_no_job_that_runs_the_pull_requests_code_holds_a_credential(path: Path) -> None:
    # Such a job holds no secret, no token beyond a read-only one, no environment (whose
    # secrets it could read), and passes no credential to any step or action.
    workflow = _load(path)
    running = {name for name, job in workflow["jobs"].items() if _runs_checked_out_code(job)}
    assert running, f"{path.name}: the job that runs the pull request's code is recognised"
    for name in running:
        job = _job(workflow, name)
        assert "environment" not in job, f"{path.name} {name}: no environment's secrets"
        scopes = job.get("permissions", workflow["permissions"])
        assert set(scopes.values()) == {"read"}, f"{path.name} {name}: a read-only token"
        for step in job["steps"]:
            assert not SECRET.search(str(step)), f"{name}: {step.get('name')} gets a credential"
        assert not SECRET.search(str(job.get("env"))), name
        assert not SECRET.search(str(workflow.get("env"))), path.name


def test_the_jobs_that_hold_a_credential_run_none_of_the_pull_requests_code() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "pr.yml")
    running = {name for name, job in workflow["jobs"].items() if _runs_checked_out_code(job)}
    holding = {name for name, job in workflow["jobs"].items() if SECRET.search(str(job))}
    assert holding == {"comment", "candidate"}
    assert not running & holding
    comment = _job(workflow, "comment")
    assert not any("actions/checkout" in s.get("uses", "") for s in comment["steps"]), (
        "the comment job checks nothing out: npx finds no .npmrc of the pull request's"
    )
    post = _named(comment)["Post or update the report comment"]
    assert "--no-publish" in post["run"], "CML uploads no local file the report names"
    assert "--repo " in post["run"]
    candidate = _job(workflow, "candidate")
    checkouts = [s for s in candidate["steps"] if "actions/checkout" in s.get("uses", "")]
    assert {c["with"]["path"] for c in checkouts} == {"trusted", "candidate"}
    trusted = next(c for c in checkouts if c["with"]["path"] == "trusted")
    assert trusted["with"]["ref"] == "main", "main's tooling and remote settings"
    assert all(c["with"]["persist-credentials"] is False for c in checkouts)
    assert not any("actions/cache" in s.get("uses", "") for s in candidate["steps"]), (
        "no cache the pull request's runs could have written"
    )
    runs = [s["run"] for s in candidate["steps"] if "run" in s]
    assert runs == [
        "make -C trusted install-pipeline",
        'trusted/.github/scripts/push-candidate.sh trusted candidate "$RUNNER_TEMP/candidate"',
    ]


def _run_text(workflow: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in _steps(workflow))


RELEASE_JOBS = {"deploy.yml": "deploy", "rollout.yml": "rollout"}


def _group(workflow: dict[str, Any], event: str) -> str:
    """The concurrency group a run started by `event` joins (the expressions used here)."""
    group = str(workflow["concurrency"]["group"])
    choice = re.fullmatch(
        r"\$\{\{ github\.event_name == '(\w+)' && '([\w-]+)' \|\| '([\w-]+)' \}\}", group
    )
    if choice is None:
        return group
    return choice[2] if event == choice[1] else choice[3]


def test_no_scheduled_run_can_cancel_a_waiting_deploy_or_rollback() -> None:
    # GitHub keeps one pending run per concurrency group and cancels the older pending one: a
    # scheduled run must never wait in the releases' group; it skips while a release runs.
    workflows = {
        n: _load(REPO_ROOT / ".github" / "workflows" / n) for n in ("rollout.yml", "monitor.yml")
    }
    for name, workflow in workflows.items():
        assert _group(workflow, "schedule") != "releases", name
        busy = _job(workflow, "busy")
        assert "github.event_name == 'schedule'" in busy["if"], name
        assert busy["permissions"] == {"actions": "read"}, name
        assert busy["steps"][-1]["run"] == ".github/scripts/release-busy.sh", name
        scheduled = _job(workflow, "judge" if name == "rollout.yml" else "monitor")
        assert scheduled["needs"] == "busy", name
        assert "needs.busy.outputs.busy != 'true'" in scheduled["if"], name
        assert "needs.busy.result != 'failure'" in scheduled["if"], "cannot tell: do not run"
    script = (REPO_ROOT / ".github" / "scripts" / "release-busy.sh").read_text()
    assert ".github/workflows/deploy.yml" in script
    assert '.event == "workflow_dispatch"' in script, "a rollout started by hand"
    for status in ("queued", "in_progress", "waiting", "pending", "requested"):
        assert status in script


@pytest.mark.parametrize("name", sorted(RELEASE_JOBS))
def test_release_workflows_are_serialised_never_cancelled_and_run_on_mains_tip(name: str) -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / name)
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert _group(workflow, "push") == _group(workflow, "workflow_dispatch") == "releases"
    job = _job(workflow, RELEASE_JOBS[name])
    assert job["permissions"] == {"contents": "write"}, f"{name}: only pushing a commit"
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["persist-credentials"] is False, name
    assert checkout["with"]["ref"] == "main", "a queued run works on main's tip, not its trigger"
    assert "github.ref == 'refs/heads/main'" in job["if"], "never from another branch"
    guard = _job(workflow, "main-only")
    assert guard["if"] == "${{ github.ref != 'refs/heads/main' }}"
    assert "exit 1" in guard["steps"][0]["run"], "a run from another branch fails loudly"
    run = _run_text(workflow)
    assert ".github/scripts/commit-and-push.sh" in run
    assert " -- .venv/bin/modelops" in run
    assert "make install-pipeline" in run


@pytest.mark.parametrize("name", sorted(RELEASE_JOBS))
def test_release_workflows_move_the_registry_only_after_the_push(name: str) -> None:
    job = _job(_load(REPO_ROOT / ".github" / "workflows" / name), RELEASE_JOBS[name])
    names = [step.get("name", "") for step in job["steps"]]
    push = next(i for i, n in enumerate(names) if "commit and push" in n)
    sync = next(i for i, n in enumerate(names) if "registry" in n)
    assert sync > push
    assert job["steps"][sync]["run"] == ".venv/bin/modelops release sync-registry"
    assert "if" not in job["steps"][sync] or "always()" not in job["steps"][sync]["if"], (
        "a failed push leaves the registry as it was"
    )


@pytest.mark.parametrize("name", sorted(RELEASE_JOBS))
def test_release_workflows_give_credentials_only_to_the_steps_that_need_them(name: str) -> None:
    job = _job(_load(REPO_ROOT / ".github" / "workflows" / name), RELEASE_JOBS[name])
    given = _secret_steps(job)
    assert not any("Install" in step or "Reproduce" in step for step in given), given
    for step in job["steps"]:
        if step.get("name", "").startswith(("Install", "Reproduce")):
            assert not step.get("env"), f"{step['name']} gets no credentials"
    needed = {
        n
        for n in given
        if "commit and push" in n or "registry" in n or "DVC remote" in n or "verdict" in n
    }
    assert given == needed, given


def test_the_deploy_workflow_runs_on_merges_and_skips_its_own_commits() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "deploy.yml")
    triggers = _triggers(workflow)
    assert triggers["push"]["branches"] == ["main"]
    assert set(triggers["push"]["paths-ignore"]) == {
        "manifests/releases/**",
        "manifests/rendered/**",
        "manifests/argocd/**",
        "manifests/decisions/**",
    }
    job = _job(workflow, "deploy")
    assert job["if"].startswith("${{ vars.MODELOPS_DEPLOY == 'true'"), "off until a bucket is set"
    run = _run_text(workflow)
    assert "release deploy --object-store-only" in run
    assert "--message-file" in run
    steps = _named(job)
    assert (
        "dvc pull train evaluate"
        in steps["Take the model the merged gates passed, from the DVC remote"]["run"]
    )
    assert (
        steps["Reproduce the model and run its gates (no DVC remote)"]["run"]
        == ".venv/bin/dvc repro"
    )


def _realtime() -> set[str]:
    """The template's real-time environments (strategy direct or canary)."""
    declared = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["deploy"]["environments"]
    return {name for name, environment in declared.items() if environment["strategy"] != "batch"}


def test_the_rollout_workflow_passes_its_inputs_through_env_and_its_environment() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "rollout.yml")
    triggers = _triggers(workflow)
    assert set(triggers) == {"workflow_dispatch", "schedule"}
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert inputs["action"]["options"] == [
        "promote",
        "rollback",
        "restore",
        "auto",
        "experiment-conclude",
        "experiment-stop",
    ]
    assert inputs["reason"]["required"] is True, "every step records a reason"
    declared = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["deploy"]["environments"]
    assert set(inputs["environment"]["options"]) == set(declared), "keep in step with params.yaml"
    approve = _job(workflow, "approve")
    assert approve["environment"] == "${{ inputs.environment }}", "production's reviewers approve"
    assert approve["permissions"] == {}, "the approval holds nothing"
    assert "secrets." not in str(approve), "and no secret"
    job = _job(workflow, "rollout")
    assert job["needs"] == "approve", "nothing changes before a reviewer approved"
    assert approve["if"] == job["if"]
    assert job["environment"] == {"name": "release", "deployment": False}
    assert {job["env"][k] for k in ("ACTION", "ENVIRONMENT", "REASON", "VERSION")} == {
        f"${{{{ inputs.{name} }}}}" for name in ("action", "environment", "reason", "version")
    }
    assert "inputs." not in _run_text(workflow)


def test_the_rollout_workflow_lets_the_canary_judge_run_on_a_schedule() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "rollout.yml")
    assert _triggers(workflow)["schedule"], "the judge looks at every canary regularly"
    judge = _job(workflow, "judge")
    assert set(judge["strategy"]["matrix"]["environment"]) == _realtime(), "never batch ones"
    assert judge["strategy"]["max-parallel"] == 1, "one release change at a time"
    assert "github.ref == 'refs/heads/main'" in judge["if"]
    assert "inputs.action == 'auto'" in judge["if"]
    assert "inputs.action != 'auto'" in _job(workflow, "rollout")["if"], "never both jobs"
    names = [step.get("name", "") for step in judge["steps"]]
    push = next(i for i, n in enumerate(names) if "commit and push" in n)
    assert "modelops canary auto" in judge["steps"][push]["run"]
    assert "commit-and-push.sh" in judge["steps"][push]["run"]
    assert next(i for i, n in enumerate(names) if "registry" in n) > push
    given = _secret_steps(judge)
    assert all("commit and push" in n or "registry" in n for n in given), given
    assert judge["permissions"] == {"contents": "write"}


def test_the_monitor_workflow_decides_daily_and_only_opens_pull_requests() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "monitor.yml")
    triggers = _triggers(workflow)
    assert set(triggers) == {"workflow_dispatch", "schedule"}
    # Every environment: a batch one's windows are its runs' pushed counts.
    declared = set(
        yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["deploy"]["environments"]
    )
    assert declared > _realtime(), "the template has a batch environment too"
    options = triggers["workflow_dispatch"]["inputs"]["environment"]["options"]
    assert set(options) == declared, "keep in step with params.yaml"
    matrix = _job(workflow, "monitor")["strategy"]["matrix"]["environment"]
    assert all(f'"{name}"' in matrix for name in declared), matrix
    assert workflow["concurrency"] == {"group": "monitor", "cancel-in-progress": False}
    job = _job(workflow, "monitor")
    assert job["strategy"]["max-parallel"] == 1
    assert "github.ref == 'refs/heads/main'" in job["if"]
    steps = _named(job)
    names = list(steps)
    judge = next(n for n in names if "commit and push" in n)
    assert "commit-and-push.sh" in steps[judge]["run"]
    assert "modelops monitor --env" in steps[judge]["run"]
    issues = next(n for n in names if "issue" in n)
    retrain = next(n for n in names if "reproduce" in n)
    push = next(n for n in names if n.startswith("Push"))
    assert names.index(judge) < names.index(issues) < names.index(retrain) < names.index(push)
    assert "modelops monitor-issues" in steps[issues]["run"]
    assert steps[retrain]["run"] == '.venv/bin/modelops retrain --env "$ENVIRONMENT"'
    assert steps[push]["run"].endswith("--remote origin --push-only")
    run = _run_text(workflow)
    assert "merge" not in run, "a retraining is merged by a person, never by the monitor"
    given = _secret_steps(job)
    assert given == {judge, issues, push}, given
    assert "inputs." not in run


def test_the_retraining_token_is_in_the_push_step_alone_never_beside_the_pipeline() -> None:
    job = _job(_load(REPO_ROOT / ".github" / "workflows" / "monitor.yml"), "monitor")
    pipeline = [s for s in job["steps"] if "modelops retrain" in s.get("run", "")]
    pipeline = [s for s in pipeline if "--push-only" not in s["run"]]
    assert pipeline, "the retraining's pipeline runs in a step of its own"
    for step in pipeline:
        assert not step.get("env"), f"{step['name']}: no token beside `dvc repro`"
    pushes = [s for s in job["steps"] if "--push-only" in s.get("run", "")]
    assert len(pushes) == 1
    assert (
        pushes[0]["env"]["GITHUB_TOKEN"] == "${{ steps.retrain-app.outputs.token || github.token }}"
    )
    assert not {"GITHUB_TOKEN", "GH_TOKEN", "GIT_PUSH_TOKEN"} & set(job.get("env") or {})


APP_ACTION = "actions/create-github-app-token"
# The jobs that push to main (and the monitor's retraining branch): what each token may do.
APP_TOKENS = {
    ("deploy.yml", "deploy", "app"): {"permission-contents": "write"},
    ("rollout.yml", "rollout", "app"): {"permission-contents": "write"},
    ("rollout.yml", "judge", "app"): {"permission-contents": "write"},
    ("monitor.yml", "monitor", "app"): {"permission-contents": "write"},
    ("monitor.yml", "monitor", "retrain-app"): {
        "permission-contents": "write",
        "permission-pull-requests": "write",
    },
}


def _minted() -> dict[tuple[str, str, str], tuple[dict[str, Any], dict[str, Any]]]:
    """Every step that mints an App token: (workflow, job, step id) -> (job, step)."""
    found = {}
    for path in WORKFLOWS:
        for name, job in _load(path)["jobs"].items():
            for step in job.get("steps", []):
                if step.get("uses", "").startswith(f"{APP_ACTION}@"):
                    found[(path.name, name, step["id"])] = (job, step)
    return found


def test_the_app_token_is_minted_only_in_the_release_environment_with_what_it_needs() -> None:
    # The key that lets the App bypass main's pull-request rule is a secret of `release`, an
    # environment restricted to main: a workflow on any other branch cannot mint the token.
    minted = _minted()
    assert set(minted) == set(APP_TOKENS)
    for where, (job, step) in minted.items():
        environment = job.get("environment")
        name = environment["name"] if isinstance(environment, dict) else environment
        assert name == "release", f"{where}: the App's key lives in `release` alone"
        assert "github.ref == 'refs/heads/main'" in job["if"], where
        granted = {k: v for k, v in step["with"].items() if k.startswith("permission-")}
        assert granted == APP_TOKENS[where], f"{where}: only what the push needs"
        assert step["with"]["private-key"] == "${{ secrets.MODELOPS_APP_PRIVATE_KEY }}"
        assert step["with"]["client-id"] == "${{ vars.MODELOPS_APP_CLIENT_ID }}"
        assert step["if"].startswith("${{ vars.MODELOPS_APP_CLIENT_ID != ''"), "App optional"
        assert not {"owner", "repositories"} & set(step["with"]), "this repository only"


def test_the_app_token_goes_to_the_pushing_step_alone_right_after_it_is_minted() -> None:
    # It lasts an hour: minted after the install and the pipeline, used by the next step, and
    # by no other (only as that step's env:, for the script that hides it from the command).
    minted = _minted()
    assert set(minted) == set(APP_TOKENS), "every push to main, and the retraining's, has one"
    for (workflow, name, mint), (job, _) in minted.items():
        steps = job["steps"]
        at = next(i for i, step in enumerate(steps) if step.get("id") == mint)
        reference = f"steps.{mint}.outputs.token"
        users = [i for i, step in enumerate(steps) if reference in str(step)]
        assert users == [at + 1], f"{workflow} {name}: {mint} is for the next step alone"
        user = steps[at + 1]
        assert reference not in str(user.get("with", "")) + user.get("run", "")
        assert any(reference in str(value) for value in user["env"].values())
        run = user["run"]
        assert "commit-and-push.sh" in run or "--push-only" in run, f"{workflow} {name}"
        later = "\n".join(step.get("name", "") for step in steps[:at])
        assert "Install" in later, f"{workflow} {name}: minted after the install"


def test_ci_cancels_superseded_runs_only_for_pull_requests() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "ci.yml")
    assert workflow["concurrency"]["cancel-in-progress"] == (
        "${{ github.event_name == 'pull_request' }}"
    )
    assert ".ci/run" in _run_text(workflow), "the same entry point as everywhere"


def test_dependabot_watches_the_actions_both_locks_and_the_image() -> None:
    config = REPO_ROOT / ".github" / "dependabot.yml"
    done = subprocess.run(
        [
            str(venv_bin() / "check-jsonschema"),
            "--builtin-schema",
            "vendor.dependabot",
            str(config),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    watched = {(u["package-ecosystem"], u["directory"]) for u in _load(config)["updates"]}
    assert watched == {
        ("github-actions", "/"),
        ("uv", "/"),
        ("uv", "/serving"),
        ("docker", "/serving"),
    }


def test_every_make_target_a_workflow_calls_exists() -> None:
    targets = set(re.findall(r"^([a-z-]+):", (REPO_ROOT / "Makefile").read_text(), re.M))
    for path in WORKFLOWS:
        for target in re.findall(r"\bmake (?:-C \S+ )?([a-z-]+)", _run_text(_load(path))):
            assert target in targets, f"{path.name}: make {target} does not exist"


def test_the_rollout_workflow_judges_running_experiments_daily_and_fails_on_stop() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "rollout.yml")
    crons = [entry["cron"] for entry in _triggers(workflow)["schedule"]]
    assert "0 6 * * *" in crons
    job = _job(workflow, "experiment")
    assert "github.event.schedule == '0 6 * * *'" in job["if"]
    assert job["permissions"] == {"contents": "read"}, "a verdict writes nothing to the repository"
    steps = _named(job)
    judge = steps["Judge the experiment"]["run"]
    assert "modelops experiment analyze --env" in judge
    assert '[ "$status" -ne 3 ]' in judge, "keep running (3) is not a failure; stop (1) is"
    for name in ("busy", "judge"):
        assert "github.event.schedule != '0 6 * * *'" in _job(workflow, name)["if"]
    rollout = _named(_job(workflow, "rollout"))
    change = rollout[
        "Change the release, commit and push (recomputed on main's new tip if it moved)"
    ]
    assert "release experiment conclude" in change["run"]
    assert "--verdict" in change["run"]
    assert "release experiment stop" in change["run"]


def test_the_cluster_workflow_dry_runs_every_generated_object_on_a_pinned_kind_cluster() -> None:
    workflow = _load(REPO_ROOT / ".github" / "workflows" / "cluster.yml")
    assert _triggers(workflow)["pull_request"]["paths"] == [
        "manifests/**",
        "params.yaml",
        "src/modelops/deploy/**",
    ]
    job = _job(workflow, "dry-run")
    assert job["permissions"] == {"contents": "read"}
    assert _secret_steps(job) == set()
    kind = next(s for s in job["steps"] if s.get("uses", "").startswith("helm/kind-action@"))
    assert kind["with"]["version"] == "v0.32.0"
    assert re.fullmatch(r"kindest/node:v[\d.]+@sha256:[0-9a-f]{64}", kind["with"]["node_image"])
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert 'modelops crds "$RUNNER_TEMP/prerequisites"' in runs
    assert "kubectl apply --server-side --dry-run=server -R -f manifests/rendered" in runs
    assert runs.index("modelops render") < runs.index("modelops crds") < runs.index("--dry-run")

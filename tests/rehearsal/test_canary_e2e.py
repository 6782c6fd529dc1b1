"""The canary judge driving a rollout, end to end, with real parts only.

`modelops up` starts a real Prometheus scraping a real stable and a real canary server on
loopback, and traffic (with feedback) split at the release's weight, following it as it changes.
`modelops canary auto` runs through `.github/scripts/commit-and-push.sh`, as rollout.yml runs
it, in the project's temporary git repository with a bare repository as its remote; the test
reads the commits that land there. Nothing is stubbed: only GitHub itself is absent.

- The same model as canary (another copy, so another version): the first look holds (too few
  requests), then `auto` promotes it through every step to stable, one commit per step, each
  with its verdict beside the release and linked from the history.
- A canary that fails a share of its predictions: rolled back, naming `errors`.
- A canary that is an underfit model (its scores bunch near the base rate): rolled back, naming
  the score distribution.
- A shadow (shadow_first): the rehearsal mirrors every request to it, and stable's feedback
  (which carries stable's answer); the judge compares track `shadow` with stable on those, row
  by row too (agreement, Kendall's tau), and `auto` makes it a canary at the first step.

The bounds are loosened for a test that must finish in about a minute per scenario (they are
the params a user tunes); the statistics are the same.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.cli import main
from modelops.deploy.workflow import Plan, write
from modelops.params import load_params
from modelops.rehearsal import processes
from modelops.releases import state
from modelops.releases.files import load_releases
from modelops.releases.publish import publish
from tests.support import git, modelops_command, run_modelops, venv_bin, write_params

ENV = "production"
STEPS = [25, 50, 100]
CANARY = {
    "alpha": 0.05,
    "min_requests": 120,
    "min_soak": "5s",
    "planned_requests": 400,
    "max_step_duration": "1h",
    "errors": {"max_increase": 0.05},
    "latency": {"quantiles": [0.9], "max_ratio": 4.0},
    "scores": {"max_psi": 0.5},
    "positive_rate": {"max_difference": 0.2},
    "quality": {"min_labels": 50},
    "shadow": {"required": True},
}
DRIFT = {"max_numeric_drift": 0.5, "max_categorical_drift": 0.5}
PATIENCE_SECONDS = 150


@pytest.fixture(scope="module")
def repo(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained project with the test's canary params, committed, and a bare remote."""
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["canary"] = CANARY
    params["gates"]["drift"].update(DRIFT)  # the inputs are held to the drift gate's limits
    params["deploy"]["environments"][ENV]["canary_steps"] = STEPS
    write_params(project, params)
    remote = tmp_path_factory.mktemp("remote") / "origin.git"
    git(project, "init", "--quiet", "--bare", str(remote))
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "canary params")
    git(project, "remote", "add", "origin", str(remote))
    git(project, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    return project


def _version(root: Path, model_dir: Path, name: str) -> state.ModelVersion:
    params = load_params(root / "params.yaml")
    uri, digest = publish(model_dir, store=params.deploy.store, name=params.deploy.name, root=root)
    return state.ModelVersion(
        version=name,
        model_uri=uri,
        model_hash=digest,
        data_version="test",
        git_commit="0" * 40,
    )


def _copy(model_dir: Path, target: Path, note: str) -> Path:
    """The same model under another content hash (a note file beside it)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(model_dir, target)
    (target / "NOTE.txt").write_text(note, encoding="utf-8")
    return target


def _start_canary(root: Path, canary_dir: Path, name: str, *, shadow: bool = False) -> None:
    """A release of `production`: the workspace model stable, `canary_dir` at the first step
    (or, with `shadow`, as a shadow on mirrored requests)."""
    params = load_params(root / "params.yaml")
    releases = load_releases(root, params)
    stable = _version(root, root / "models" / "model", "v-stable")
    canary = _version(root, canary_dir, name)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    release = state.Release(environment=ENV)
    for model in (stable, canary):
        change = state.Change(at=now, by="test", reason=f"deploy {model.version}")
        result = state.deploy(
            release, model, strategy="canary", steps=STEPS, change=change, shadow_first=shadow
        )
        assert isinstance(result, state.Release)
        release = result
    assert release.canary is not None
    releases[ENV] = release
    write(root, params, Plan(releases, (ENV,), "start"))
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", f"start canary {name}")
    git(root, "push", "--quiet", "origin", "HEAD:refs/heads/main")


def _up(root: Path, *extra: str) -> int:
    names = ("prometheus", "alertmanager", "stable", "canary", "stable-metrics", "canary-metrics")
    ports = dict(zip(names, processes.free_ports(len(names)), strict=True))
    args = ["up", "--env", ENV, "--minutes", "4", "--rate", "40", "--rows", "4"]
    args += ["--label-delay", "2", *extra]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert main(args) == 0
    return ports["prometheus"]


def _auto(root: Path, prometheus: int) -> subprocess.CompletedProcess[str]:
    """One scheduled run of rollout.yml's auto job: judge, commit and push what it decided."""
    message = root / ".rehearsal" / "auto-message.txt"
    command = [modelops_command(), "canary", "auto", "--env", ENV]
    command += ["--prometheus", f"http://127.0.0.1:{prometheus}", "--message-file", str(message)]
    env = {**os.environ, "BRANCH": "main", "WORKFLOW": "rollout", "BACKOFF": "0"}
    env["PATH"] = f"{venv_bin()}{os.pathsep}{env['PATH']}"
    script = root / ".github" / "scripts" / "commit-and-push.sh"
    return subprocess.run(
        ["bash", str(script), str(message), "--", *command],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _run_cli(root: Path, action: str, prometheus: int) -> tuple[int, str]:
    """`modelops canary ACTION` in-process: its exit code and what it printed."""
    printed = io.StringIO()
    url = f"http://127.0.0.1:{prometheus}"
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.chdir(root)
        code = main(["canary", action, "--env", ENV, "--prometheus", url])
    return code, printed.getvalue()


def _pushed(root: Path) -> list[str]:
    log = git(root, "log", "--format=%B%x00", "origin/main")
    return [entry.strip() for entry in log.split("\x00") if entry.strip()]


def _release(root: Path) -> Any:
    return load_releases(root, load_params(root / "params.yaml"))[ENV]


def _until_decided(root: Path, prometheus: int, *, shadow: bool = False) -> tuple[list[str], str]:
    """Run auto every few seconds until the release has no canary (or, with `shadow`, until the
    shadow is no more); what each run printed."""
    outputs: list[str] = []
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        run = _auto(root, prometheus)
        outputs.append(run.stdout + run.stderr)
        assert run.returncode == 0, outputs[-1]
        git(root, "fetch", "--quiet", "origin")
        canary = _release(root).canary
        if canary is None or (shadow and not canary.shadow):
            return outputs, outputs[-1]
        time.sleep(3)
    raise AssertionError("no decision in time:\n" + "\n---\n".join(outputs[-3:]))


def test_the_same_model_is_held_first_then_promoted_through_every_step(repo: Path) -> None:
    twin = _copy(repo / "models" / "model", repo / ".rehearsal" / "twin", "the same model")
    _start_canary(repo, twin, "v-twin")
    prometheus = _up(repo)
    try:
        first = _auto(repo, prometheus)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "hold: canary has" in first.stdout
        assert "Nothing changed under manifests/" in first.stdout
        started = time.perf_counter()
        code, printed = _run_cli(repo, "analyze", prometheus)
        print(f"one analysis (8 queries and the statistics): {time.perf_counter() - started:.2f} s")
        assert code == 3, printed
        assert (repo / "reports" / "canary" / f"{ENV}.json").is_file()
        outputs, _ = _until_decided(repo, prometheus)
        code, planned = _run_cli(repo, "plan", prometheus)
    finally:
        processes.down(repo)
    print(planned)
    assert code in (0, 1), planned
    assert f"plan for {ENV}: " in planned
    for weight in STEPS[:-1]:
        assert f"{weight:>3}%: " in planned, planned
    assert "whole rollout: about" in planned
    pushed = _pushed(repo)
    steps = [m for m in pushed if m.startswith(("promote:", "complete:"))]
    assert [m.splitlines()[0] for m in reversed(steps)] == [
        f"promote: {ENV} canary v-twin 25% -> 50%",
        f"complete: {ENV} runs v-twin (100%)",
    ], "\n".join(outputs)
    for message in steps:
        assert "By canary-judge: promote: every criterion is within its bound" in message
        assert "Verdict: manifests/releases/production/verdicts/" in message
    history = _release(repo).history
    judged = [e for e in history if e.by == "canary-judge"]
    assert [e.action for e in judged] == ["promote", "complete"]
    for event in judged:
        assert event.verdict is not None
        verdict = repo / event.verdict
        assert verdict.is_file()
        assert verdict.with_suffix(".json").is_file()
        assert "# Canary verdict: Promote" in verdict.read_text(encoding="utf-8")
    assert _release(repo).stable.version == "v-twin"


def test_a_canary_that_fails_requests_is_rolled_back_naming_errors(repo: Path) -> None:
    twin = _copy(repo / "models" / "model", repo / ".rehearsal" / "faulty", "fails on purpose")
    _start_canary(repo, twin, "v-faulty")
    prometheus = _up(repo, "--canary-errors", "0.3")
    try:
        _, last = _until_decided(repo, prometheus)
    finally:
        processes.down(repo)
    message = _pushed(repo)[0]
    assert message.startswith(f"rollback: {ENV} canary v-faulty removed"), last
    assert "By canary-judge: roll back: errors (" in message
    assert _release(repo).history[-1].action == "rollback"
    assert _release(repo).history[-1].verdict is not None


def test_an_underfit_canary_is_rolled_back_naming_its_scores(repo: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    model = {"kind": "logistic_regression", "C": 1e-4}
    weak = {**params, "train": {**params["train"], "model": model}}
    # The workspace model is stable's: kept aside while the weak one is trained, then put back.
    stable = repo / ".rehearsal" / "stable-model"
    shutil.rmtree(stable, ignore_errors=True)
    shutil.copytree(repo / "models" / "model", stable)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        write_params(repo, weak)
        try:
            run_modelops("train")
            underfit = _copy(repo / "models" / "model", repo / ".rehearsal" / "weak", "underfit")
        finally:
            git(repo, "checkout", "--quiet", "--", "params.yaml")
            shutil.rmtree(repo / "models" / "model")
            shutil.copytree(stable, repo / "models" / "model")
    _start_canary(repo, underfit, "v-underfit")
    prometheus = _up(repo)
    try:
        _, last = _until_decided(repo, prometheus)
    finally:
        processes.down(repo)
    message = _pushed(repo)[0]
    assert message.startswith(f"rollback: {ENV} canary v-underfit removed"), last
    assert "roll back: scores (" in message or "; scores (" in message, message


def test_a_shadow_is_judged_on_mirrored_requests_then_becomes_a_canary(repo: Path) -> None:
    twin = _copy(repo / "models" / "model", repo / ".rehearsal" / "shadow", "mirrored")
    _start_canary(repo, twin, "v-shadow", shadow=True)
    assert _release(repo).traffic == {"stable": 100, "shadow": 0}
    prometheus = _up(repo)
    try:
        _, last = _until_decided(repo, prometheus, shadow=True)
    finally:
        processes.down(repo)
    message = _pushed(repo)[0]
    assert message.startswith(f"promote: {ENV} shadow v-shadow -> canary at 25%"), last
    assert "By canary-judge: promote: every criterion is within its bound" in message
    verdict = repo / (_release(repo).history[-1].verdict or "")
    findings = json.loads(verdict.with_suffix(".json").read_text(encoding="utf-8"))["findings"]
    assert any('track=~"shadow|stable"' in f["query"] for f in findings), "shadow against stable"
    status = {f["criterion"]: f["status"] for f in findings}
    assert status["agreement with stable"] == "pass", findings
    assert status["rank agreement with stable"] == "pass", findings

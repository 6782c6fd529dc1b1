"""The release step of deploy.yml and rollout.yml, against a real bare remote and two clones.

GitHub is not here; a bare repository stands in for it (served over HTTP, with a token, by
tests/git_http.py where the token matters). Clone "bot" is the workflow's checkout, clone
"person" pushes in between, as a concurrent merge or a hand-run release would. The script runs
the real `modelops release` command, and runs it again on the new tip when its push is refused:
a release change is recomputed, never rebased. The token it pushes with reaches git alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelops.deploy.workflow import Plan, write
from modelops.params import canary_steps, load_params
from modelops.releases.files import load_releases
from modelops.releases.state import Release, deploy
from tests import git_http
from tests.deploy.support import change, model_version
from tests.support import (
    REPO_ROOT,
    git,
    modelops_command,
    recording_shims,
    template_params,
    venv_bin,
    write_params,
)

SCRIPT = REPO_ROOT / ".github" / "scripts" / "commit-and-push.sh"
RELEASE = Path("manifests/releases/production.yaml")


def _canary_running(root: Path) -> None:
    """Production: v1 stable, v2 a canary at 10%, written by the real state machine."""
    params = load_params(root / "params.yaml")
    releases = load_releases(root, params)
    steps = canary_steps(params.deploy.environments["production"])
    release: Release | object = releases["production"]
    for name in ("v1", "v2"):
        release = deploy(
            release,  # type: ignore[arg-type]
            model_version(name),
            strategy="canary",
            steps=steps,
            change=change(),
        )
    assert isinstance(release, Release)
    releases["production"] = release
    write(root, params, Plan(releases, ("production",), "unused"))


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare remote whose main has the template's params and templates and a running canary."""
    seed = tmp_path / "seed"
    shutil.copytree(REPO_ROOT / "manifests" / "templates", seed / "manifests" / "templates")
    write_params(seed, template_params())
    _canary_running(seed)
    git(seed, "init", "--quiet", "--initial-branch=main")
    git(seed, "add", "--all")
    git(seed, "commit", "--quiet", "--message", "Start")
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(seed), str(bare))
    return bare


def clone(remote: Path, name: str) -> Path:
    path = remote.parent / name
    git(remote.parent, "clone", "--quiet", str(remote), str(path))
    return path


def release(
    root: Path, *args: str, env: dict[str, str] | None = None, before: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """What rollout.yml's step runs: the script around a real `modelops release` command
    (`before` is put in front of the command, `env` added to the script's environment)."""
    message = root.parent / f"{root.name}-message.txt"
    environ = {
        **os.environ,
        "ATTEMPTS": "3",
        "BACKOFF": "0",
        "WORKFLOW": "rollout",
        "PATH": f"{venv_bin()}{os.pathsep}{os.environ['PATH']}",
        **(env or {}),
    }
    command = [modelops_command(), "release", *args, "--message-file", str(message)]
    return subprocess.run(
        ["bash", str(SCRIPT), str(message), "--", *before, *command],
        cwd=root,
        capture_output=True,
        text=True,
        env=environ,
    )


def person_releases(person: Path, *args: str) -> None:
    """Someone else changes the release and pushes first."""
    message = person.parent / "person-message.txt"
    done = subprocess.run(
        [modelops_command(), "release", *args, "--message-file", str(message)],
        cwd=person,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    git(person, "add", "manifests")
    git(person, "commit", "--quiet", "--file", str(message))
    git(person, "push", "--quiet", "origin", "main")


def remote_log(remote: Path) -> list[str]:
    return git(remote, "log", "--format=%s", "main").splitlines()


def remote_release(remote: Path, tmp_path: Path) -> dict:
    check = tmp_path / "check"
    git(tmp_path, "clone", "--quiet", str(remote), str(check))
    done = subprocess.run([modelops_command(), "render", "--check"], cwd=check, capture_output=True)
    assert done.returncode == 0, "main's manifests are what its releases render"
    loaded: dict = yaml.safe_load((check / RELEASE).read_text())
    return loaded


def test_a_release_change_is_committed_with_its_message_and_pushed(remote: Path) -> None:
    bot = clone(remote, "bot")
    done = release(bot, "promote", "--env", "production", "--reason", "healthy at 10%")
    assert done.returncode == 0, done.stdout + done.stderr
    assert remote_log(remote)[0].startswith("promote: production canary")
    assert "healthy at 10%" in git(remote, "log", "-1", "--format=%b", "main")


def test_a_command_that_changes_nothing_commits_nothing(remote: Path) -> None:
    bot = clone(remote, "bot")
    done = subprocess.run(
        ["bash", str(SCRIPT), str(bot.parent / "m.txt"), "--", "true"],
        cwd=bot,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "nothing to commit" in done.stdout
    assert remote_log(remote) == ["Start"]


def test_a_push_that_races_an_unrelated_merge_is_recomputed_on_top_of_it(remote: Path) -> None:
    bot, person = clone(remote, "bot"), clone(remote, "person")
    (person / "README.md").write_text("a merge landed meanwhile\n")
    git(person, "add", "README.md")
    git(person, "commit", "--quiet", "--message", "Merge pull request #7")
    git(person, "push", "--quiet", "origin", "main")

    done = release(bot, "promote", "--env", "production", "--reason", "ok")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recomputing on its new tip" in done.stdout
    assert remote_log(remote)[1:] == ["Merge pull request #7", "Start"]


def test_a_promote_that_races_another_promote_applies_to_the_new_state(
    remote: Path, tmp_path: Path
) -> None:
    # Given two people promote the 10% canary at once, then it moves two steps, each recorded
    # once: the bot's promote is recomputed from 25%, never replayed from 10%.
    bot, person = clone(remote, "bot"), clone(remote, "person")
    person_releases(person, "promote", "--env", "production", "--reason", "person: ok")
    done = release(bot, "promote", "--env", "production", "--reason", "bot: ok")
    assert done.returncode == 0, done.stdout + done.stderr
    document = remote_release(remote, tmp_path)
    assert document["canary"]["weight"] == 50
    assert [e["reason"] for e in document["history"]][-2:] == ["person: ok", "bot: ok"]


def test_a_command_refused_on_the_new_tip_pushes_nothing_and_names_a_new_run(
    remote: Path,
) -> None:
    bot, person = clone(remote, "bot"), clone(remote, "person")
    person_releases(person, "rollback", "--env", "production", "--reason", "errors")
    done = release(bot, "promote", "--env", "production", "--reason", "ok")
    assert done.returncode == 1
    assert "no canary to promote" in done.stderr
    assert "Start a new run of rollout from main" in done.stdout
    assert '"Re-run" would start again from the old commit' in done.stdout
    assert remote_log(remote)[0].startswith("rollback:"), "the remote keeps the rollback"
    assert git(bot, "status", "--porcelain") == "", "nothing left half-done"


def test_stale_manifests_on_the_new_tip_are_rendered_fresh(remote: Path, tmp_path: Path) -> None:
    bot, person = clone(remote, "bot"), clone(remote, "person")
    params = yaml.safe_load((person / "params.yaml").read_text())
    params["deploy"]["image"] = "registry.example/serving:2"
    write_params(person, params)  # and no `make render`
    git(person, "add", "--all")
    git(person, "commit", "--quiet", "--message", "Change the image without rendering")
    git(person, "push", "--quiet", "origin", "main")

    done = release(bot, "promote", "--env", "production", "--reason", "ok")
    assert done.returncode == 0, done.stdout + done.stderr
    remote_release(remote, tmp_path)  # render --check passes on main
    check = tmp_path / "check" / "manifests" / "rendered" / "production"
    assert "registry.example/serving:2" in (check / "seldondeployment.yaml").read_text()


def test_a_branch_that_keeps_moving_gives_up_and_names_a_new_run(remote: Path) -> None:
    bot = clone(remote, "bot")
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho refused by the test >&2\nexit 1\n")
    hook.chmod(0o755)
    done = release(bot, "promote", "--env", "production", "--reason", "ok")
    assert done.returncode == 1
    assert "Gave up after 3 attempts" in done.stdout
    assert "Start a new run of rollout" in done.stdout
    assert remote_log(remote) == ["Start"]


TOKEN = "ghs_0123456789abcdefNOTaREALtoken"


def test_the_token_reaches_git_alone_and_only_its_own_server(remote: Path, tmp_path: Path) -> None:
    # Given a remote that accepts only the token, and the token in GIT_PUSH_TOKEN as the workflow
    # step's env: gives it, when a release is committed and pushed, then git authenticated
    # with it, and it was in no git command line, no URL, no file, and not in the environment
    # of the release command (which runs the project's code and needs no GitHub token).
    bot = clone(remote, "bot")
    log = tmp_path / "git-argv.log"
    shim = recording_shims(tmp_path / "shim", log, argv=("git",), env=())
    seen_by_command = tmp_path / "command-env.txt"
    path = f"{shim}{os.pathsep}{venv_bin()}{os.pathsep}{os.environ['PATH']}"
    with git_http.serve(remote.parent, TOKEN) as server:
        git(bot, "remote", "set-url", "origin", f"{server.url}/{remote.name}")
        # The token is for another server (GITHUB_SERVER_URL): this one never receives it.
        elsewhere = release(
            bot,
            *("promote", "--env", "production", "--reason", "ok"),
            env={"GIT_PUSH_TOKEN": TOKEN, "GITHUB_SERVER_URL": "https://github.example"},
        )
        refused = list(server.seen)
        git(bot, "reset", "--quiet", "--hard", "origin/main")
        done = release(
            bot,
            *("promote", "--env", "production", "--reason", "healthy at 10%"),
            env={"GIT_PUSH_TOKEN": TOKEN, "GITHUB_SERVER_URL": server.url, "PATH": path},
            before=("bash", "-c", 'env > "$0"; exec "$@"', str(seen_by_command)),
        )
        pushes = [ok for _, route, ok in server.seen if route.endswith("/git-receive-pack")]
    assert elsewhere.returncode != 0
    assert refused, "git did ask the other server"
    assert not any(ok for _, _, ok in refused), "no request carried the token"
    assert done.returncode == 0, done.stdout + done.stderr
    assert remote_log(remote)[0].startswith("promote: production canary")
    assert remote_log(remote)[1:] == ["Start"], "the refused attempt left nothing"
    assert pushes
    assert pushes[-1], "git sent the token when the server asked for it"
    assert "GIT_PUSH_TOKEN" not in seen_by_command.read_text()
    assert TOKEN not in seen_by_command.read_text(), "the release command never sees the token"
    assert "push" in log.read_text()
    assert TOKEN not in log.read_text(), "the token is in no git command line"
    assert TOKEN not in (bot / ".git" / "config").read_text(), "nor in the checkout's config"
    assert TOKEN not in done.stdout + done.stderr

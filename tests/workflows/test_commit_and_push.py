"""The push step of deploy.yml and rollout.yml, against a real bare remote and two clones.

GitHub is not here; a bare repository stands in for it. Clone "bot" is the workflow's
checkout, clone "person" pushes in between as a concurrent merge or hand-run release would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelops.deploy.release import deploy
from modelops.deploy.workflow import Plan, load_releases, write
from modelops.params import load_params
from tests.deploy.support import change, model_version
from tests.support import REPO_ROOT, git, template_params, venv_bin, write_params

SCRIPT = REPO_ROOT / ".github" / "scripts" / "commit-and-push.sh"


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare remote whose main has the template's params and templates and one release."""
    seed = tmp_path / "seed"
    shutil.copytree(REPO_ROOT / "manifests" / "templates", seed / "manifests" / "templates")
    write_params(seed, template_params())
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


def release_change(root: Path, model: str) -> Path:
    """What `modelops release deploy` leaves: releases and manifests written, a message file."""
    params = load_params(root / "params.yaml")
    releases = load_releases(root, params)
    production = releases["production"]
    releases["production"] = deploy(
        production, model_version(model), strategy="direct", steps=(100,), change=change()
    )
    write(root, params, Plan(releases, ("production",), "unused"))
    message = root.parent / f"{root.name}-message.txt"
    message.write_text(f"deploy: {model} to production\n\nBy bot: test\n")
    return message


def push(root: Path, message: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MODELOPS": str(venv_bin() / "modelops"),
        "ATTEMPTS": "3",
        "PATH": f"{venv_bin()}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run(
        ["bash", str(SCRIPT), str(message)], cwd=root, capture_output=True, text=True, env=env
    )


def remote_log(remote: Path) -> list[str]:
    return git(remote, "log", "--format=%s", "main").splitlines()


def test_a_release_change_is_committed_with_its_message_and_pushed(remote: Path) -> None:
    bot = clone(remote, "bot")
    done = push(bot, release_change(bot, "a"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert remote_log(remote) == ["deploy: a to production", "Start"]
    assert "By bot: test" in git(remote, "log", "-1", "--format=%b", "main")


def test_nothing_changed_means_nothing_committed(remote: Path) -> None:
    bot = clone(remote, "bot")
    message = bot.parent / "m.txt"
    message.write_text("x\n")
    done = push(bot, message)
    assert done.returncode == 0
    assert "nothing to commit" in done.stdout
    assert remote_log(remote) == ["Start"]


def test_a_push_that_races_another_is_rebased_on_top_of_it(remote: Path) -> None:
    bot, person = clone(remote, "bot"), clone(remote, "person")
    (person / "README.md").write_text("a merge landed meanwhile\n")
    git(person, "add", "README.md")
    git(person, "commit", "--quiet", "--message", "Merge pull request #7")
    git(person, "push", "--quiet", "origin", "main")

    done = push(bot, release_change(bot, "a"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rebasing on top of it" in done.stdout
    assert remote_log(remote) == ["deploy: a to production", "Merge pull request #7", "Start"]


def test_two_release_changes_that_conflict_push_nothing_and_say_to_rerun(remote: Path) -> None:
    bot, person = clone(remote, "bot"), clone(remote, "person")
    person_message = release_change(person, "b")
    git(person, "add", "manifests")
    git(person, "commit", "--quiet", "--file", str(person_message))
    git(person, "push", "--quiet", "origin", "main")

    done = push(bot, release_change(bot, "a"))
    assert done.returncode == 1
    assert "Re-run this workflow" in done.stdout
    assert remote_log(remote) == ["deploy: b to production", "Start"], "the remote is untouched"
    assert git(bot, "status", "--porcelain") == "", "no rebase left half-done"


def test_a_rebase_that_leaves_stale_manifests_is_not_pushed(remote: Path) -> None:
    bot, person = clone(remote, "bot"), clone(remote, "person")
    params = yaml.safe_load((person / "params.yaml").read_text())
    params["deploy"]["image"] = "registry.example/serving:2"
    write_params(person, params)  # and no `make render`: the bot rendered the old image
    git(person, "add", "--all")
    git(person, "commit", "--quiet", "--message", "Change the image without rendering")
    git(person, "push", "--quiet", "origin", "main")

    done = push(bot, release_change(bot, "a"))
    assert done.returncode == 1
    assert "not what the templates and releases produce" in done.stdout
    assert remote_log(remote)[0] == "Change the image without rendering"

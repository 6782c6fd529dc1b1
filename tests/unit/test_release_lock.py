"""One release command at a time per checkout (`modelops.releases.lock`)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelops.errors import ReleaseError
from modelops.releases.lock import exclusive, lock_path


def test_a_second_command_waits_then_refuses_naming_the_holder(tmp_path: Path) -> None:
    with exclusive(tmp_path):
        started = time.monotonic()
        refused = pytest.raises(ReleaseError, match=r"another release command \(PID \d+\)")
        with refused, exclusive(tmp_path, wait_seconds=0.3):
            pass
        assert time.monotonic() - started >= 0.3, "it waited its bounded time"
    with exclusive(tmp_path, wait_seconds=0.3):
        pass  # released: the next one goes ahead


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from modelops.releases.lock import "
            "exclusive\nwith exclusive(Path(sys.argv[1])):\n print('held', flush=True)\n "
            "time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ReleaseError), exclusive(tmp_path, wait_seconds=0.2):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
    with exclusive(tmp_path, wait_seconds=1.0):
        assert lock_path(tmp_path).is_file()


def test_the_lock_lives_in_gits_directory_never_in_the_work_tree(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    assert lock_path(tmp_path) == tmp_path / ".git" / "modelops-release.lock"
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    (worktree / ".git").write_text(f"gitdir: {tmp_path / '.git'}\n")
    assert lock_path(worktree) == tmp_path / ".git" / "modelops-release.lock"
    with exclusive(worktree):
        pass
    assert not list(worktree.iterdir())[1:], "nothing but .git in the work tree"


def test_every_release_action_but_status_and_canary_auto_hold_the_lock() -> None:
    from modelops.cli import _parser

    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    release = commands.choices["release"]
    actions = next(a for a in release._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in actions.choices.items():
        handler = sub.get_default("handler")
        assert hasattr(handler, "__wrapped__") == (name != "status"), name
    for command, action in (("render", None), ("canary", "auto")):
        chosen = commands.choices[command]
        if action is not None:
            subs = next(a for a in chosen._actions if isinstance(a, argparse._SubParsersAction))
            chosen = subs.choices[action]
        assert hasattr(chosen.get_default("handler"), "__wrapped__"), command

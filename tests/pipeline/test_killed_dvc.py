"""A `dvc repro` killed mid-stage leaves no stage running behind it.

DVC runs a stage's command as its child; killed (SIGKILL), it left that child training, and
the orphan wrote `models/model` while the run started to recover trained another. Real dvc, a
real training on a copy of the shared trained project, and a real SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.shared import copy_project
from tests.support import venv_bin


def _stage_process(project: Path, stage: str) -> int | None:
    """The PID of the process dvc runs for `stage` in `project` (Linux: /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cwd = str((entry / "cwd").readlink())
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if (
            f"DVC_STAGE={stage}".encode() in environ
            and cwd == str(project)
            and b"modelops" in command
        ):
            return int(entry.name)
    return None


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `folder` with its inode and modification time: a stage that
    wrote its output (even byte for byte the same model) shows."""
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    }


def test_a_stage_stops_without_writing_when_the_dvc_that_ran_it_is_killed(
    trained_project: Path, tmp_path: Path
) -> None:
    project = copy_project(trained_project, tmp_path / "project").resolve()
    before = _files(project / "models")
    env = {**os.environ, "PATH": f"{venv_bin()}{os.pathsep}{os.environ['PATH']}"}
    dvc = subprocess.Popen(
        [str(venv_bin() / "dvc"), "repro", "--force", "--single-item", "train"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        stage = None
        while stage is None and time.monotonic() < deadline and dvc.poll() is None:
            stage = _stage_process(project, "train")
            time.sleep(0.05)
        assert stage is not None, "dvc never started the train stage"
        time.sleep(1.0)  # inside the command now: importing or training
    finally:
        dvc.send_signal(signal.SIGKILL)
        dvc.wait(timeout=30)
    # Unwatched, the orphan trains to the end (seconds) and moves its model into place.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _stage_process(project, "train") == stage:
        time.sleep(0.1)
    left = _stage_process(project, "train")
    if left is not None:
        os.kill(left, signal.SIGKILL)
    assert left is None, "the stage is still running two minutes after dvc was killed"
    assert _files(project / "models") == before, "the orphaned stage wrote models/"

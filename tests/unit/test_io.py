"""Atomic output writing: all outputs or none, and the old ones survive a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelops.io import bytes_writer, commit, flatten, json_bytes, leftovers, staged_dir
from modelops.tracking import flatten_params


def _boom(path: Path) -> None:
    path.write_text("half")
    raise RuntimeError("disk full")


def test_commit_writes_every_output(tmp_path: Path) -> None:
    commit({tmp_path / "a" / "x.json": bytes_writer(b"1"), tmp_path / "y.txt": bytes_writer(b"2")})
    assert (tmp_path / "a" / "x.json").read_bytes() == b"1"
    assert (tmp_path / "y.txt").read_bytes() == b"2"


def test_when_one_writer_fails_then_no_output_changes_and_nothing_is_left_behind(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old.txt"
    old.write_text("previous")
    with pytest.raises(RuntimeError, match="disk full"):
        commit({old: bytes_writer(b"new"), tmp_path / "other.txt": _boom})
    assert old.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.txt"]


def test_a_directory_output_replaces_the_old_directory_whole(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.bin").write_text("old")

    def write(path: Path) -> None:
        path.mkdir()
        (path / "fresh.bin").write_text("new")

    commit({target: write})
    assert [p.name for p in target.iterdir()] == ["fresh.bin"]


def test_staged_dir_keeps_the_old_directory_when_the_block_fails(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights.bin").write_text("old")

    def fail_while_writing() -> None:
        with staged_dir(target) as staging:
            (staging / "weights.bin").write_text("half")
            raise RuntimeError("fit failed")

    with pytest.raises(RuntimeError, match="fit failed"):
        fail_while_writing()
    assert (target / "weights.bin").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def test_what_a_killed_command_left_is_restored_or_removed_by_the_next_one(tmp_path: Path) -> None:
    dead = _dead_pid()
    # Killed between parking the old folder and moving the new one in: the target is missing.
    rendered = tmp_path / "rendered"
    (tmp_path / f".rendered.old-{dead}").mkdir()
    (tmp_path / f".rendered.old-{dead}" / "a.yaml").write_text("previous")
    (tmp_path / f".rendered.tmp-{dead}").mkdir()
    (tmp_path / f".release.yaml.tmp-{dead}").write_text("half")
    running = tmp_path / f".other.tmp-{os.getppid()}"  # a command still running: never touched
    running.write_text("busy")
    assert [p.name for p in leftovers(tmp_path)] == [
        f".release.yaml.tmp-{dead}",
        f".rendered.old-{dead}",
        f".rendered.tmp-{dead}",
    ]
    with staged_dir(rendered) as staging:
        assert (rendered / "a.yaml").read_text() == "previous", "the parked copy came back"
        (staging / "b.yaml").write_text("new")
    commit({tmp_path / "release.yaml": bytes_writer(b"ok")})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["rendered", "release.yaml", running.name]
    )
    assert [p.name for p in (tmp_path / "rendered").iterdir()] == ["b.yaml"]


def test_json_bytes_is_deterministic_and_refuses_nan() -> None:
    assert json_bytes({"b": 1, "a": [1.5]}) == b'{\n  "a": [\n    1.5\n  ],\n  "b": 1\n}\n'
    with pytest.raises(ValueError, match="Out of range float"):
        json_bytes({"x": float("nan")})


def test_nested_mappings_flatten_to_dotted_keys_in_order_with_leaves_unchanged() -> None:
    nested = {"b": {"y": 1, "x": {"deep": None}}, "a": [1, 2], "empty": {}}
    assert flatten(nested) == {"b.y": 1, "b.x.deep": None, "a": [1, 2]}
    assert list(flatten(nested)) == ["b.y", "b.x.deep", "a"], "insertion order, as MLflow shows"


def test_params_flatten_to_the_strings_mlflow_stores() -> None:
    sections = {"train": {"seed": 42, "model": {"max_depth": None, "kind": "rf"}}}
    assert flatten_params(sections) == {
        "train.seed": "42",
        "train.model.max_depth": "null",
        "train.model.kind": "rf",
    }

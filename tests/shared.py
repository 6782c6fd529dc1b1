"""What a test run builds once and every xdist worker shares: built under a lock, then copied.

Training is what makes the suite slow, and most tests that need a trained project need the same
one. `built_once` builds a folder the first time any worker asks for it (the others wait on a
file lock) in the folder every worker of the run shares; a test that changes the project works
on its own `copy_project`, which keeps symlinks and moves the project's own MLflow store along
with it (the store names its artifact folder absolutely).
"""

from __future__ import annotations

import copy
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from modelops.tracking import STORE_DIR, default_tracking_uri
from tests.support import copy_template, git, isolate, run_dvc, small_params, template_params

TRAINED_ROWS = 3000
"""600 test rows: the gates and the champion's bootstrap can tell a clearly worse model."""


def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder this test run's workers share: each xdist worker's base temp is a child of it."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """`run_dir/shared/name`, made by `build(path)` in whichever worker asks first.

    A build that raised leaves no mark: the next worker to ask builds again (and fails the same
    way, with its own error), so no test ever reads a half-built folder.
    """
    shared = run_dir(tmp_path_factory) / "shared"
    shared.mkdir(exist_ok=True)
    target, done = shared / name, shared / f"{name}.done"
    with FileLock(shared / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            build(target)
            done.touch()
    return target


def copy_project(source: Path, destination: Path) -> Path:
    """A copy of a built project at `destination`, whose MLflow store (if any) is its own.

    The store under `.mlflow/` records its artifact folder by absolute path; the copy's records
    name the copy's folder, so runs logged in the copy never write into the shared original.
    """
    shutil.copytree(source, destination, symlinks=True)
    database = destination / STORE_DIR / "mlflow.db"
    if database.is_file():
        _replace_in_database(database, f"{source.resolve()}/", f"{destination.resolve()}/")
    return destination


def own_store(root: Path) -> str:
    """The tracking URI of a project's own store (where `trained_project` logged its run)."""
    return default_tracking_uri(root)


def _replace_in_database(database: Path, old: str, new: str) -> None:
    """Replace `old` with `new` in every text column of every table of a SQLite file."""
    with sqlite3.connect(database) as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            columns = [
                row[1]
                for row in connection.execute(f'PRAGMA table_info("{table}")')
                if str(row[2]).upper().startswith(("TEXT", "VARCHAR", "CHAR"))
            ]
            for column in columns:
                connection.execute(
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                    f'WHERE instr("{column}", ?) > 0',
                    (old, new, old),
                )
    connection.close()


def trained_params() -> dict[str, Any]:
    """The shared trained project's params: the template's, on 3,000 synthetic rows.

    No Deepchecks HTML (tens of MB per gate); the model gate leaves out the two checks that
    flag noise on 600 test rows (tests/gates judges them), so the default model passes its gates
    and can be deployed.
    """
    params = copy.deepcopy(small_params(TRAINED_ROWS))
    params["gates"]["runner"]["html_reports"] = "never"
    params["gates"]["model"]["skip"] = ["weak_segments", "overfitting"]
    return params


def build_trained_project(root: Path) -> None:
    """The template after its first `dvc repro` on `trained_params()`, results committed.

    MLflow records the run in the project's own store (`.mlflow/`, git-ignored), which
    `copy_project` moves along.
    """
    _build_committed(root, trained_params())


def build_template_project(root: Path) -> None:
    """The template exactly as a user gets it (its params, its 20,000 rows) after its first
    `dvc repro`, results committed: what the tests of the default data read."""
    _build_committed(root, template_params())


def _build_committed(root: Path, params: dict[str, Any]) -> None:
    copy_template(root, params)
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch, store=own_store(root))
        run_dvc(root, "repro")
        git(root, "add", "--all")
        git(root, "commit", "--quiet", "--message", "First training run")

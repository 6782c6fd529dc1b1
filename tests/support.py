"""Helpers shared by the tests: the template's params, small variants, project copies."""

from __future__ import annotations

import contextlib
import copy
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from modelops.params import (
    BatchEnvironmentParams,
    Params,
    RealtimeEnvironmentParams,
    served_by_pods,
)
from tests.warm import SHIMS_VARIABLE

if TYPE_CHECKING:
    import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL_ROWS = 2000


def isolate(patch: pytest.MonkeyPatch, *, store: str) -> None:
    """Point MLflow at `store`, turn telemetry off, and give commits a fixed git identity.

    Every test runs so (an autouse fixture); so do the fixtures that build shared projects,
    which run before any test's own fixtures.
    """
    patch.setenv("MLFLOW_TRACKING_URI", store)
    patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    patch.setenv("MLFLOW_LOGGING_LEVEL", "WARNING")
    patch.setenv("DVC_NO_ANALYTICS", "1")
    # Commits made by tests never depend on the machine's git identity.
    for role in ("AUTHOR", "COMMITTER"):
        patch.setenv(f"GIT_{role}_NAME", "modelops tests")
        patch.setenv(f"GIT_{role}_EMAIL", "tests@modelops.invalid")


def template_params() -> dict[str, Any]:
    """The template's own params.yaml, parsed."""
    loaded: dict[str, Any] = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    return loaded


def small_params(rows: int = SMALL_ROWS) -> dict[str, Any]:
    """The template's params with a small synthetic dataset, for fast tests."""
    params = copy.deepcopy(template_params())
    params["prepare"]["synthetic"]["rows"] = rows
    params["evaluate"]["importance_rows"] = 200
    params["evaluate"]["importance_repeats"] = 2
    return params


def write_params(root: Path, params: dict[str, Any]) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def venv_bin() -> Path:
    """The bin directory of the environment running the tests (dvc, modelops)."""
    return Path(sys.executable).parent


def command_path(*first: Path) -> str:
    """PATH for a command a test starts: `first`, the warm `modelops` (tests/warm.py) when this
    test process runs one, then this environment's commands."""
    warm = os.environ.get(SHIMS_VARIABLE)
    folders = [*map(str, first), *([warm] if warm else []), str(venv_bin()), os.environ["PATH"]]
    return os.pathsep.join(folders)


def modelops_command() -> str:
    """The `modelops` a test starts as a process: warm (tests/warm.py) when this test process
    runs a server, else as installed."""
    warm = os.environ.get(SHIMS_VARIABLE)
    return str(Path(warm) / "modelops") if warm else str(venv_bin() / "modelops")


def declared_outputs(root: Path = REPO_ROOT) -> list[str]:
    """Every path `dvc.yaml` declares as an output, metric or plot."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    paths = []
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                paths.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return paths


def template_files() -> list[str]:
    """The template as a user gets it: tracked and new files, without what the pipeline made.

    Untracked `.gitignore` files are left out too: DVC writes them beside its outputs.
    """

    def listed(*args: str) -> list[str]:
        out = subprocess.run(
            ["git", "ls-files", "-z", *args], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout.decode()
        return [name for name in out.split("\0") if name]

    generated = [*declared_outputs(), "dvc.lock"]
    untracked = [
        n for n in listed("--others", "--exclude-standard") if Path(n).name != ".gitignore"
    ]
    return sorted(
        name
        for name in {*listed("--cached"), *untracked}
        if (REPO_ROOT / name).is_file()
        and not any(name == g or name.startswith(f"{g}/") for g in generated)
    )


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout


def copy_template(dest: Path, params: dict[str, Any]) -> Path:
    """Copy the template into `dest` as a fresh git repository with `params`, committed."""
    for name in template_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    write_params(dest, params)
    git(dest, "init", "--quiet", "--initial-branch=main")
    git(dest, "add", "--all")
    git(dest, "commit", "--quiet", "--message", "Start from the modelops template")
    return dest


def run_dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real `dvc` of this environment in `root`, with its commands on PATH (`modelops`
    warm: tests/warm.py)."""
    env = {**os.environ, "PATH": command_path()}
    done = subprocess.run(
        [str(venv_bin() / "dvc"), *args], cwd=root, capture_output=True, text=True, env=env
    )
    if check and done.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


DATA_FILE = "data/raw/customers.csv"


def csv_project(root: Path, params: dict[str, Any], *, rows: int, seed: int) -> Path:
    """A project reading the synthetic data from a CSV file in data/raw, with `params`."""
    from modelops.synth import generate_churn

    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    generate_churn(rows, seed=seed).to_csv(root / DATA_FILE, index=False)
    write_params(root, {**params, "prepare": {**params["prepare"], "source": DATA_FILE}})
    return root


def rewrite_csv(root: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Apply `change` to the project's CSV data file."""
    import pandas as pd

    path = root / DATA_FILE
    change(pd.read_csv(path)).to_csv(path, index=False)


def run_modelops(*commands: str) -> str:
    """Run `modelops` commands in-process in the working directory; return what they printed."""
    from modelops.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for command in commands:
            assert main(command.split()) == 0, f"modelops {command} failed"
    return printed.getvalue()


def tool_or_skip(*names: str, install: str) -> str:
    """The first of `names` on PATH; under CI a missing tool fails (.ci/run installs it), else
    the test is skipped saying how to install it."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail(f"{names[0]} is not installed: .ci/run installs it ({install})")
    pytest.skip(f"no {' or '.join(names)} on PATH ({install}); CI installs it")


def rendered_rules() -> dict[str, str]:
    """The plain rules file of every environment of the template, as `modelops render` writes
    it (a batch environment's hold its `-batch` group and its alerts)."""
    from modelops.deploy.render import monitoring_files
    from modelops.params import Params

    params = Params.model_validate(template_params())
    return {
        f"{env}.rules.yaml": monitoring_files(params.deploy, params.monitoring, env)[
            f"prometheus/{env}.rules.yaml"
        ]
        for env in sorted(params.deploy.environments)
    }


def recording_shims(
    folder: Path, log: Path, *, argv: tuple[str, ...], env: tuple[str, ...]
) -> Path:
    """A folder to put first on PATH: a wrapper per command that appends its command line (the
    `argv` names) or its command line and its whole environment (the `env` names) to `log`, then
    runs the real command. What a test asserts a token never reached."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*argv, *env):
        real = shutil.which(name, path=f"{venv_bin()}{os.pathsep}{os.environ['PATH']}")
        assert real, f"no {name} to wrap"
        record = f'printf "%s\\n" "{name} $*" >> "{log}"'
        if name in env:
            record += f'; env >> "{log}"'
        wrapper = folder / name
        wrapper.write_text(f'#!/bin/sh\n{record}\nexec "{real}" "$@"\n')
        wrapper.chmod(0o755)
    return folder


def pod_environment(
    params: Params, name: str
) -> RealtimeEnvironmentParams | BatchEnvironmentParams:
    """`deploy.environments[name]`, which model pods serve (an edge one fails the test)."""
    return served_by_pods(params.deploy.environments[name], name=name, what="this test")

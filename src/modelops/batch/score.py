"""`modelops score`: find the model to score with, then run the batch engine on it.

The engine is the model server's (`modelops-score` in serving/.venv, the image a batch CronJob
runs): it loads a model as the server does and checks its content hash, so a table scored here
gets the scores production would give. This module only decides which model: the one an
environment's release file names (fetched from the store under its content hash, and checked
against it), or a model directory (the workspace's `models/model` by default).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from modelops_contract.batch import DRIFT_FILE, RECORD_FILE, SHADOW_FILE

from modelops.batch import drift, shadow
from modelops.errors import BatchError, PublishError, ReleaseError
from modelops.io import bytes_writer, commit, json_bytes
from modelops.params import Params, batch_name, served_by_pods
from modelops.paths import ProjectPaths
from modelops.releases.files import load_releases, release_file
from modelops.releases.publish import fetched
from modelops.telemetry.profile import PROFILE_FILE, ReferenceProfile

ENGINE = "modelops-score"


@dataclass(frozen=True)
class ScoreRequest:
    """What to score with what; `env` (a release) or `model_dir`, not both."""

    input: str
    output: Path
    env: str | None = None
    model_dir: Path | None = None
    id_columns: tuple[str, ...] = ()
    """Copied to the output as its key; () : prepare.columns.id, else each row's position."""
    max_refused: int = 1000
    batch_rows: int = 100_000
    candidate_dir: Path | None = None
    """A candidate model that scores the same input for a shadow comparison (None: none)."""
    candidate_output: Path | None = None
    """Where the candidate's scores go (default: the output's name + `.candidate`)."""
    pushgateway: str | None = None
    """Push the run's figures there (with `env`: under the group its rendered rules read)."""

    @property
    def shadow_output(self) -> Path:
        return self.candidate_output or self.output.with_name(f"{self.output.name}.candidate")


@dataclass(frozen=True)
class Model:
    """A model directory to score with, the hash it must have ("" for no check), and why."""

    directory: Path
    expected_hash: str
    described: str
    version: str = ""
    """The release's version of it ("" for a model directory)."""


def chosen_model(request: ScoreRequest, params: Params, paths: ProjectPaths) -> Model:
    """The stable model of `request.env`'s release, else `request.model_dir` (or the
    workspace's)."""
    if request.env is None:
        directory = request.model_dir or paths.model_dir
        if not (directory / "MLmodel").is_file():
            raise BatchError(
                f"{paths.show(directory)}: no trained model; run `dvc repro`, or score with a "
                "released one (--env)"
            )
        return Model(directory, "", f"the model in {paths.show(directory)}")
    if request.env not in params.deploy.environments:
        known = ", ".join(params.deploy.environments)
        raise BatchError(
            f"no environment {request.env!r} in params.yaml (deploy.environments: {known})"
        )
    model = released_model(request.env, params, paths)
    if model is None:
        raise ReleaseError(
            f"{release_file(request.env)}: nothing is released to {request.env} yet; "
            f"`modelops release deploy --env {request.env}` releases the gated model"
        )
    return model


def released_model(env: str, params: Params, paths: ProjectPaths) -> Model | None:
    """The stable model `env`'s release file names, fetched from the store (its content hash
    checked) into .models/; None when nothing is released there yet."""
    stable = load_releases(paths.root, params)[env].stable
    if stable is None:
        return None
    try:
        directory = fetched(stable.model_uri, cache=paths.fetched_models_dir, root=paths.root)
    except PublishError as exc:
        raise BatchError(f"{env}'s model {stable.version}: {exc}") from None
    return Model(directory, stable.model_hash, f"{env}'s release {stable.version}", stable.version)


def engine_command(
    request: ScoreRequest, model: Model, *, bin_dir: Path, push: Sequence[str] = ()
) -> list[str]:
    """The batch engine's command line for `request` on `model` (`push`: its push flags)."""
    command = [str(bin_dir / ENGINE), "--model", str(model.directory)]
    if model.expected_hash:
        command += ["--model-hash", model.expected_hash]
    command += ["--input", request.input, "--output", str(request.output)]
    for column in request.id_columns:
        command += ["--id-column", column]
    return [
        *command,
        *("--max-refused", str(request.max_refused)),
        *("--batch-rows", str(request.batch_rows)),
        *push,
    ]


def push_flags(request: ScoreRequest, model: Model, params: Params) -> list[str]:
    """`modelops-score`'s flags to push the run (none without --pushgateway): with --env, under
    the job and namespace its rendered rules select on, as the scheduled runs push."""
    if request.pushgateway is None:
        return []
    flags = ["--pushgateway", request.pushgateway]
    if model.version:
        flags += ["--model-version", model.version]
    if request.env is not None:
        environment = params.deploy.environments[request.env]
        namespace = served_by_pods(environment, name=request.env, what="a push").namespace
        flags += ["--push-job", batch_name(params.deploy.name, request.env)]
        flags += ["--push-label", f"namespace={namespace}"]
    return flags


def score(request: ScoreRequest, params: Params, paths: ProjectPaths) -> int:
    """Score `request.input` with the chosen model; the engine's exit code (its output streams
    through: progress, then one summary line)."""
    model = chosen_model(request, params, paths)
    bin_dir = paths.root / "serving" / ".venv" / "bin"
    if not (bin_dir / ENGINE).is_file():
        raise BatchError(f"{bin_dir / ENGINE} is missing: `make install` builds serving/.venv")
    print(f"score: with {model.described}", flush=True)
    if not request.id_columns and params.prepare.columns.id:
        request = replace(request, id_columns=(params.prepare.columns.id,))
    push = push_flags(request, model, params)
    command = engine_command(request, model, bin_dir=bin_dir, push=push)
    code = subprocess.run(command, cwd=paths.root, check=False).returncode
    if code != 0:
        return code
    _judge_drift(paths.root / request.output, model, params)
    if request.candidate_dir is None:
        return 0
    return _shadow_score(request, params, paths, bin_dir=bin_dir)


def _shadow_score(
    request: ScoreRequest, params: Params, paths: ProjectPaths, *, bin_dir: Path
) -> int:
    """Score the input with the candidate too, then judge its scores against stable's."""
    assert request.candidate_dir is not None
    if not (request.candidate_dir / "MLmodel").is_file():
        raise BatchError(f"{paths.show(request.candidate_dir)}: --candidate is no model directory")
    candidate = Model(
        request.candidate_dir, "", f"the candidate in {paths.show(request.candidate_dir)}"
    )
    print(f"score: shadow: the same input with {candidate.described}", flush=True)
    shadowed = replace(request, output=request.shadow_output)
    command = engine_command(shadowed, candidate, bin_dir=bin_dir)
    code = subprocess.run(command, cwd=paths.root, check=False).returncode
    if code != 0:
        print(f"score: shadow: the candidate could not score the input (exit {code}): reject")
        return code
    stable_run = shadow.read_run(paths.root / request.output)
    candidate_run = shadow.read_run(paths.root / shadowed.output)
    verdict = shadow.compare(stable_run, candidate_run, params)
    min_rows = params.canary.min_requests
    for line in shadow.summary(verdict, min_rows=min_rows):
        print(line)
    document = shadow.document(verdict, stable_run, candidate_run, min_rows=min_rows)
    commit({paths.root / shadowed.output / SHADOW_FILE: bytes_writer(json_bytes(document))})
    return int(verdict.exit_code)


def _judge_drift(output: Path, model: Model, params: Params) -> None:
    """Judge the run's drift, print it, and add `_drift.json` to the output (written whole)."""
    record = json.loads((output / RECORD_FILE).read_text(encoding="utf-8"))
    raw = json.loads((model.directory / PROFILE_FILE).read_text(encoding="utf-8"))
    findings = drift.judge_run(record, ReferenceProfile.from_dict(raw), params)
    for line in drift.summary(findings):
        print(line)
    commit({output / DRIFT_FILE: bytes_writer(json_bytes(drift.document(findings)))})

"""Where the champion is: which model it is (what the `champion` stage records), and its files.

The champion is, in order:
1. `gates.champion.model_uri` when set;
2. what `gates.champion.environment` serves: the stable model of its release file on `ref`
   (`manifests/releases/<environment>.yaml`), taken from the model store, else from the DVC cache
   or remote at the commit that trained it, else rebuilt there;
3. when nothing is released there yet, the model that `ref`'s `dvc.lock` records, taken from the
   DVC cache or remote, else (when allowed) rebuilt from `ref`'s own code and params in a
   temporary git worktree.
Apart from the comparison (`champion`), so that the `champion` stage, which runs on every
`dvc repro`, reads git without importing pandas, scikit-learn or MLflow: DVC, MLflow and the
store are imported only when a model is fetched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelops import tracking
from modelops.errors import ModelopsError, PublishError, ReleaseError
from modelops.gitinfo import resolve_commit, show_file
from modelops.identity import content_hash
from modelops.lockfile import output_versions, stage_inputs
from modelops.params import ChampionGateParams
from modelops.paths import LOCK_FILE, MODEL_DIR, PREPARED_DIR
from modelops.releases.documents import from_document
from modelops.releases.files import release_file
from modelops.releases.publish import fetch
from modelops.releases.state import ModelVersion

_DVC_EXPERIMENT = "DVC_EXP_BASELINE_REV"
"""Set by DVC while it runs an experiment (in a queued one, the copy has no other branches)."""


@dataclass(frozen=True)
class Champion:
    """A champion model on disk and where it came from."""

    model_dir: Path
    context: dict[str, str]


@dataclass(frozen=True)
class NoChampion:
    """There is nothing to compare against, and why (the gate is skipped, not failed)."""

    reason: str
    context: dict[str, str]


def champion_identity(root: Path, params: ChampionGateParams) -> dict[str, str]:
    """Which model the champion is, without fetching it: what the `champion` stage records.

    It changes exactly when the champion does (a release on `ref`, or `ref`'s model moving), so
    DVC reruns the champion gate then, and only then.
    """
    if params.model_uri:
        return {"model_uri": params.model_uri}
    commit = resolve_commit(root, params.ref)
    if commit is None:
        return {"ref": params.ref, "champion": "none: the ref does not exist"}
    if params.environment is not None:
        released = _released(root, commit, params.environment, ref=params.ref)
        if released is not None:
            return {
                "environment": params.environment,
                "model_hash": released.model.model_hash,
                "ref": params.ref,
            }
    versions = output_versions(show_file(root, commit, LOCK_FILE))
    return {"ref": params.ref, "model_md5": versions.get(MODEL_DIR, "none: no trained model")}


def find_champion(
    root: Path, params: ChampionGateParams, *, workdir: Path
) -> Champion | NoChampion:
    """Locate the champion and materialise it under `workdir`.

    Raises:
        ModelopsError: a champion exists but cannot be obtained (the gate then fails closed).
    """
    destination = workdir / "model"
    if params.model_uri:
        tracking.download_model(params.model_uri, destination, root=root)
        return Champion(destination, {"champion": params.model_uri, "source": "model_uri"})

    commit = resolve_commit(root, params.ref)
    if commit is None:
        if os.environ.get(_DVC_EXPERIMENT):
            raise ModelopsError(
                f"'{params.ref}' is not in the temporary copy a queued DVC experiment runs in, so "
                "the champion cannot be found: run the experiment in the workspace (`dvc exp run` "
                "without --queue or --temp), or set gates.champion.model_uri"
            )
        return NoChampion(f"no '{params.ref}' branch yet: nothing to compare against", {})
    fallback = ""
    if params.environment is not None:
        released = _released(root, commit, params.environment, ref=params.ref)
        if released is not None:
            return _released_champion(root, released, params, destination, workdir=workdir)
        fallback = f"nothing released to {params.environment} yet, so "
    return _ref_champion(root, commit, params, destination, workdir=workdir, fallback=fallback)


def _released(root: Path, commit: str, environment: str, *, ref: str) -> _Released | None:
    """The stable model of `environment` as the release file on `ref` records it."""
    path = release_file(environment).as_posix()
    text = show_file(root, commit, path)
    if text is None:
        return None
    try:
        release = from_document(yaml.safe_load(text), source=f"{path} on {ref}")
    except (ReleaseError, yaml.YAMLError) as exc:
        raise ModelopsError(f"cannot tell what {environment} serves: {exc}") from None
    if release.stable is None:
        return None
    return _Released(environment, release.stable, where=f"{path} on {ref} ({commit[:12]})")


@dataclass(frozen=True)
class _Released:
    environment: str
    model: ModelVersion
    where: str


def _released_champion(
    root: Path, released: _Released, params: ChampionGateParams, destination: Path, *, workdir: Path
) -> Champion:
    """What production serves: from the store, else from DVC or rebuilt at its training commit."""
    model = released.model
    context = {
        "champion": f"{released.environment}'s stable model {model.version} ({released.where})",
        "commit": model.git_commit,
        "data_version": model.data_version,
        "model_version": model.version,
    }
    try:
        fetch(model.model_uri, destination, root=root)
        return Champion(destination, {**context, "source": f"the model store ({model.model_uri})"})
    except PublishError as exc:
        unreadable = str(exc)
    shutil.rmtree(destination, ignore_errors=True)
    lock = show_file(root, model.git_commit, LOCK_FILE)
    same_inputs = model.training_inputs is not None and stage_inputs(lock) == model.training_inputs
    unavailable = _from_dvc(root, model.git_commit, destination)
    if unavailable is None:
        if content_hash(destination) == model.model_hash or same_inputs:
            return Champion(destination, {**context, "source": f"DVC at {model.git_commit[:12]}"})
        shutil.rmtree(destination)
        unavailable = "the DVC copy at that commit is another model"
    if not (params.reproduce and same_inputs):
        raise ModelopsError(
            f"the champion, {context['champion']}, cannot be obtained: {unreadable}; at its "
            f"training commit {model.git_commit[:12]} it is {unavailable}. Give this job read "
            "access to deploy.store, `dvc push` on main, or set gates.champion.model_uri"
        )
    _rebuild(root, model.git_commit, destination, workdir=workdir)
    source = f"rebuilt at {model.git_commit[:12]} from the inputs it was trained on"
    return Champion(destination, {**context, "source": source})


def _ref_champion(
    root: Path,
    commit: str,
    params: ChampionGateParams,
    destination: Path,
    *,
    workdir: Path,
    fallback: str,
) -> Champion | NoChampion:
    """The model `ref`'s dvc.lock records: from DVC, else rebuilt in a worktree."""
    versions = output_versions(show_file(root, commit, LOCK_FILE))
    context = {
        "champion": f"{fallback}{MODEL_DIR} at {params.ref} ({commit[:12]})",
        "commit": commit,
        "data_version": versions.get(PREPARED_DIR, "unknown"),
        "model_version": versions.get(MODEL_DIR, "unknown"),
    }
    if MODEL_DIR not in versions:
        return NoChampion(
            f"{fallback}'{params.ref}' has no trained model yet (no {MODEL_DIR} in its dvc.lock): "
            "this will be the first",
            context,
        )
    unavailable = _from_dvc(root, commit, destination)
    if unavailable is None:
        return Champion(destination, {**context, "source": "DVC cache or remote"})
    if not params.reproduce:
        raise ModelopsError(
            f"the champion model of {params.ref} ({commit[:12]}) is {unavailable}; configure a "
            "DVC remote and `dvc push` on main, or set gates.champion.reproduce: true"
        )
    _rebuild(root, commit, destination, workdir=workdir)
    return Champion(destination, {**context, "source": f"rebuilt from {params.ref}: {unavailable}"})


def _from_dvc(root: Path, commit: str, destination: Path) -> str | None:
    """Copy the model `commit` records from the DVC cache or a remote; None, or why not."""
    from dvc.api import DVCFileSystem
    from dvc.exceptions import DvcException
    from dvc_data.index.index import DataIndexError

    try:
        filesystem = DVCFileSystem(str(root), rev=commit)
        filesystem.get(MODEL_DIR, str(destination), recursive=True)
    except (DvcException, DataIndexError, OSError) as exc:
        shutil.rmtree(destination, ignore_errors=True)
        return f"not in the DVC cache or a remote ({type(exc).__name__})"
    if not (destination / "MLmodel").is_file():
        shutil.rmtree(destination, ignore_errors=True)
        return f"incomplete in the DVC cache ({MODEL_DIR} at {commit[:12]} has no MLmodel)"
    return None


def _rebuild(root: Path, commit: str, destination: Path, *, workdir: Path) -> None:
    """Run `dvc repro train` on `commit` in a throwaway worktree, with that commit's code."""
    worktree = Path(tempfile.mkdtemp(prefix="champion-", dir=workdir))
    shutil.rmtree(worktree)
    subprocess.run(
        ["git", "worktree", "add", "--quiet", "--detach", str(worktree), commit],
        cwd=root,
        check=True,
        capture_output=True,
    )
    try:
        bin_dir = Path(sys.executable).parent
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(worktree / "src"),
        }
        done = subprocess.run(
            [str(bin_dir / "dvc"), "repro", "train"],
            cwd=worktree,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise ModelopsError(f"rebuilding the champion at {commit[:12]} failed: {tail}")
        shutil.copytree(worktree / MODEL_DIR, destination)
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(worktree)],
            cwd=root,
            capture_output=True,
        )

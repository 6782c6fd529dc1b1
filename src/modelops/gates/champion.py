"""Gate `champion`: is the candidate at least as good as the model it would replace?

The champion is, in order:
1. `gates.champion.model_uri` when set;
2. what `gates.champion.environment` serves: the stable model of its release file on `ref`
   (`manifests/releases/<environment>.yaml`), taken from the model store, else from the DVC cache
   or remote at the commit that trained it, else rebuilt there;
3. when nothing is released there yet, the model that `ref`'s `dvc.lock` records, taken from the
   DVC cache or remote, else (when allowed) rebuilt from `ref`'s own code and params in a
   temporary git worktree.
Both models are then scored on the candidate's test set with the same metric code, so the
comparison is fair. The gate's context says which champion it was and where it came from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml

from modelops import tracking
from modelops.data import Schema
from modelops.errors import ModelopsError, PublishError, ReleaseError
from modelops.gates.bootstrap import METRICS, paired_differences
from modelops.gates.evidence import MIN_POSITIVES
from modelops.gates.results import CheckRecord, GateResult, gate_status
from modelops.gitinfo import resolve_commit, show_file
from modelops.identity import content_hash
from modelops.lockfile import output_versions, stage_inputs
from modelops.params import ChampionGateParams, StatisticsParams
from modelops.paths import LOCK_FILE, MODEL_DIR, PREPARED_DIR
from modelops.releases.files import release_file
from modelops.releases.publish import fetch
from modelops.releases.state import ModelVersion, from_document
from modelops.statistics import Interval, decide_at_least

if TYPE_CHECKING:
    from modelops.model import Classifier

_TITLE = "Champion comparison"
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


def champion_gate(
    params: ChampionGateParams,
    *,
    root: Path,
    candidate: Classifier,
    test: pd.DataFrame,
    schema: Schema,
    threshold: float,
    statistics: StatisticsParams,
) -> GateResult:
    """Find the champion, score both models on the same test rows, and judge the candidate.

    `test` holds, besides this schema's columns, the test rows' other source columns: after a
    schema change the champion is scored on the columns it was trained with.
    """
    with tempfile.TemporaryDirectory(prefix="modelops-champion-") as workdir:
        try:
            found = find_champion(root, params, workdir=Path(workdir))
            if isinstance(found, NoChampion):
                return GateResult(
                    "champion", params.mode, "skipped", notes=(found.reason,), context=found.context
                )
            champion = tracking.load_model(found.model_dir)
            scores = [_positive_scores(model, test, schema) for model in (candidate, champion)]
        except Exception as exc:
            record = CheckRecord(
                "champion",
                _TITLE,
                "test",
                "the champion can be obtained and scored",
                " ".join(f"{type(exc).__name__}: {exc}".split())[:300],
                "error",
                "the comparison could not run, so the gate fails closed",
            )
            return GateResult("champion", params.mode, "fail", checks=(record,))
    truth = (test[schema.label] == schema.positive_label).to_numpy(dtype=np.float64)
    metrics: list[str] = [*params.max_drop, *params.max_rise]
    deltas = paired_differences(
        truth,
        scores[0],
        scores[1],
        metrics,
        threshold=threshold,
        resamples=statistics.bootstrap_resamples,
        confidence=statistics.confidence,
        seed=statistics.seed,
    )
    observed = {
        metric: (
            _metric(metric, truth, scores[0], threshold),
            _metric(metric, truth, scores[1], threshold),
        )
        for metric in metrics
    }
    records = tuple(
        compare(
            deltas,
            observed,
            params,
            rows=len(truth),
            positives=int(truth.sum()),
            confidence=statistics.confidence,
        )
    )
    numbers = ", ".join(f"{metric} {observed[metric][1]:.4f}" for metric in metrics)
    context = {**found.context, "champion_metrics": numbers}
    return GateResult(
        "champion", params.mode, gate_status(records), checks=records, context=context
    )


def compare(
    deltas: Mapping[str, Interval],
    observed: Mapping[str, tuple[float, float]],
    params: ChampionGateParams,
    *,
    rows: int,
    positives: int,
    confidence: float,
) -> list[CheckRecord]:
    """One record per metric: candidate minus champion with its paired bootstrap interval.

    A drop fails only when the whole interval is beyond the tolerance (`max_drop`, `max_rise`);
    an interval that reaches past it is inconclusive; each delta reads better, worse or within
    noise by whether its interval excludes zero.
    """
    records = []
    few = min(positives, rows - positives) < MIN_POSITIVES
    for metric, tolerance, lower_is_better in [
        *((m, t, False) for m, t in params.max_drop.items()),
        *((m, t, True) for m, t in params.max_rise.items()),
    ]:
        found = deltas[metric]
        gain = Interval(-found.estimate, -found.high, -found.low) if lower_is_better else found
        status = "inconclusive" if few else decide_at_least(gain, -tolerance)
        word = "better" if gain.low > 0 else "worse" if gain.high < 0 else "within noise"
        ours, theirs = observed[metric]
        side, key = ("higher", "max_rise") if lower_is_better else ("lower", "max_drop")
        reason = ""
        if status == "fail":
            reason = "the candidate is worse than the model it would replace"
        elif few:
            reason = (
                f"inconclusive: {min(positives, rows - positives)} test rows of the rarer class "
                f"are too few for a paired interval of {metric}; at least {MIN_POSITIVES} would "
                "give one"
            )
        elif status == "inconclusive":
            reason = (
                f"inconclusive: {rows} test rows cannot tell whether {metric} is {side} than the "
                f"champion's by more than {tolerance:g} ({found.text()}); more test rows would"
            )
        records.append(
            CheckRecord(
                metric,
                _TITLE,
                "test (both models)",
                f"{metric} not {side} than the champion's by more than {tolerance:g}",
                f"candidate {ours:.4f} vs champion {theirs:.4f}: {found.estimate:+.4f} "
                f"[{found.low:+.4f}, {found.high:+.4f}], {word} "
                f"({confidence:.0%} paired bootstrap on {rows} rows)",
                status,
                reason,
                tuned_by=f"gates.champion.{key}.{metric} = {tolerance:g}",
            )
        )
    return records


def _positive_scores(
    model: Classifier, test: pd.DataFrame, schema: Schema
) -> npt.NDArray[np.float64]:
    """A model's positive-class scores on the test rows, from the columns it was trained with.

    Raises:
        ModelopsError: the model needs a column that the test rows do not have at all.
    """
    needed = list(getattr(model, "feature_names_in_", schema.features))
    missing = [column for column in needed if column not in test.columns]
    if missing:
        raise ModelopsError(
            f"the champion needs columns that the data no longer has: {missing}, so the two "
            "models cannot be scored on the same rows and the candidate cannot be shown to be "
            "at least as good. Keep those columns in prepare.source (the candidate can leave "
            "them out with prepare.columns.drop): the champion is then scored on them"
        )
    classes = [str(c) for c in model.classes_]
    if schema.positive_label not in classes:
        raise ModelopsError(
            f"the champion predicts classes {classes}, not '{schema.positive_label}'"
        )
    proba = model.predict_proba(test.loc[:, needed])
    scores: npt.NDArray[np.float64] = np.asarray(
        proba[:, classes.index(schema.positive_label)], dtype=np.float64
    )
    return scores


def _metric(
    name: str, truth: npt.NDArray[np.float64], score: npt.NDArray[np.float64], threshold: float
) -> float:
    return float(
        METRICS[name](np.ones((1, len(truth)), dtype=np.float32), truth, score, threshold)[0]
    )


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

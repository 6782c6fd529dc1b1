"""The only module that talks to MLflow: the model directory format, and run tracking.

The tracking store is `MLFLOW_TRACKING_URI` when set, else a SQLite file under `.mlflow/` in the
project (git-ignored). Nothing here runs at import: callers pass the project root explicitly.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.errors import ModelopsError
from modelops.io import Nested, flatten
from modelops.metric_registry import RUN_NOTE

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.pipeline import Pipeline

STORE_DIR = ".mlflow"
MODEL_NAME = "model"
_INPUT_EXAMPLE_ROWS = 3
_BATCH = 100  # MLflow accepts at most 100 params or tags per log_batch call
_UNSAFE_KEY = re.compile(r"[^\w\-. /]")
_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
# What loading the model needs, pinned to the versions that trained it. Listing them saves MLflow
# from inferring them by loading the model in a subprocess (about 6 s per training run).
MODEL_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "scipy", "pandas")


@dataclass(frozen=True)
class RunRecord:
    """Where a pipeline run was recorded, to find it again in the MLflow UI."""

    tracking_uri: str
    experiment: str
    experiment_id: str
    run_id: str
    model_uri: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return dict(vars(self))


def tracking_uri(root: Path) -> str:
    """`MLFLOW_TRACKING_URI` if set, else the project's local SQLite store."""
    configured = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    return configured or default_tracking_uri(root)


def default_tracking_uri(root: Path) -> str:
    """The project's local SQLite store under `.mlflow/` (git-ignored)."""
    return f"sqlite:///{(root / STORE_DIR / 'mlflow.db').resolve()}"


def save_model(pipeline: Pipeline, path: Path, *, training_features: pd.DataFrame) -> None:
    """Save a fitted pipeline as an MLflow model directory at `path` (absent or empty).

    The pyfunc flavour returns class probabilities (`predict_proba`); the signature comes from
    the full training features, so a column with missing values is marked optional. The model is
    stored with skops, trusting only the types reviewed in `model.REVIEWED_SKOPS_TYPES`.

    Raises:
        ModelopsError: the pipeline contains types nobody reviewed for safe loading.
    """
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    from modelops.model import REVIEWED_SKOPS_TYPES

    untrusted = set(skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)))
    unreviewed = sorted(untrusted - REVIEWED_SKOPS_TYPES)
    if unreviewed:
        raise ModelopsError(
            f"the trained model contains types not reviewed for safe loading: {unreviewed}. "
            "Review them and add them to REVIEWED_SKOPS_TYPES in src/modelops/model.py"
        )
    complete = training_features.dropna()
    example = (complete if len(complete) else training_features).head(_INPUT_EXAMPLE_ROWS)
    signature = infer_signature(training_features, pipeline.predict_proba(example))
    # MLflow warns that it cannot find pip's version for conda.yaml: uv environments have no pip,
    # and we ship requirements.txt (below), not conda environments.
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    mlflow.sklearn.save_model(
        pipeline,
        str(path),
        serialization_format="skops",
        skops_trusted_types=sorted(untrusted),
        signature=signature,
        input_example=example,
        pyfunc_predict_fn="predict_proba",
        pip_requirements=[f"{name}=={version(name)}" for name in MODEL_REQUIREMENTS],
    )


def load_model(path: Path) -> Pipeline:
    """Load the scikit-learn pipeline from an MLflow model directory.

    A skops-serialized model (what `save_model` writes) is read as MLflow reads it, with the
    types its MLmodel trusts, without importing MLflow (a second or more per gate process);
    any other serialization goes through MLflow.
    """
    import yaml

    if not (path / "MLmodel").is_file():
        raise ModelopsError(f"{path}: no MLflow model here; run `dvc repro train` first")
    flavor = (yaml.safe_load((path / "MLmodel").read_text()) or {}).get("flavors", {})
    sklearn = flavor.get("sklearn") or {}
    if sklearn.get("serialization_format") == "skops" and sklearn.get("pickled_model"):
        import skops.io

        trusted = [str(name) for name in sklearn.get("skops_trusted_types") or []]
        loaded: Pipeline = skops.io.load(path / str(sklearn["pickled_model"]), trusted=trusted)
        return loaded
    import mlflow.sklearn

    model: Pipeline = mlflow.sklearn.load_model(str(path))
    return model


def download_model(uri: str, destination: Path, *, root: Path) -> None:
    """Copy a model to `destination`: a local MLflow model directory, or any MLflow model URI.

    Raises:
        ModelopsError: the URI names no model, or the tracking server cannot be reached.
    """
    local = Path(uri)
    if (local / "MLmodel").is_file():
        shutil.copytree(local, destination)
        return
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    try:
        mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(destination), tracking_uri=tracking_uri(root)
        )
    except (MlflowException, OSError) as exc:
        raise ModelopsError(f"cannot download the model {uri}: {exc}") from None
    if not (destination / "MLmodel").is_file():
        raise ModelopsError(f"{uri} is not an MLflow model (no MLmodel file)")


def log_pipeline_run(
    *,
    root: Path,
    experiment: str,
    run_name: str,
    params: Mapping[str, str],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    model_dir: Path,
    artifact_dirs: Mapping[str, Path],
    dataset: tuple[str, str],
) -> RunRecord:
    """Record one pipeline run: params, metrics, tags, the model directory itself, artifacts.

    The logged model is the very directory DVC tracks (not a re-serialisation), linked to the
    run, with the test metrics attached. `dataset` is (name, content hash) of the test data.

    Raises:
        ModelopsError: the tracking store cannot be reached or refuses the run.
    """
    from mlflow import MlflowClient
    from mlflow.entities import (
        Dataset,
        DatasetInput,
        InputTag,
        LoggedModelStatus,
        Metric,
        Param,
    )
    from mlflow.exceptions import MlflowException

    uri = tracking_uri(root)
    try:
        client = MlflowClient(tracking_uri=uri)
        experiment_id = _experiment_id(client, experiment, root=root, uri=uri)
        run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
        run_id = run.info.run_id
        model = client.create_logged_model(
            experiment_id, name=MODEL_NAME, source_run_id=run_id, model_type="sklearn"
        )
        client.log_model_artifacts(model.model_id, str(model_dir))
        client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
        now = int(time.time() * 1000)
        name, digest = dataset
        metric_rows = [
            Metric(
                _safe_key(k),
                v,
                now,
                0,
                model_id=model.model_id,
                dataset_name=name,
                dataset_digest=digest[:36],
            )
            for k, v in metrics.items()
        ]
        param_rows = [Param(_safe_key(k), v) for k, v in params.items()]
        client.log_batch(run_id, metrics=metric_rows)
        for start in range(0, len(param_rows), _BATCH):
            client.log_batch(run_id, params=param_rows[start : start + _BATCH])
        client.log_inputs(
            run_id,
            datasets=[
                DatasetInput(
                    Dataset(name=name, digest=digest[:36], source_type="local", source=name),
                    tags=[InputTag("mlflow.data.context", "evaluation")],
                )
            ],
        )
        for artifact_path, local_dir in artifact_dirs.items():
            client.log_artifacts(run_id, str(local_dir), artifact_path)
        client.set_tag(run_id, "mlflow.note.content", _note(metrics))
        client.set_terminated(run_id)
    except (MlflowException, OSError) as exc:
        raise ModelopsError(
            f"MLflow tracking at {uri} failed: {exc}. Check MLFLOW_TRACKING_URI (unset it to use "
            f"the local store in {STORE_DIR}/)"
        ) from None
    return RunRecord(
        tracking_uri=uri,
        experiment=experiment,
        experiment_id=experiment_id,
        run_id=run_id,
        model_uri=f"models:/{model.model_id}",
    )


def tag_run(run_id: str, tags: Mapping[str, str], *, root: Path) -> None:
    """Add tags to a recorded run (the gates' verdict, so the run and the pull request agree).

    Raises:
        ModelopsError: the tracking store cannot be reached or has no such run.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = tracking_uri(root)
    try:
        client = MlflowClient(tracking_uri=uri)
        for key, value in sorted(tags.items()):
            client.set_tag(run_id, key, value)
    except (MlflowException, OSError) as exc:
        raise ModelopsError(f"tagging MLflow run {run_id} at {uri} failed: {exc}") from None


def registry_configured() -> bool:
    """Whether a tracking server (or store) was chosen: the registry is used only then."""
    return bool(os.environ.get("MLFLOW_TRACKING_URI", "").strip())


def register_version(
    name: str, *, source: str, model_hash: str, run_id: str | None, root: Path
) -> str:
    """Register a published model under `name` once; returns its registry version.

    Idempotent by content hash (the version's `model_hash` tag): syncing the registry again
    never creates a second version of the same model. The version's source is the model's
    immutable store URI; it is linked to its MLflow run when the server has that run.

    Raises:
        ModelopsError: the registry refuses it or cannot be reached.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = tracking_uri(root)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        existing = client.search_model_versions(
            f"name = '{name}' and tags.model_hash = '{model_hash}'"
        )
        if existing:
            return str(min(int(version.version) for version in existing))
        try:
            client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != _NOT_FOUND:
                raise
            client.create_registered_model(name)
        version = client.create_model_version(
            name,
            source,
            run_id=run_id if run_id and _run_exists(client, run_id) else None,
            tags={"model_hash": model_hash, "modelops": "release"},
        )
    except (MlflowException, OSError) as exc:
        raise ModelopsError(f"registering {source} as '{name}' at {uri} failed: {exc}") from None
    return str(version.version)


def move_alias(name: str, alias: str, version: str | None, *, root: Path) -> bool:
    """Point `models:/<name>@<alias>` at `version`, or delete the alias when version is None.

    Returns whether the alias existed or was set (False: there was no alias to delete).

    Raises:
        ModelopsError: the registry refuses it or cannot be reached.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri(root), registry_uri=tracking_uri(root))
    try:
        if version is not None:
            client.set_registered_model_alias(name, alias, version)
            return True
        client.delete_registered_model_alias(name, alias)
    except MlflowException as exc:
        if version is None and exc.error_code == _NOT_FOUND:
            return False
        raise ModelopsError(f"moving alias {name}@{alias} failed: {exc}") from None
    except OSError as exc:
        raise ModelopsError(f"moving alias {name}@{alias} failed: {exc}") from None
    return True


def _run_exists(client: MlflowClient, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code == _NOT_FOUND:
            return False
        raise
    return True


def run_tags(
    *, git_commit: str, git_dirty: bool, data_hash: str, extra: Mapping[str, str]
) -> dict[str, str]:
    """Provenance tags every run carries (MLflow's own git tag included, so the UI shows it)."""
    return {
        "mlflow.source.git.commit": git_commit,
        "git_commit": git_commit,
        "git_dirty": str(git_dirty).lower(),
        "data_hash": data_hash,
        **extra,
    }


def flatten_params(sections: Nested[object]) -> dict[str, str]:
    """Nested params as dotted keys to strings, the form MLflow stores."""
    return {
        key: "null" if value is None else str(value) for key, value in flatten(sections).items()
    }


def _experiment_id(client: MlflowClient, name: str, *, root: Path, uri: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if uri == default_tracking_uri(root):
        # The default local store keeps artifacts beside the database, not in the working dir.
        location = (root / STORE_DIR / "artifacts").resolve().as_uri()
    return str(client.create_experiment(name, artifact_location=location))


def _safe_key(key: str) -> str:
    return _UNSAFE_KEY.sub("_", key)


def _note(metrics: Mapping[str, float]) -> str:
    shown = [f"{k} {metrics[k]:.4f}" for k in RUN_NOTE if k in metrics]
    return "Test set: " + ", ".join(shown)

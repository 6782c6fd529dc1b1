"""Stage `evaluate`: test-set metrics, plots and permutation feature importance, tracked in MLflow.

Computes everything, records the run in MLflow, and only then writes `metrics/model.json`,
`plots/*.png`, `reports/feature_importance.json` and `reports/mlflow_run.json` together: if
tracking fails, no output changes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from modelops import data, plots, tracking
from modelops.gitinfo import GitState, git_state
from modelops.io import Writer, bytes_writer, commit, json_bytes
from modelops.metrics import ClassificationMetrics, classification_metrics
from modelops.params import EvaluateParams, Params
from modelops.plots import Importance
from modelops.prepared import Prepared, load_prepared

IMPORTANCE_SCORING = "roc_auc"


@dataclass(frozen=True)
class RunContext:
    """What the MLflow run records besides the results: where, under which name, with what."""

    root: Path
    experiment: str
    run_name: str
    params: Mapping[str, str]
    git: GitState
    model_kind: str


@dataclass(frozen=True)
class EvaluateResult:
    """Test-set metrics and feature importance of the trained model, and its MLflow run."""

    metrics: ClassificationMetrics
    importances: tuple[Importance, ...]
    data_hash: str
    run: tracking.RunRecord


def run_context(params: Params, *, root: Path) -> RunContext:
    """The MLflow run of the project at `root`: its experiment, a name from the model kind and
    the commit, the params of the stages that made the model, and git's state."""
    git = git_state(root)
    return RunContext(
        root=root,
        experiment=params.tracking.experiment,
        run_name=f"{params.train.model.kind}-{git.commit[:8]}",
        params=tracking.flatten_params(
            params.model_dump(mode="json", include={"prepare", "train", "evaluate"})
        ),
        git=git,
        model_kind=params.train.model.kind,
    )


def run(
    params: Params,
    *,
    root: Path,
    data_dir: Path,
    model_dir: Path,
    metrics_file: Path,
    plots_dir: Path,
    importance_file: Path,
    run_file: Path,
) -> EvaluateResult:
    """Score the model on the test set, record the run (`run_context`), then write every output
    at once (`params.evaluate` says how to score)."""
    context = run_context(params, root=root)
    evaluation = params.evaluate
    prepared = load_prepared(data_dir)
    model = tracking.load_model(model_dir)
    schema = prepared.schema
    inputs = data.features(prepared.test, schema)
    positive_column = list(model.classes_).index(schema.positive_label)
    proba = model.predict_proba(inputs)[:, positive_column]
    is_positive = (prepared.test[schema.label] == schema.positive_label).to_numpy()
    classes = (schema.negative_label, schema.positive_label)
    metrics = classification_metrics(
        is_positive,
        proba,
        classes=classes,
        threshold=evaluation.threshold,
        train_positive_rate=prepared.meta.train_positive_rate,
    )
    importances = _importances(model, prepared, evaluation)
    pictures = {
        "confusion_matrix.png": plots.confusion_matrix_png(
            is_positive, proba >= evaluation.threshold, classes=classes
        ),
        "roc.png": plots.roc_png(is_positive, proba),
        "precision_recall.png": plots.precision_recall_png(
            is_positive, proba, threshold=evaluation.threshold
        ),
        "calibration.png": plots.calibration_png(
            is_positive, proba, bins=evaluation.calibration_bins
        ),
        "feature_importance.png": plots.importance_png(importances, scoring=IMPORTANCE_SCORING),
    }
    record = _track(
        context, model_dir=model_dir, metrics=metrics, pictures=pictures, prepared=prepared
    )
    outputs: dict[Path, Writer] = {
        metrics_file: bytes_writer(json_bytes(metrics.to_dict())),
        importance_file: bytes_writer(json_bytes(_importance_json(importances))),
        run_file: bytes_writer(json_bytes(record.to_dict())),
        **{plots_dir / name: bytes_writer(png) for name, png in pictures.items()},
    }
    commit(outputs)
    return EvaluateResult(
        metrics=metrics,
        importances=importances,
        data_hash=prepared.meta.data_hash,
        run=record,
    )


def _track(
    context: RunContext,
    *,
    model_dir: Path,
    metrics: ClassificationMetrics,
    pictures: Mapping[str, bytes],
    prepared: Prepared,
) -> tracking.RunRecord:
    """Log the run to MLflow, plots from a scratch directory (the outputs are not written yet)."""
    data_hash = prepared.meta.data_hash
    with tempfile.TemporaryDirectory(prefix="modelops-plots-") as scratch:
        for name, png in pictures.items():
            (Path(scratch) / name).write_bytes(png)
        return tracking.log_pipeline_run(
            root=context.root,
            experiment=context.experiment,
            run_name=context.run_name,
            params=context.params,
            metrics=metrics.flat(),
            tags=tracking.run_tags(
                git_commit=context.git.commit,
                git_dirty=context.git.dirty,
                data_hash=data_hash,
                extra={"model_kind": context.model_kind},
            ),
            model_dir=model_dir,
            artifact_dirs={"plots": Path(scratch)},
            dataset=("test", data_hash),
        )


def _importances(
    model: Pipeline, prepared: Prepared, params: EvaluateParams
) -> tuple[Importance, ...]:
    """Permutation importance of each input column on a fixed sample of the test set."""
    schema = prepared.schema
    test = prepared.test
    sample = (
        test.sample(n=params.importance_rows, random_state=0)
        if len(test) > params.importance_rows
        else test
    )
    result = permutation_importance(
        model,
        data.features(sample, schema),
        sample[schema.label],
        scoring=IMPORTANCE_SCORING,
        n_repeats=params.importance_repeats,
        random_state=0,
        n_jobs=1,
    )
    return tuple(
        Importance(feature=name, mean=round(float(mean), 6), std=round(float(std), 6))
        for name, mean, std in zip(
            schema.features, result.importances_mean, result.importances_std, strict=True
        )
    )


def _importance_json(importances: tuple[Importance, ...]) -> Mapping[str, object]:
    ranked = sorted(importances, key=lambda item: (-item.mean, item.feature))
    return {
        "method": "permutation",
        "scoring": IMPORTANCE_SCORING,
        "features": [vars(item) for item in ranked],
    }

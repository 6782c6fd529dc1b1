"""The stage commands end to end (in-process, no DVC): outputs, printouts and the MLflow run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from modelops.cli import main
from modelops.paths import ProjectPaths
from tests.support import small_params, write_params

PLOTS = {
    "calibration.png",
    "confusion_matrix.png",
    "feature_importance.png",
    "precision_recall.png",
    "roc.png",
}


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, mlflow_store: str
) -> Iterator[tuple[ProjectPaths, str]]:
    """A project on which prepare, train and evaluate ran once; with their combined output."""
    root = tmp_path_factory.mktemp("trained")
    write_params(root, small_params())
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
        patch.setenv("MLFLOW_LOGGING_LEVEL", "WARNING")
        from contextlib import redirect_stdout
        from io import StringIO

        printed = StringIO()
        with redirect_stdout(printed):
            for command in ("prepare", "train", "evaluate", "summary"):
                assert main([command]) == 0, f"modelops {command} failed"
        yield ProjectPaths(root=root), printed.getvalue()


def test_prepare_writes_the_split_data_and_a_data_summary(
    trained: tuple[ProjectPaths, str],
) -> None:
    paths, printed = trained
    assert sorted(p.name for p in paths.prepared_dir.iterdir()) == [
        "meta.json",
        "test.parquet",
        "train.parquet",
    ]
    summary = json.loads(paths.data_metrics.read_text())
    assert summary["rows"] == {"train": 1600, "test": 400}
    assert 0.15 < summary["positive_rate"]["train"] < 0.3
    assert "prepare: inferred categorical features: plan, contract" in printed


def test_train_saves_an_mlflow_model_that_predicts_probabilities(
    trained: tuple[ProjectPaths, str],
) -> None:
    paths, printed = trained
    model = mlflow.pyfunc.load_model(str(paths.model_dir))
    example = json.loads((paths.model_dir / "input_example.json").read_text())
    assert example["columns"][:2] == ["plan", "contract"], "inputs in schema order"
    assert "train: hist_gradient_boosting on 1600 rows x 14 features" in printed
    inputs = model.metadata.get_input_schema().input_names()
    assert len(inputs) == 14
    assert "customer_id" not in inputs, "identifiers are never features"
    assert "scikit-learn==1.7.2" in (paths.model_dir / "requirements.txt").read_text()


def test_evaluate_writes_metrics_plots_and_importances(trained: tuple[ProjectPaths, str]) -> None:
    paths, printed = trained
    metrics = json.loads(paths.model_metrics.read_text())
    assert metrics["roc_auc"] > 0.7
    assert set(metrics["per_class"]) == {"0", "1"}
    assert {p.name for p in paths.plots_dir.iterdir()} == PLOTS
    importances = json.loads(paths.importance_file.read_text())["features"]
    assert len(importances) == 14
    assert importances[0]["mean"] >= importances[-1]["mean"], "ranked, most important first"
    assert "evaluate: roc_auc" in printed


def test_the_model_carries_its_reference_profile_which_agrees_with_evaluate(
    trained: tuple[ProjectPaths, str],
) -> None:
    paths, _ = trained
    profile = json.loads((paths.model_dir / "profile.json").read_text())
    metrics = json.loads(paths.model_metrics.read_text())
    for name in ("roc_auc", "recall", "log_loss", "positive_rate"):
        assert profile["expected"][name] == pytest.approx(metrics[name], abs=1e-6), name
    assert profile["score"]["rows"] == 400
    assert profile["train_rows"] == 1600
    assert {"plan", "contract"} <= {f["name"] for f in profile["categorical"]}
    assert len(profile["numeric"]) + len(profile["categorical"]) == 14, "every feature"
    card = json.loads((paths.model_dir / "modelops.json").read_text())
    assert card["trained_at"].endswith("Z"), "freshness is known from the model itself"


def test_the_mlflow_run_has_params_metrics_tags_and_the_model(
    trained: tuple[ProjectPaths, str], mlflow_store: str
) -> None:
    paths, _ = trained
    record = json.loads(paths.mlflow_run_file.read_text())
    client = MlflowClient(tracking_uri=mlflow_store)
    run = client.get_run(record["run_id"])
    assert run.data.params["train.model.kind"] == "hist_gradient_boosting"
    assert run.data.params["prepare.synthetic.rows"] == "2000"
    assert run.data.metrics["roc_auc"] == json.loads(paths.model_metrics.read_text())["roc_auc"]
    meta = json.loads((paths.prepared_dir / "meta.json").read_text())
    assert run.data.tags["data_hash"] == meta["data_hash"]
    assert run.data.tags["git_commit"] == "unknown", "not a git repository here"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {Path(a).name for a in artifacts} == PLOTS

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
        info = mlflow.models.get_model_info(record["model_uri"])
    assert info.signature is not None
    assert info.saved_input_example_info is not None, "logged with its input example"
    logged = client.get_logged_model(record["model_uri"].removeprefix("models:/"))
    assert logged.source_run_id == run.info.run_id


def test_summary_says_where_everything_is(trained: tuple[ProjectPaths, str]) -> None:
    _, printed = trained
    for line in (
        "data     data/prepared/",
        "model    models/model/",
        "metrics  metrics/model.json",
    ):
        assert line in printed
    assert "mlflow   run" in printed
    assert "make mlflow-ui" in printed


def test_params_prints_the_file_with_defaults(
    project: ProjectPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["params"]) == 0
    printed = capsys.readouterr().out
    assert "params.yaml is valid" in printed
    assert "importance_repeats: 2" in printed


def test_params_schema_is_json(project: ProjectPaths, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["params", "--schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "Params"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_generate_writes_the_synthetic_data_to_a_file(project: ProjectPaths, suffix: str) -> None:
    out = project.root / f"churn{suffix}"
    assert main(["generate", "--rows", "300", "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_generate_refuses_an_unknown_extension(
    project: ProjectPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--out", "churn.xlsx"]) == 1
    assert "use a .csv or .parquet file name" in capsys.readouterr().err


def test_without_a_command_the_help_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "prepare" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kind", "strategy"),
    [("random_forest", "stratified"), ("logistic_regression", "time")],
)
def test_other_model_kinds_and_the_time_split_run_end_to_end(
    project: ProjectPaths, kind: str, strategy: str, capsys: pytest.CaptureFixture[str]
) -> None:
    params = small_params()
    params["train"]["model"] = {"kind": kind}
    params["prepare"]["split"]["strategy"] = strategy
    write_params(project.root, params)
    for command in ("prepare", "train", "evaluate"):
        assert main([command]) == 0, capsys.readouterr().err
    metrics = json.loads(project.model_metrics.read_text())
    assert metrics["roc_auc"] > 0.7, f"{kind} with a {strategy} split learns something"
    assert f"train: {kind}" in capsys.readouterr().out

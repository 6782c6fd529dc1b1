"""Real Deepchecks runs: the default data passes, and each defect fails the gate meant to catch it.

Every scenario starts from a small project on a CSV file in data/raw, breaks one thing, runs the
stage commands in-process and reads `reports/gates/<gate>.json` as the report does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops.cli import main
from tests.support import (
    DATA_FILE,
    csv_project,
    rewrite_csv,
    run_modelops,
    small_params,
    write_params,
)

ROWS = 3000


def _params(**changes: Any) -> dict[str, Any]:
    params = small_params(ROWS)
    params["prepare"]["source"] = DATA_FILE
    params["gates"]["runner"]["html_reports"] = "never"
    for dotted, value in changes.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return params


def _gate(root: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((root / "reports" / "gates" / f"{name}.json").read_text())
    return loaded


def _sizes(prepared: Any) -> Any:
    from modelops.gates.inputs import sizes

    return sizes(prepared.train, prepared.test, prepared.schema, sample_rows=3000)


def _failed(gate: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["check"]: c for c in gate["checks"] if c["status"] in ("fail", "error", "timeout")}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, mlflow_store: str) -> Path:
    """A project whose pipeline and gates ran on good data."""
    root = csv_project(tmp_path_factory.mktemp("gates-baseline"), _params(), rows=ROWS, seed=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
        run_modelops(
            "prepare",
            "train",
            "evaluate",
            "gate data drift",
            "gate model champion latency edge",
            "gates",
        )
    return root


@pytest.fixture
def project(baseline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    shutil.copytree(baseline, root)
    monkeypatch.chdir(root)
    return root


def test_on_good_data_every_gate_passes_and_the_verdict_is_safe(baseline: Path) -> None:
    document = json.loads((baseline / "reports" / "gates.json").read_text())
    statuses = {gate["name"]: gate["status"] for gate in document["gates"]}
    assert statuses == {
        "data": "pass",
        "drift": "pass",
        "model": "pass",
        "champion": "skipped",
        "latency": "skipped",
        "edge": "skipped",
    }
    assert document["verdict"]["status"] == "pass"
    champion = document["gates"][3]
    assert "no 'main' branch yet" in champion["notes"][0], "not a git repository: nothing to beat"


def test_a_feature_that_leaks_the_label_fails_the_drift_gate(project: Path) -> None:
    def leak(frame: pd.DataFrame) -> pd.DataFrame:
        # A column computed from the outcome: right for 99 rows in 100.
        noise = np.random.default_rng(0).random(len(frame)) < 0.01
        return frame.assign(
            refund_requested=np.where(noise, 1 - frame["churned"], frame["churned"])
        )

    rewrite_csv(project, leak)
    run_modelops("prepare", "gate data drift")
    drift = _gate(project, "drift")
    assert drift["status"] == "fail"
    leaked = _failed(drift)["label_correlation"]
    assert "refund_requested" in leaked["value"], leaked
    assert "leaks" in leaked["reason"]


def test_strong_drift_between_train_and_test_fails_the_drift_gate(project: Path) -> None:
    def drift_late_rows(frame: pd.DataFrame) -> pd.DataFrame:
        moments = pd.to_datetime(frame["snapshot_at"])
        # pandas takes quantiles of timestamps; its stubs allow numbers only
        late = moments >= moments.quantile(0.8)  # type: ignore[misc]
        frame.loc[late, "monthly_charges"] += 60
        frame.loc[late, "contract"] = "month-to-month"
        return frame

    rewrite_csv(project, drift_late_rows)
    write_params(project, _params(**{"prepare.split.strategy": "time"}))
    run_modelops("prepare", "gate data drift")
    drift = _gate(project, "drift")
    failed = _failed(drift)
    assert drift["status"] == "fail"
    assert {"feature_drift", "multivariate_drift"} <= set(failed), failed
    assert "monthly_charges" in failed["feature_drift"]["value"]


@pytest.mark.parametrize(
    ("defect", "check"),
    [
        ("nulls", "nulls"),
        ("duplicates", "duplicates"),
    ],
)
def test_a_burst_of_nulls_or_duplicated_rows_fails_the_data_gate(
    project: Path, defect: str, check: str
) -> None:
    def corrupt(frame: pd.DataFrame) -> pd.DataFrame:
        if defect == "nulls":
            frame.loc[frame.index[: len(frame) // 2], ["tenure_months", "monthly_charges"]] = None
            return frame
        return pd.concat([frame, frame.sample(frac=0.25, random_state=0)])

    rewrite_csv(project, corrupt)
    run_modelops("prepare", "gate data")
    data = _gate(project, "data")
    assert data["status"] == "fail"
    failed = _failed(data)[check]
    assert failed["reason"], "a failure says what it means"
    assert {c["dataset"] for c in data["checks"] if c["check"] == check} == {"train", "test"}


def test_a_model_that_predicts_a_constant_fails_the_model_gate(project: Path) -> None:
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    from modelops import tracking
    from modelops.data import features
    from modelops.io import staged_dir
    from modelops.prepared import load_prepared

    prepared = load_prepared(project / "data" / "prepared")
    inputs = features(prepared.train, prepared.schema)
    constant = Pipeline([("classifier", DummyClassifier(strategy="prior"))])
    constant.fit(inputs, prepared.train[prepared.schema.label])
    with staged_dir(project / "models" / "model") as staging:
        tracking.save_model(constant, staging, training_features=inputs)

    run_modelops("gate model champion")
    model = _gate(project, "model")
    assert model["status"] == "fail"
    assert {"performance", "simple_model"} <= set(_failed(model))
    values = [c["value"] for c in model["checks"] if c["check"] == "performance"]
    assert values[0].startswith("ROC AUC 0.500 ["), values
    assert values[1].startswith("recall 0.000 [0.000, "), values


def test_a_check_that_raises_inside_deepchecks_fails_its_gate(baseline: Path) -> None:
    from deepchecks.tabular import checks

    from modelops.gates.catalog import CheckSpec, Facts
    from modelops.gates.inputs import datasets
    from modelops.gates.runner import GateInputs, RunSettings, run_gate
    from modelops.params import DriftGateParams
    from modelops.prepared import load_prepared

    prepared = load_prepared(baseline / "data" / "prepared")
    train, test = datasets(prepared.train, prepared.test, prepared.schema)
    facts = Facts(id_column="customer_id", has_timestamp=True, time_split=False, positive_label="1")
    broken: CheckSpec[DriftGateParams] = CheckSpec(
        "feature_drift",
        "Feature drift",
        "meaning",
        "pair",
        # A column Deepchecks cannot find: it raises inside the check's run.
        lambda p, f, n: checks.FeatureDrift(
            columns=["no_such_column"]
        ).add_condition_drift_score_less_than(),
    )
    result = run_gate(
        "drift",
        [broken],
        DriftGateParams(),
        GateInputs(train=train, test=test, facts=facts, sizes=_sizes(prepared)),
        RunSettings(sample_rows=1000, timeout_seconds=60, html="never"),
    )
    assert result.status == "fail"
    (record,) = result.checks
    assert record.status == "error"
    assert "no_such_column" in record.value
    assert "fails closed" in record.reason


def test_a_check_that_runs_past_its_deadline_fails_its_gate(baseline: Path) -> None:
    from modelops.gates.catalog import DATA, Facts
    from modelops.gates.inputs import datasets
    from modelops.gates.runner import GateInputs, RunSettings, run_gate
    from modelops.params import DataGateParams
    from modelops.prepared import load_prepared

    prepared = load_prepared(baseline / "data" / "prepared")
    train, test = datasets(prepared.train, prepared.test, prepared.schema)
    facts = Facts(id_column="customer_id", has_timestamp=True, time_split=False, positive_label="1")
    outliers = [spec for spec in DATA if spec.key == "outliers"]
    result = run_gate(
        "data",
        outliers,
        DataGateParams(),
        GateInputs(train=train, test=test, facts=facts, sizes=_sizes(prepared)),
        RunSettings(sample_rows=3000, timeout_seconds=0.01, html="never"),
    )
    assert result.status == "fail"
    assert {record.status for record in result.checks} == {"timeout"}
    assert "did not finish within 0.01 s" in result.checks[0].reason


def test_a_gate_in_warn_mode_reports_its_failure_without_blocking(project: Path) -> None:
    write_params(project, _params(**{"gates.data.mode": "warn", "gates.data.max_null_ratio": 0.0}))
    run_modelops("gate data drift", "gates")
    document = json.loads((project / "reports" / "gates.json").read_text())
    assert document["verdict"]["status"] == "warn"
    assert document["verdict"]["warnings"] == ["data"]
    assert main(["verdict"]) == 0, "a warning does not fail the job"


def test_an_enforced_failure_makes_the_verdict_command_exit_non_zero(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_params(project, _params(**{"gates.data.max_null_ratio": 0.0}))
    run_modelops("gate data", "gates")  # the other gates' results are the baseline's
    assert main(["verdict"]) == 1
    assert "Blocked: enforced gate(s) failed: data" in capsys.readouterr().out


def test_a_gate_turned_off_is_recorded_as_off(project: Path) -> None:
    write_params(project, _params(**{"gates.drift.mode": "off"}))
    run_modelops("gate drift")
    drift = _gate(project, "drift")
    assert (drift["status"], drift["mode"], drift["checks"]) == ("off", "off", [])


def test_skipped_checks_and_inapplicable_checks_say_why(project: Path) -> None:
    write_params(project, _params(**{"gates.drift.skip": ["multivariate_drift"]}))
    run_modelops("gate drift")
    records = {c["check"]: c for c in _gate(project, "drift")["checks"]}
    assert records["multivariate_drift"]["status"] == "off"
    assert "skip" in records["multivariate_drift"]["reason"]
    assert records["date_leakage"]["status"] == "not_applicable"
    assert "random split" in records["date_leakage"]["reason"]


def test_html_reports_hold_what_did_not_pass_unless_every_check_is_asked_for(
    project: Path,
) -> None:
    # The data gate alone: the HTML report is the same code for every gate.
    html = project / "reports" / "deepchecks" / "data.html"
    write_params(project, _params(**{"gates.runner.html_reports": "always"}))
    run_modelops("gate data")
    assert html.stat().st_size > 100_000
    assert "mixed data types" in html.read_text().lower(), "every check"
    assert _gate(project, "data")["html"] == "data.html"
    assert not list(html.parent.glob(".*")), "no staging files left behind"

    # Given only the null check fails (and the one check 3,000 rows leave inconclusive is left
    # out), the report holds that check alone.
    html.unlink()
    quiet = {"gates.runner.html_reports": "failures", "gates.data.skip": ["conflicting_labels"]}
    write_params(project, _params(**{**quiet, "gates.data.max_null_ratio": 0.0}))
    run_modelops("gate data")
    text = html.read_text().lower()
    assert "percent of nulls" in text
    assert "mixed data types" not in text
    # When every check passes, no report is written.
    html.unlink()
    write_params(project, _params(**quiet))
    run_modelops("gate data")
    assert _gate(project, "data")["status"] == "pass"
    assert not html.exists()
    assert _gate(project, "data")["html"] is None


def test_the_verdict_and_each_gate_are_tags_of_the_mlflow_run(
    baseline: Path, mlflow_store: str
) -> None:
    from mlflow import MlflowClient

    # Other tests gate copies of this project, which share its run: collect it once more.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(baseline)
        run_modelops("gates")
    document = json.loads((baseline / "reports" / "gates.json").read_text())
    run_id = json.loads((baseline / "reports" / "mlflow_run.json").read_text())["run_id"]
    tags = MlflowClient(tracking_uri=mlflow_store).get_run(run_id).data.tags
    assert tags["gates.verdict"] == document["verdict"]["status"]
    for gate in document["gates"]:
        assert tags[f"gates.{gate['name']}"] == gate["status"]
    assert tags["gates.judged_model"] == document["judged"]["model_hash"]

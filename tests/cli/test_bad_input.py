"""Bad input fails fast with a message that says what and where, and loses nothing.

Each test starts from a project whose pipeline already ran on good data, breaks one thing, runs
the stage command and checks: exit code 1, the message names the file/column/key and the fix,
and every previous output is byte-for-byte what it was.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

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

OUTPUTS = ("data/prepared", "metrics", "models", "plots", "reports")
LEFT_OR_STAYED = {1: "left", 0: "stayed"}


def _params(**prepare: Any) -> dict[str, Any]:
    params = small_params()
    params["prepare"]["source"] = DATA_FILE
    params["prepare"].update(prepare)
    return params


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, mlflow_store: str) -> Path:
    """A project whose whole pipeline ran on a good CSV file."""
    root = csv_project(tmp_path_factory.mktemp("baseline"), _params(), rows=1500, seed=9)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
        run_modelops("prepare", "train", "evaluate")
    return root


@pytest.fixture
def broken(baseline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the baseline project, as the working directory, ready to be broken."""
    root = tmp_path / "project"
    shutil.copytree(baseline, root)
    monkeypatch.chdir(root)
    return root


def _snapshot(root: Path) -> dict[str, str]:
    files = (p for out in OUTPUTS for p in sorted((root / out).rglob("*")) if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _fails(root: Path, command: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run `modelops <command>`, expect exit 1 and untouched outputs; return the message."""
    before = _snapshot(root)
    assert main([command]) == 1, f"modelops {command} should fail"
    message = capsys.readouterr().err
    assert message.startswith("error: "), "one clear line, not a traceback"
    assert "Traceback" not in message
    assert _snapshot(root) == before, "previous outputs must be untouched"
    leftovers = [p.name for out in OUTPUTS for p in (root / out).parent.glob(".*tmp-*")]
    assert not leftovers, f"staging files left behind: {leftovers}"
    return message


@pytest.mark.parametrize("command", ["prepare", "train", "evaluate"])
def test_a_typo_in_params_is_refused_by_every_stage(
    broken: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (broken / "params.yaml").read_text().replace("test_fraction:", "test_fractoin:")
    (broken / "params.yaml").write_text(text)
    message = _fails(broken, command, capsys)
    assert "params.yaml" in message
    assert "prepare.split.test_fractoin: unknown key (did you mean 'test_fraction'?)" in message


def test_a_missing_label_column_is_named_with_the_columns_found(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rewrite_csv(broken, lambda frame: frame.drop(columns=["churned"]))
    message = _fails(broken, "prepare", capsys)
    assert DATA_FILE in message
    assert "column 'churned' (prepare.columns.label) is not in the data" in message
    assert "Columns found: customer_id" in message


def test_an_empty_data_file_is_refused(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (broken / DATA_FILE).write_text("")
    message = _fails(broken, "prepare", capsys)
    assert f"{broken / DATA_FILE}: the file is empty (0 bytes)" in message


def test_a_numeric_column_full_of_text_is_refused_with_the_fix(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_params(
        broken,
        _params(
            columns={
                "label": "churned",
                "categorical": ["plan"],
                "numeric": ["age", "tenure_months"],
            }
        ),
    )
    rewrite_csv(broken, lambda frame: frame.assign(age="unknown"))
    message = _fails(broken, "prepare", capsys)
    assert (
        "numeric column 'age' has 1500 of 1500 values that are not numbers ('unknown')" in message
    )
    assert "list 'age' under prepare.columns.categorical" in message


def test_a_label_with_a_single_class_is_refused(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rewrite_csv(broken, lambda frame: frame.assign(churned=0))
    message = _fails(broken, "prepare", capsys)
    assert "label column 'churned' has a single class ('0')" in message


def test_a_data_path_that_does_not_exist_is_refused(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_params(broken, _params(source="data/raw/customers_2025.csv"))
    message = _fails(broken, "prepare", capsys)
    assert "customers_2025.csv: file not found. Set prepare.source in params.yaml" in message


def test_a_timestamp_that_does_not_parse_is_named_with_an_example(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def garble(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[3, "snapshot_at"] = "31/02/2024 25:61"
        return frame

    rewrite_csv(broken, garble)
    message = _fails(broken, "prepare", capsys)
    assert "timestamp column 'snapshot_at' has 1 value(s) that do not parse" in message
    assert "'31/02/2024 25:61'" in message
    assert "row(s) 4" in message
    assert "ISO 8601" in message


def test_train_without_prepared_data_says_which_stage_to_run(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(broken / "data" / "prepared")
    message = _fails(broken, "train", capsys)
    assert "no prepared data; run `dvc repro prepare` first" in message


def test_an_unreachable_tracking_server_fails_evaluate_clearly(
    broken: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A URI scheme MLflow has no store for fails at once, without network retries.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://tracking")
    message = _fails(broken, "evaluate", capsys)
    assert "MLflow tracking at nosuchscheme://tracking failed" in message
    assert "MLFLOW_TRACKING_URI" in message


def test_a_new_source_with_four_problems_gets_one_error_listing_all_four(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given params written for another export of the data: three names are off and the
    # positive class is not a value; when prepared; then one error names all four and the fix.
    columns = {"label": "churn", "positive_label": "yes", "id": "cust_id", "timestamp": "snapshot"}
    write_params(broken, _params(columns=columns))
    message = _fails(broken, "prepare", capsys)
    assert message.startswith(f"error: {DATA_FILE}: 4 problems; fix them all, then run again:")
    for key, found in (("label", "churned"), ("id", "customer_id"), ("timestamp", "snapshot_at")):
        assert f"(prepare.columns.{key}) is not in the data. Did you mean '{found}'?" in message
    assert "positive_label 'yes' is not a value of 'churned' (the closest match" in message
    assert "its values are 0, 1" in message
    assert message.count("Columns found: customer_id, snapshot_at, plan") == 1


def test_bad_values_in_several_columns_are_reported_together(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_params(
        broken,
        _params(
            columns={
                "label": "churned",
                "timestamp": "snapshot_at",
                "categorical": ["plan"],
                "numeric": ["age", "tenure_months"],
            }
        ),
    )

    def garble(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({"age": object, "churned": object})
        frame.loc[3, "snapshot_at"] = "31/02/2024 25:61"
        frame.loc[5, "age"] = "forty"
        frame.loc[7, "churned"] = None
        return frame

    rewrite_csv(broken, garble)
    message = _fails(broken, "prepare", capsys)
    assert "3 problems" in message, message
    assert "label column 'churned' has 1 missing value(s), e.g. at row(s) 8" in message
    assert "timestamp column 'snapshot_at' has 1 value(s) that do not parse" in message
    assert "numeric column 'age' has 1 of 1500 values that are not numbers ('forty')" in message


def test_a_wrong_delimiter_says_the_file_was_read_as_one_column(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = pd.read_csv(broken / DATA_FILE)
    frame.to_csv(broken / DATA_FILE, index=False, sep=";")
    write_params(broken, _params(csv={"delimiter": ","}))
    message = _fails(broken, "prepare", capsys)
    assert "read as one column named 'customer_id;snapshot_at;plan;" in message
    assert "(delimiter ',')" in message
    assert "it looks separated by ';' (17 columns): set prepare.csv.delimiter: ';'" in message


def test_a_yaml_boolean_positive_label_that_names_no_value_says_to_quote_it(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a label of 'left'/'stayed' and, unquoted, `positive_label: yes` (YAML: true).
    rewrite_csv(broken, lambda frame: frame.assign(churned=frame["churned"].map(LEFT_OR_STAYED)))
    text = (broken / "params.yaml").read_text()
    assert "positive_label: 1\n" in text
    (broken / "params.yaml").write_text(
        text.replace("positive_label: 1\n", "positive_label: yes\n")
    )
    message = _fails(broken, "prepare", capsys)
    assert "prepare.columns.positive_label is the boolean true" in message
    assert "no value of 'churned' reads as true; its values are left, stayed" in message
    assert 'e.g. positive_label: "left"' in message


def test_a_table_too_small_for_early_stopping_is_refused_before_training(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 30 rows and a validation fraction that leaves 1 validation row, scikit-learn would
    # fail inside fit with a traceback; train refuses first, naming the range that works.
    rewrite_csv(broken, lambda frame: frame.iloc[:30])
    assert main(["prepare"]) == 0
    params = _params()
    params["train"]["model"]["validation_fraction"] = 0.01
    write_params(broken, params)
    message = _fails(broken, "train", capsys)
    assert "train.model.validation_fraction 0.01 splits the 24 training rows" in message
    assert "set train.model.validation_fraction between 0.05 and 0.91" in message
    assert "Or set train.model.early_stopping: false" in message

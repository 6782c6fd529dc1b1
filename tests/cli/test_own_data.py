"""A first hour on your own data: the commands a new user runs, on tables shaped like theirs.

Each test writes a table and a params.yaml as a user would type it (YAML text, not a dumped
mapping: `positive_label: yes` must stay what YAML makes of it), runs the real commands in
process and checks what they print and write.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from modelops.paths import ProjectPaths
from modelops.stages import train
from modelops.synth import generate_churn
from tests.support import run_modelops


def _project(root: Path, monkeypatch: pytest.MonkeyPatch, params: str) -> ProjectPaths:
    """`root` as the working directory, with `params` written verbatim as params.yaml."""
    (root / "data" / "raw").mkdir(parents=True)
    (root / "params.yaml").write_text(params)
    monkeypatch.chdir(root)
    return ProjectPaths(root=root)


def _bank(rows: int, *, labels: tuple[object, object] = ("yes", "no")) -> pd.DataFrame:
    """A bank-marketing-like table: the churn data with a 'subscribed' label of `labels`."""
    frame = generate_churn(rows, seed=4).drop(columns=["customer_id", "snapshot_at"])
    positive, negative = labels
    subscribed = frame.pop("churned").map({1: positive, 0: negative})
    return frame.assign(subscribed=subscribed)


def _params(source: str, *, positive_label: str, extra: str = "") -> str:
    return (
        "prepare:\n"
        f"  source: {source}\n"
        f"{extra}"
        "  columns:\n"
        "    label: subscribed\n"
        f"    positive_label: {positive_label}\n"
        "train:\n"
        "  model:\n"
        "    kind: hist_gradient_boosting\n"
    )


def _meta(paths: ProjectPaths) -> dict[str, object]:
    meta: dict[str, object] = json.loads((paths.prepared_dir / "meta.json").read_text())
    return meta


@pytest.mark.parametrize(
    ("labels", "written", "positive"),
    [
        (("yes", "no"), "yes", "yes"),
        (("on", "off"), "on", "on"),
        (("on", "off"), "off", "off"),
    ],
    ids=["yes-no", "on-off", "off-is-positive"],
)
def test_a_yaml_boolean_positive_label_names_the_csv_label_as_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    labels: tuple[str, str],
    written: str,
    positive: str,
) -> None:
    # Given a CSV label of 'yes'/'no' (or 'on'/'off') and params.yaml saying, unquoted,
    # `positive_label: yes`, which YAML reads as true; when prepared; then 'yes' is positive.
    paths = _project(tmp_path, monkeypatch, _params("data/raw/bank.csv", positive_label=written))
    _bank(400, labels=labels).to_csv(paths.root / "data/raw/bank.csv", index=False)
    assert "positive_label: " + written in (paths.root / "params.yaml").read_text()
    printed = run_modelops("prepare")
    schema = _meta(paths)["schema"]
    assert isinstance(schema, dict)
    assert schema["positive_label"] == positive
    assert schema["negative_label"] == next(label for label in labels if label != positive)
    assert (
        f"prepare: positive class of 'subscribed': '{positive}', the value that "
        "prepare.columns.positive_label names (YAML read it as the boolean "
        f"{'false' if written == 'off' else 'true'})" in printed
    ), printed


def test_a_yaml_boolean_positive_label_names_a_parquet_boolean_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Parquet label of real booleans and `positive_label: yes`: True is positive.
    paths = _project(tmp_path, monkeypatch, _params("data/raw/bank.parquet", positive_label="yes"))
    frame = _bank(400, labels=(True, False))
    assert frame["subscribed"].dtype == bool
    frame.to_parquet(paths.root / "data/raw/bank.parquet", index=False)
    printed = run_modelops("prepare")
    assert "prepare: positive class of 'subscribed': 'True', the value that " in printed, (
        "says how it read the YAML boolean"
    )
    schema = _meta(paths)["schema"]
    assert isinstance(schema, dict)
    assert (schema["positive_label"], schema["negative_label"]) == ("True", "False")
    summary = json.loads(paths.data_metrics.read_text())
    rate = float((frame["subscribed"]).mean())
    assert summary["positive_rate"]["train"] == pytest.approx(rate, abs=0.02)


def test_a_semicolon_file_with_decimal_commas_prepares_with_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a European export (';' between fields, ',' as decimal mark) and only
    # `prepare.csv.decimal: ","` set: the delimiter is sniffed and the numbers are numbers.
    paths = _project(
        tmp_path,
        monkeypatch,
        _params("data/raw/bank.csv", positive_label='"yes"', extra='  csv:\n    decimal: ","\n'),
    )
    _bank(400).to_csv(paths.root / "data/raw/bank.csv", index=False, sep=";", decimal=",")
    printed = run_modelops("prepare")
    assert "prepare: read bank.csv as ';'-separated (sniffed from its first lines)" in printed
    schema = _meta(paths)["schema"]
    assert isinstance(schema, dict)
    assert "monthly_charges" in schema["numeric"], "decimal commas were read as numbers"
    train_rows = pd.read_parquet(paths.prepared_dir / "train.parquet")
    assert train_rows["monthly_charges"].dtype == "float64"


def test_decimal_commas_without_the_setting_are_flagged_not_silently_categorical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _project(tmp_path, monkeypatch, _params("data/raw/bank.csv", positive_label='"yes"'))
    _bank(400).to_csv(paths.root / "data/raw/bank.csv", index=False, sep=";", decimal=",")
    printed = run_modelops("prepare")
    (warning,) = [line for line in printed.splitlines() if "comma" in line]
    assert warning.startswith("prepare: warning: categorical 'age', 'tenure_months', ")
    assert "'monthly_charges'" in warning
    assert "hold(s) numbers written with a comma (age: '" in warning
    assert "set prepare.csv.decimal: ','" in printed


SMALL_DATA_PARAMS = _params("data/raw/bank.csv", positive_label="yes")


def test_a_30_row_table_trains_with_warnings_that_say_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 30 rows: 24 train, 3 of them early stopping's validation split, 21 left to fit,
    # fewer than two leaves of min_samples_leaf 20; when trained; then it warns and still trains.
    paths = _project(tmp_path, monkeypatch, SMALL_DATA_PARAMS)
    _bank(30).to_csv(paths.root / "data/raw/bank.csv", index=False)
    printed = run_modelops("prepare", "train")
    warnings = [line for line in printed.splitlines() if line.startswith("train: warning: ")]
    assert len(warnings) == 2, printed
    leaf, stopping = warnings
    assert "train.model.min_samples_leaf is 20, but the trees fit 21 rows" in leaf
    assert "the model predicts one probability for every row" in leaf
    assert leaf.endswith("Set train.model.min_samples_leaf: 2")
    assert "train.model.early_stopping judges the validation loss on 3 rows" in stopping
    assert "Set train.model.early_stopping: false" in stopping
    assert (paths.model_dir / "MLmodel").is_file(), "training still ran"

    # When the suggested values are set, the same table trains without a warning.
    text = SMALL_DATA_PARAMS + "    min_samples_leaf: 2\n    early_stopping: false\n"
    (paths.root / "params.yaml").write_text(text)
    assert "warning" not in run_modelops("train")


def test_a_300_row_table_warns_only_about_the_validation_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _project(tmp_path, monkeypatch, SMALL_DATA_PARAMS)
    _bank(300).to_csv(paths.root / "data/raw/bank.csv", index=False)
    run_modelops("prepare")
    from modelops.params import load_params

    params = load_params(paths.params_file)
    result = train.run(
        params.train,
        threshold=params.evaluate.threshold,
        data_dir=paths.prepared_dir,
        model_dir=paths.model_dir,
    )
    assert result.train_rows == 240
    assert len(result.warnings) == 1, "leaves of 20 fit; the validation split is what is small"
    (warning,) = result.warnings
    assert warning.startswith("train.model.early_stopping judges the validation loss on 24 rows")
    assert "train.model.validation_fraction: 0." in warning, "a fraction that holds 10 rows"

"""Batch scoring (`modelops_serving.batch`, `modelops-score`): real Parquet and CSV, the trained
model, the scores the pipeline itself gives, and bad input that never loses the last output.

In process for the engine's decisions; the command itself (serving/.venv) for its exit codes
and for a run stopped by SIGTERM halfway.
"""

from __future__ import annotations

import fcntl
import io
import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from modelops_contract.batch import REFUSED_FILE
from modelops_serving.artifact import content_hash, load_pipeline, read_artifact
from modelops_serving.batch import (
    BatchError,
    Job,
    Progress,
    place,
    run,
)

from tests.serving.conftest import SERVING_BIN

ID = "customer_id"


@pytest.fixture(scope="module")
def rows(served_project: Path) -> pd.DataFrame:
    """The trained project's test rows, with their label and timestamp: what a user scores."""
    return pd.read_parquet(served_project / "data" / "prepared" / "test.parquet")


def _job(model_dir: Path, source: Path | str, output: Path, **options: object) -> Job:
    return Job(model_dir=model_dir, input=str(source), output=output, **options)  # type: ignore[arg-type]


def _run(job: Job) -> dict[str, Any]:
    return run(job, progress=Progress(io.StringIO()))


def _expected(model_dir: Path, frame: pd.DataFrame) -> np.ndarray:
    """What the trained pipeline's own predict_proba gives for the positive class."""
    artifact = read_artifact(model_dir)
    pipeline = load_pipeline(artifact)
    inputs = frame[list(artifact.names)]
    positive = [str(c) for c in pipeline.classes_].index(artifact.positive_label)
    return pipeline.predict_proba(inputs)[:, positive]


def test_a_parquet_file_is_scored_exactly_as_the_pipeline_scores_it(
    model_dir: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    rows.to_parquet(tmp_path / "in.parquet")
    record = _run(
        _job(model_dir, tmp_path / "in.parquet", tmp_path / "out", id_columns=(ID,), batch_rows=97)
    )
    scored = pd.read_parquet(tmp_path / "out")
    assert scored.columns.tolist() == [ID, "score", "prediction", "model_hash", "run_id"]
    assert scored[ID].tolist() == rows[ID].tolist(), "every row, in input order"
    assert np.array_equal(scored["score"].to_numpy(), _expected(model_dir, rows)), "to the bit"
    profile = json.loads((model_dir / "profile.json").read_text())
    threshold = profile["score"]["threshold"]
    assert (scored["prediction"] == "1").tolist() == (scored["score"] >= threshold).tolist()
    assert set(scored["model_hash"]) == {content_hash(model_dir)}
    assert set(scored["run_id"]) == {record["run_id"]}
    assert record["rows"] == {"in": len(rows), "scored": len(rows), "refused": 0}
    assert record["input"]["format"] == "parquet"
    assert sum(record["score_bins"].values()) == len(rows)
    features = [f["name"] for f in (*profile["numeric"], *profile["categorical"])]
    assert sorted(record["bins"]) == sorted(features)
    for name, counts in record["bins"].items():
        assert sum(counts.values()) == len(rows), name
    assert set(record["bins"]["plan"]) >= {"__other__", "__unseen__", "__missing__"}
    written = json.loads((tmp_path / "out" / "_run.json").read_text())
    assert written["run_id"] == record["run_id"]


def test_csv_a_folder_and_a_partitioned_dataset_give_the_same_scores(
    model_dir: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    rows.to_csv(tmp_path / "in.csv", index=False)
    folder = tmp_path / "folder"
    folder.mkdir()
    half = len(rows) // 2
    rows.iloc[:half].to_parquet(folder / "a.parquet")
    rows.iloc[half:].to_parquet(folder / "b.parquet")
    (folder / "_SUCCESS").write_text("")  # what Spark leaves: skipped
    partitioned = tmp_path / "partitioned"
    for day, part in rows.assign(day=np.arange(len(rows)) % 3).groupby("day"):
        (partitioned / f"day={day}").mkdir(parents=True)
        part.drop(columns="day").to_parquet(partitioned / f"day={day}" / "part.parquet")
    expected = dict(zip(rows[ID], _expected(model_dir, rows), strict=True))
    for source in (tmp_path / "in.csv", folder, partitioned):
        output = tmp_path / f"out-{source.name}"
        _run(_job(model_dir, source, output, id_columns=(ID,)))
        scored = pd.read_parquet(output)
        assert len(scored) == len(rows), source
        pairs = zip(scored[ID], scored["score"], strict=True)
        assert all(expected[key] == score for key, score in pairs), source


def test_without_an_id_column_each_row_is_keyed_by_its_position(
    model_dir: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    rows.to_parquet(tmp_path / "in.parquet")
    _run(_job(model_dir, tmp_path / "in.parquet", tmp_path / "out", batch_rows=50))
    scored = pd.read_parquet(tmp_path / "out")
    assert scored["row"].tolist() == list(range(len(rows)))


def test_a_rerun_on_the_same_input_and_model_gives_the_same_scores(
    model_dir: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    rows.to_parquet(tmp_path / "in.parquet")
    first = _run(_job(model_dir, tmp_path / "in.parquet", tmp_path / "out", id_columns=(ID,)))
    before = pd.read_parquet(tmp_path / "out")
    second = _run(_job(model_dir, tmp_path / "in.parquet", tmp_path / "out", id_columns=(ID,)))
    after = pd.read_parquet(tmp_path / "out")
    assert before.drop(columns="run_id").equals(after.drop(columns="run_id"))
    assert first["input"]["fingerprint"] == second["input"]["fingerprint"]
    assert first["run_id"] != second["run_id"]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert leftovers == [".out.lock"], "no staging or replaced folder left behind"


def test_rows_the_model_cannot_take_are_refused_with_their_reason(
    model_dir: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    text = rows.astype({"age": object})
    text.loc[text.index[3], "age"] = "forty"
    text.loc[text.index[7], "age"] = "1e999"  # parses, but is not a finite number
    text.loc[text.index[9], "age"] = "NA"  # missing, as pandas read the training data
    text.to_csv(tmp_path / "in.csv", index=False)
    record = _run(_job(model_dir, tmp_path / "in.csv", tmp_path / "out", id_columns=(ID,)))
    assert record["rows"] == {"in": len(rows), "scored": len(rows) - 2, "refused": 2}
    refused = pd.read_parquet(tmp_path / "out" / REFUSED_FILE)
    assert refused[ID].tolist() == [rows[ID].iloc[3], rows[ID].iloc[7]]
    assert refused["reason"].iloc[0] == "'age' is not a number: 'forty'"
    assert "not a finite number" in refused["reason"].iloc[1]
    scored = pd.read_parquet(tmp_path / "out")
    assert len(scored) == len(rows) - 2, "the refused file is not read as scores"
    assert rows[ID].iloc[9] in set(scored[ID])


def test_over_max_refused_the_run_fails_naming_the_first_reasons_and_keeps_the_last_output(
    model_dir: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    rows.to_parquet(tmp_path / "good.parquet")
    _run(_job(model_dir, tmp_path / "good.parquet", tmp_path / "out", id_columns=(ID,)))
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    bad = rows.astype({"tenure_months": object})
    bad.loc[bad.index[:5], "tenure_months"] = "n/a months"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(BatchError, match=r"5 rows refused, over --max-refused 4.*'tenure_months'"):
        _run(
            _job(model_dir, tmp_path / "bad.csv", tmp_path / "out", id_columns=(ID,), max_refused=4)
        )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before
    assert len(pd.read_parquet(tmp_path / "out")) == len(rows)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing column", r"missing model input\(s\) 'plan'"),
        ("missing id", r"missing id column\(s\) 'account'"),
        ("wrong type", r"'age' is string, the model takes a number"),
        ("empty", r"has no rows; nothing to score"),
        ("unreadable", r"cannot be read"),
        ("not found", r"no such file or folder"),
        ("other files", r"not a CSV .* or Parquet .* file"),
    ],
)
def test_bad_input_fails_before_scoring_and_keeps_the_last_output(
    model_dir: Path, rows: pd.DataFrame, tmp_path: Path, case: str, message: str
) -> None:
    rows.to_parquet(tmp_path / "good.parquet")
    _run(_job(model_dir, tmp_path / "good.parquet", tmp_path / "out", id_columns=(ID,)))
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    source = tmp_path / "bad.parquet"
    keys: tuple[str, ...] = (ID,)
    if case == "missing column":
        rows.drop(columns="plan").to_parquet(source)
    elif case == "missing id":
        rows.to_parquet(source)
        keys = ("account",)
    elif case == "wrong type":
        rows.astype({"age": str}).to_parquet(source)
    elif case == "empty":
        rows.iloc[:0].to_parquet(source)
    elif case == "unreadable":
        source.write_bytes(b"PAR1 this is not parquet")
    elif case == "other files":
        source = tmp_path / "folder"
        source.mkdir()
        rows.to_parquet(source / "a.parquet")
        (source / "notes.txt").write_text("hello")
    else:
        source = tmp_path / "nowhere.parquet"
    with pytest.raises(BatchError, match=message):
        _run(_job(model_dir, source, tmp_path / "out", id_columns=keys))
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


def test_a_model_whose_hash_differs_from_the_release_is_refused(
    model_dir: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    rows.to_parquet(tmp_path / "in.parquet")
    tampered = Path(shutil.copytree(model_dir, tmp_path / "model"))
    published = content_hash(model_dir)
    (tampered / "extra.txt").write_text("not in the published version")
    with pytest.raises(BatchError, match=re.escape(f"does not match the expected {published}")):
        _run(_job(tampered, tmp_path / "in.parquet", tmp_path / "out", expected_hash=published))
    assert not (tmp_path / "out").exists()
    record = _run(
        _job(model_dir, tmp_path / "in.parquet", tmp_path / "out", expected_hash=published)
    )
    assert record["model"]["hash_checked"] is True


def test_a_second_run_on_the_same_output_fails_at_once(
    model_dir: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    rows.to_parquet(tmp_path / "in.parquet")
    with (tmp_path / ".out.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242 since 2026-12-06T00:00:00Z")
        held.flush()
        with pytest.raises(BatchError, match=r"being written by another run \(pid 4242"):
            _run(_job(model_dir, tmp_path / "in.parquet", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_a_previous_output_is_never_replaced(
    model_dir: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    rows.to_parquet(tmp_path / "in.parquet")
    data = tmp_path / "data"
    data.mkdir()
    (data / "precious.csv").write_text("a,b\n1,2\n")
    with pytest.raises(BatchError, match=r"holds files but no _run.json: it is not a batch run"):
        _run(_job(model_dir, tmp_path / "in.parquet", data))
    assert [p.name for p in data.iterdir()] == ["precious.csv"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(BatchError, match="is a file"):
        _run(_job(model_dir, tmp_path / "in.parquet", tmp_path / "file"))
    (tmp_path / "empty").mkdir()
    _run(_job(model_dir, tmp_path / "in.parquet", tmp_path / "empty"))
    assert (tmp_path / "empty" / "_run.json").is_file()


def test_placing_swaps_the_whole_folder_at_once(tmp_path: Path) -> None:
    output, staging = tmp_path / "out", tmp_path / ".out.staging-1"
    output.mkdir()
    (output / "old.parquet").write_text("old")
    staging.mkdir()
    (staging / "new.parquet").write_text("new")
    place(staging, output)
    assert [p.name for p in output.iterdir()] == ["new.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_command_stopped_halfway_exits_130_and_leaves_the_last_output(
    model_dir: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    many = pd.concat([rows] * 100, ignore_index=True)
    pq.write_table(pa.Table.from_pandas(many, preserve_index=False), tmp_path / "in.parquet")
    rows.to_parquet(tmp_path / "good.parquet")
    command = [str(SERVING_BIN / "modelops-score"), "--model", str(model_dir), "--output", "out"]
    first = subprocess.run(
        [*command, "--input", "good.parquet"], cwd=tmp_path, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    assert "rows scored, 0 refused" in first.stdout
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    process = subprocess.Popen(
        [*command, "--input", "in.parquet", "--batch-rows", "500"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".out.staging-*/part-00000.parquet")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no part file within 60 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "interrupted; out is as it was" in err
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before
    assert not list(tmp_path.glob(".out.staging-*")), "no partial files"


def test_the_command_reports_a_refused_run_in_one_line_and_exits_1(
    model_dir: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            str(SERVING_BIN / "modelops-score"),
            "--model",
            str(model_dir),
            "--input",
            "missing.csv",
            "--output",
            "out",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip().startswith("score: missing.csv: no such file or folder")
    assert "Traceback" not in done.stderr

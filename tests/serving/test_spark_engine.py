"""`modelops-score --engine spark` (`modelops_serving.spark_engine`) on a real Spark, `local[2]`.

The Spark engine must give the local engine's output: the same scores to the last bit, the same
refused rows, keys, bin counts and layout. A Spark start costs about ten seconds of a core, so
Spark starts once: one process of the serving environment runs the command's `main` on a
Parquet folder and then on a CSV folder (the second session reuses the first's JVM). Bad input is
refused before Spark starts, by the command itself; the cutting of the input into tasks and the
workers' own model check run here in process, with no Spark at all.

pyspark is installed by `make install-spark` when serving/.venv lacks it; Java comes from the
machine (.ci/run installs Debian's default-jre-headless): under CI its absence fails the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from modelops_serving.artifact import Column, content_hash, read_artifact
from modelops_serving.batch import Job
from modelops_serving.spark_engine import (
    DEFAULT_MASTER,
    SUBMITTED,
    Plan,
    _score_units,
    _unit_batches,
    _units,
    chosen_master,
)
from modelops_serving.tables import open_input

from tests.serving.conftest import SERVING_BIN
from tests.support import REPO_ROOT, tool_or_skip

ROWS = 24_000
"""Over MIN_UNIT_ROWS twice, so that `local[2]` cuts the Parquet input into several tasks."""
RUN_OWN = ("run_id", "engine", "started_at", "finished_at", "output", "spark")
"""What a run record holds of the run itself, not of the rows; its timings too."""
TIMINGS = ("seconds", "rows_per_second")


@pytest.fixture(scope="session")
def spark_installed() -> None:
    """pyspark in serving/.venv (installed here if missing) and Java on this machine."""
    tool_or_skip("java", install="Java 17+: apt-get install default-jre-headless")
    probe = subprocess.run([SERVING_BIN / "python", "-c", "import pyspark"], capture_output=True)
    if probe.returncode:
        done = subprocess.run(
            ["make", "install-spark"], cwd=REPO_ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, f"make install-spark failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def rows(served_project: Path) -> pd.DataFrame:
    """The trained project's prepared rows, repeated to ROWS, each with its own id."""
    prepared = served_project / "data" / "prepared"
    frame = pd.concat([pd.read_parquet(prepared / f"{s}.parquet") for s in ("train", "test")])
    frame = pd.concat([frame] * (ROWS // len(frame) + 1)).iloc[:ROWS].reset_index(drop=True)
    return frame.assign(customer_id=[f"c{i:06d}" for i in range(len(frame))])


@pytest.fixture(scope="module")
def inputs(rows: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A Parquet folder (a file of several row groups and a smaller one; two infinite numbers,
    which refuse their rows, and a missing one, which does not) and a folder of two CSV files
    (a word where a number belongs)."""
    root = tmp_path_factory.mktemp("spark-inputs")
    parquet = rows.copy()
    parquet.loc[[7, 17_000], "age"] = [np.inf, -np.inf]
    parquet.loc[9, "tenure_months"] = np.nan
    (root / "parquet").mkdir()
    split = 16_000
    parquet.iloc[:split].to_parquet(root / "parquet" / "a.parquet", row_group_size=5_000)
    parquet.iloc[split:].to_parquet(root / "parquet" / "b.parquet")
    (root / "parquet" / "_SUCCESS").write_text("")  # what Spark leaves: not an input
    csv = rows.iloc[:3_000].astype({"age": object})
    csv.loc[1_700, "age"] = "forty"
    (root / "csv").mkdir()
    csv.iloc[:1_500].to_csv(root / "csv" / "a.csv", index=False)
    csv.iloc[1_500:].to_csv(root / "csv" / "b.csv", index=False)
    return {"parquet": root / "parquet", "csv": root / "csv"}


def _score_in_one_process(model_dir: Path, outputs: dict[Path, Path], *args: str) -> str:
    """Run `modelops-score`'s main on each input in turn in one serving process; its stdout."""
    calls = [
        ["--model", str(model_dir), "--input", str(source), "--output", str(output), *args]
        for source, output in outputs.items()
    ]
    script = textwrap.dedent(
        f"""
        import sys
        from modelops_serving.score_cli import main
        sys.exit(max(main(argv) for argv in {calls!r}))
        """
    )
    done = subprocess.run(
        [SERVING_BIN / "python", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env={key: value for key, value in os.environ.items() if key != "SPARK_REMOTE"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def scored(
    spark_installed: None, model_dir: Path, inputs: dict[str, Path], tmp_path_factory
) -> dict[str, dict[str, Path]]:
    """Each input scored by both engines; the Spark output replaces an older one."""
    root = tmp_path_factory.mktemp("spark-outputs")
    outputs = {
        engine: {kind: root / f"{kind}-{engine}" for kind in inputs}
        for engine in ("local", "spark")
    }
    for old in outputs["spark"].values():  # a previous run's output: replaced whole
        old.mkdir()
        (old / "part-00000.parquet").write_text("the previous run's")
        (old / "_run.json").write_text("{}")
    local = {inputs[kind]: path for kind, path in outputs["local"].items()}
    spark = {inputs[kind]: path for kind, path in outputs["spark"].items()}
    _score_in_one_process(model_dir, local)
    _score_in_one_process(model_dir, spark, "--engine", "spark", "--master", "local[2]")
    return outputs


def _read(output: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Scores (as any reader of the folder sees them), refused rows and the run record."""
    scores = ds.dataset(output, format="parquet").to_table().to_pandas()
    refused = pq.read_table(output / "_refused.parquet").to_pandas()
    return scores, refused, json.loads((output / "_run.json").read_text())


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_spark_scores_every_row_as_the_local_engine_does_to_the_bit(
    scored: dict[str, dict[str, Path]], kind: str
) -> None:
    local, local_refused, local_record = _read(scored["local"][kind])
    spark, spark_refused, spark_record = _read(scored["spark"][kind])
    # Joined on the key (`row`, the input position: no --id-column was given).
    joined = local.merge(spark, on="row", suffixes=("_local", "_spark"), validate="1:1")
    assert len(joined) == len(local) == len(spark)
    assert np.array_equal(joined["score_local"], joined["score_spark"]), "bit for bit"
    assert joined["prediction_local"].equals(joined["prediction_spark"])
    assert joined["model_hash_local"].equals(joined["model_hash_spark"])
    assert spark["row"].tolist() == local["row"].tolist(), "and in input order"
    assert spark_refused.equals(local_refused), "the same rows refused, for the same reasons"
    assert len(spark_refused) == (2 if kind == "parquet" else 1)
    # The same record, counts in every bin included: only the run's own facts differ.
    same = {k: v for k, v in local_record.items() if k not in (*RUN_OWN, *TIMINGS)}
    assert same == {key: spark_record[key] for key in same}
    assert (local_record["engine"], spark_record["engine"]) == ("local", "spark")
    assert spark_record["spark"]["master"] == "local[2]"


def test_the_spark_output_has_the_local_layout_and_replaced_the_old_one(
    scored: dict[str, dict[str, Path]],
) -> None:
    output = scored["spark"]["parquet"]
    record = json.loads((output / "_run.json").read_text())
    assert record["spark"]["tasks"] == 3, "a file in two slices of its row groups, and one"
    parts = [f"part-{n:05d}.parquet" for n in range(record["spark"]["tasks"])]
    assert sorted(p.name for p in output.iterdir()) == ["_refused.parquet", "_run.json", *parts]
    assert [p.name for p in output.parent.iterdir() if ".staging-" in p.name] == []
    assert [p.name for p in output.parent.iterdir() if ".replaced-" in p.name] == []
    scores = pd.read_parquet(output)  # pandas reads the folder as one table
    assert set(scores["run_id"]) == {record["run_id"]}


def _cli(
    model_dir: Path, source: Path, output: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    command = [
        str(SERVING_BIN / "modelops-score"),
        *("--model", str(model_dir), "--input", str(source), "--output", str(output)),
        *("--engine", "spark", "--master", "local[2]", *args),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _listing(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    "bad", ["missing column", "wrong type", "empty", "unreadable", "model hash mismatch"]
)
def test_bad_input_is_refused_before_spark_starts_and_the_output_stays(
    spark_installed: None,
    model_dir: Path,
    rows: pd.DataFrame,
    tmp_path: Path,
    bad: str,
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "part-00000.parquet").write_bytes(b"the previous run's scores")
    (output / "_run.json").write_text("{}")
    before = _listing(output)
    source, args = tmp_path / "in.parquet", []
    some = rows.iloc[:100]
    if bad == "missing column":
        some.drop(columns="age").to_parquet(source)
    elif bad == "wrong type":
        some.astype({"tenure_months": str}).to_parquet(source)
    elif bad == "empty":
        some.iloc[:0].to_parquet(source)
    elif bad == "unreadable":
        source.write_bytes(b"PAR1 this is not Parquet")
    else:
        some.to_parquet(source)
        args = ["--model-hash", "0" * 64]
    done = _cli(model_dir, source, output, *args)
    expected = {
        "missing column": "missing model input(s) 'age'",
        "wrong type": "'tenure_months' is string, the model takes a number",
        "empty": "the input has no rows",
        "unreadable": "cannot be read",
        "model hash mismatch": f"content hash {content_hash(model_dir)} does not match",
    }[bad]
    assert done.returncode == 1, done.stderr
    assert expected in done.stderr
    assert "log4j" not in done.stderr, "refused before a Spark session was started"
    assert _listing(output) == before, "the previous output is as it was"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.staging")] == []


def test_units_cover_every_row_once_in_order_across_row_groups(tmp_path: Path, model_dir: Path):
    # Given a file of 7 row groups of 3,000 rows and one of 500 rows, cut for 2 cores.
    table = pa.table({"x": np.arange(21_500, dtype=np.float64)})
    (tmp_path / "in").mkdir()
    pq.write_table(table.slice(0, 21_000), tmp_path / "in" / "a.parquet", row_group_size=3_000)
    pq.write_table(table.slice(21_000), tmp_path / "in" / "b.parquet")
    source = open_input(str(tmp_path / "in"), [Column("x", "number")], keys=[])
    job = Job(model_dir=model_dir, input=str(tmp_path / "in"), output=tmp_path / "out")
    units = _units(source, job, parallelism=2)
    # Then the first file is cut in three slices of 7,000 rows (MIN_UNIT_ROWS at least), two
    # of them starting inside a row group, the second file is one, and reading the units one
    # after another gives every row in order.
    assert [(u.skip, u.take, u.offset) for u in units] == [
        (0, 7_000, 0),
        (1_000, 7_000, 7_000),
        (2_000, 7_000, 14_000),
        (0, 500, 21_000),
    ]
    assert [len(u.fragment.row_groups) for u in units] == [3, 3, 3, 1]
    plan = Plan(job, source.dataset.schema, ("x",), units, str(tmp_path))
    read = [b.column(0) for unit in units for b in _unit_batches(plan, unit)]
    assert pa.chunked_array(read).to_numpy().tolist() == table.column("x").to_pylist()


def test_a_worker_refuses_a_model_directory_changed_since_the_driver_checked_it(
    model_dir: Path, inputs: dict[str, Path], tmp_path: Path
) -> None:
    # Given a plan made for the published model, and its directory changed afterwards.
    model = Path(shutil.copytree(model_dir, tmp_path / "model"))
    published = content_hash(model)
    (model / "sitecustomize.py").write_text("import os\n")
    artifact = read_artifact(model_dir)
    source = open_input(str(inputs["parquet"]), artifact.columns, keys=[])
    job = Job(model, str(inputs["parquet"]), tmp_path / "out", expected_hash=published)
    (tmp_path / "_tasks").mkdir()
    plan = Plan(job, source.dataset.schema, artifact.names, _units(source, job, 2), str(tmp_path))
    # When a task scores its unit, then it scores nothing and says why, in its result row.
    (result,) = list(_score_units(plan, iter([pa.record_batch({"id": [0]})])))
    error = result.column("error")[0].as_py()
    assert f"does not match the expected {published}" in error
    assert list((tmp_path / "_tasks").iterdir()) == []


def test_a_worker_reports_a_file_unreadable_when_it_reads_it(
    model_dir: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    # Given a plan made for a Parquet file that is then overwritten with garbage.
    source_file = tmp_path / "in.parquet"
    rows.iloc[:100].to_parquet(source_file)
    artifact = read_artifact(model_dir)
    source = open_input(str(source_file), artifact.columns, keys=[])
    job = Job(model_dir, str(source_file), tmp_path / "out", expected_hash=artifact.content_hash)
    (tmp_path / "_tasks").mkdir()
    plan = Plan(job, source.dataset.schema, artifact.names, _units(source, job, 2), str(tmp_path))
    source_file.write_bytes(b"PAR1 no longer Parquet PAR1")
    # When a task scores its unit, then its result row says which file and why.
    (result,) = list(_score_units(plan, iter([pa.record_batch({"id": [0]})])))
    assert result.column("error")[0].as_py().startswith(f"{source_file}: cannot be read (")


def test_the_master_is_named_else_spark_remote_else_spark_submits_else_local() -> None:
    submitted = {"PYSPARK_GATEWAY_PORT": "40123"}
    assert chosen_master("spark://a:7077", {"SPARK_REMOTE": "sc://b"}) == "spark://a:7077"
    assert chosen_master(None, {"SPARK_REMOTE": "sc://b", **submitted}) == "sc://b"
    assert chosen_master(None, submitted) == SUBMITTED
    assert chosen_master(None, {}) == DEFAULT_MASTER == "local[*]"


CONNECT_BIN = SERVING_BIN.parent.parent / ".venv-connect" / "bin"
CONNECT_SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"
CONNECT_READY_SECONDS = 90.0


@pytest.fixture(scope="module")
def connect_client() -> Path:
    """serving/.venv-connect's modelops-score (built by `make install-spark-connect` if missing):
    the batch engine with Spark Connect's client and no seldon-core."""
    python = CONNECT_BIN / "python"
    ready = (
        python.exists()
        and not subprocess.run(
            [python, "-c", "import grpc, pyspark.sql.connect.session"], capture_output=True
        ).returncode
    )
    if not ready:
        done = subprocess.run(
            ["make", "install-spark-connect"], cwd=REPO_ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, f"install-spark-connect failed:\n{done.stdout}\n{done.stderr}"
    return CONNECT_BIN / "modelops-score"


@pytest.fixture(scope="module")
def connect_server(
    spark_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real Spark Connect server (`local[2]`, loopback only), its workers running the serving
    environment's Python; stopped by the PID this fixture started."""
    import socket

    where = "import pyspark, os; print(os.path.dirname(pyspark.__file__))"
    found = subprocess.run(
        [SERVING_BIN / "python", "-c", where], capture_output=True, text=True, check=True
    )
    submit = Path(found.stdout.strip()) / "bin" / "spark-submit"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("spark-connect") / "server.log"
    environment = {
        **{k: v for k, v in os.environ.items() if k != "SPARK_REMOTE"},
        "PYSPARK_PYTHON": str(SERVING_BIN / "python"),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                str(submit),
                *("--class", CONNECT_SERVER, "--master", "local[2]"),
                *("--conf", f"spark.connect.grpc.binding.port={port}"),
                *("--conf", "spark.connect.grpc.binding.address=127.0.0.1"),
                *("--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.ui.enabled=false"),
                "spark-internal",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        deadline = time.monotonic() + CONNECT_READY_SECONDS
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_a_spark_connect_server_scores_as_the_local_engine_does_with_no_code_change(
    connect_client: Path,
    connect_server: str,
    scored: dict[str, dict[str, Path]],
    model_dir: Path,
    inputs: dict[str, Path],
    tmp_path: Path,
) -> None:
    output = tmp_path / "connect"
    done = subprocess.run(
        [
            str(connect_client),
            *("--model", str(model_dir), "--input", str(inputs["parquet"])),
            *("--output", str(output), "--engine", "spark"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SPARK_REMOTE": connect_server},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    local, local_refused, local_record = _read(scored["local"]["parquet"])
    remote, remote_refused, remote_record = _read(output)
    joined = local.merge(remote, on="row", suffixes=("_local", "_connect"), validate="1:1")
    assert len(joined) == len(local) == len(remote)
    assert np.array_equal(joined["score_local"], joined["score_connect"]), "bit for bit"
    assert remote_refused.equals(local_refused)
    assert remote_record["spark"]["master"] == connect_server
    same = {k: v for k, v in local_record.items() if k not in (*RUN_OWN, *TIMINGS)}
    assert same == {key: remote_record[key] for key in same}


def test_spark_connect_from_the_servers_environment_says_which_to_use(
    spark_installed: None, model_dir: Path, inputs: dict[str, Path], tmp_path: Path
) -> None:
    command = [
        str(SERVING_BIN / "modelops-score"),
        *("--model", str(model_dir), "--input", str(inputs["csv"])),
        *("--output", str(tmp_path / "out"), "--engine", "spark"),
    ]
    env = {**os.environ, "SPARK_REMOTE": "sc://127.0.0.1:15002"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert "make install-spark-connect" in done.stderr, done.stderr
    assert "serving/.venv-connect/bin/modelops-score" in done.stderr
    assert not (tmp_path / "out").exists()

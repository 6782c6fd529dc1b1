"""`modelops-score --engine spark`: the batch engine's scoring, spread over Apache Spark.

**On the driver, before Spark starts**, as the local engine does: the model is read and loaded
(its content hash checked), the input found and checked against the model's inputs
(`tables.open_input`), the output locked and a staging folder made. A wrong model, a missing
column or an empty input fails in seconds, not after a session start.

**In Spark**: the input is cut into units (slices of a Parquet file, aligned to its row groups;
a CSV file whole), one Spark task each (`mapInArrow` over the units' numbers). A task reads its
unit with the local engine's reader (the pyarrow fragments `open_input` found, so CSV parsing,
partition columns and per-row refusals are the same code), scores each record batch with
`batch.score_batch` and the model loaded once per Python worker (its hash checked there against
the one the driver verified), and writes its part files and refused rows into a folder of its
own under the staging folder. It returns one small row: that folder and the unit's `Counts` as
JSON, so nothing is scored twice to count it. A failed or speculative attempt's folder is
never collected.

**On the driver again**: the counts are added up in input order, the refusals checked, the
collected attempts' files renamed `part-NNNNN.parquet` in input order and their refused rows
gathered into `_refused.parquet`; the run record (`"engine": "spark"`) is written and the folder
placed as the local engine places it. Spark's own writer is not used, so there are no
`_SUCCESS` or `.crc` files and the layout is the local engine's.

The key with no `--id-column` is the local engine's `row`, the position in the input: Parquet
footers give each file's rows; for a folder of CSV files a first, cheap Spark job counts each
file's rows with the same parser.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import math
import os
import shutil
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from modelops_contract.batch import REFUSED_FILE

from modelops_serving.batch import (
    BatchError,
    Counts,
    Job,
    Parts,
    Progress,
    Refusals,
    batch_keys,
    check_refused,
    load_job_model,
    lock_output,
    open_job,
    publish,
    run_record,
    score_batch,
    staging_folder,
)
from modelops_serving.loaded import LoadedModel
from modelops_serving.profile import Profile
from modelops_serving.tables import Input, InputError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

DEFAULT_MASTER = "local[*]"
REMOTE_ENV = "SPARK_REMOTE"
SUBMITTED = "the master spark-submit was given"
"""`--master` when this driver was started by spark-submit and none was named: the session
takes spark-submit's (its `--master`, or a cluster's spark-defaults), not local[*]."""
_SUBMIT_ENV = "PYSPARK_GATEWAY_PORT"
"""Set by spark-submit for the Python driver it starts (the JVM gateway it is to use)."""


def chosen_master(named: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """`--master`, else $SPARK_REMOTE, else spark-submit's when it started us, else local[*]."""
    if named:
        return named
    if environ.get(REMOTE_ENV):
        return environ[REMOTE_ENV]
    return SUBMITTED if environ.get(_SUBMIT_ENV) else DEFAULT_MASTER


MIN_UNIT_ROWS = 10_000
"""A task's least rows (unless its file is smaller): below it, task overhead outweighs scoring."""
TASKS_FOLDER = "_tasks"
_SCORED = "unit long, folder string, counts string, error string"
_COUNTED = "unit long, rows long, error string"
_LOOPBACK = "127.0.0.1"
Task = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]
_MODELS: dict[tuple[str, str], tuple[LoadedModel, Profile]] = {}
"""Models loaded in this Python worker: Spark reuses a worker for many tasks."""


@dataclass(frozen=True)
class Unit:
    """One task's rows: `take` rows (None: all) of `fragment` after its first `skip`; the first is
    row `offset` of the input (None while unknown, or not needed with id columns)."""

    fragment: ds.Fragment
    skip: int = 0
    take: int | None = None
    offset: int | None = None


@dataclass(frozen=True)
class Plan:
    """What every task is sent: the job (its expected hash the one the driver verified, its paths
    absolute: executors have their own working folder), the input's schema and the units."""

    job: Job
    schema: pa.Schema
    names: tuple[str, ...]
    units: tuple[Unit, ...]
    staging: str


def run(
    job: Job, *, master: str = DEFAULT_MASTER, progress: Progress | None = None
) -> dict[str, Any]:
    """Score `job.input` into `job.output` on Spark at `master`; the run record, as `batch.run`.

    A Spark session already active in this process (a notebook's) is used as it is.

    Raises:
        BatchError: the model, the input, the refused rows or Spark stop the run; the previous
            output is left as it was.
    """
    progress = progress or Progress()
    opened = open_job(job)
    artifact, source, loaded = opened.artifact, opened.source, opened.loaded
    pinned = dataclasses.replace(
        job, model_dir=job.model_dir.resolve(), expected_hash=artifact.content_hash
    )
    names = tuple(dict.fromkeys([*job.id_columns, *artifact.names]))
    with (
        lock_output(job.output),
        staging_folder(job.output, job.run_id) as staging,
        spark_session(master) as spark,
    ):
        ready = time.monotonic()
        parallelism = _parallelism(spark)
        units = _units(source, job, parallelism)
        plan = Plan(pinned, source.dataset.schema, names, units, str(staging.resolve()))
        (staging / TASKS_FOLDER).mkdir()
        if not job.id_columns and any(unit.offset is None for unit in units):
            plan = _with_offsets(spark, plan)
        results = _score(spark, plan, source, progress)
        counts = _gather(plan, results, staging)
        progress.advance(counts.rows_in, final=True)
        record = run_record(job, opened, counts)
        record["engine"] = "spark"
        record["spark"] = {
            "master": _master_of(spark, master),
            "parallelism": parallelism,
            "tasks": len(units),
        }
        done = time.monotonic()
        record["seconds"] = {
            "load": round(loaded - opened.started, 3),
            "spark_start": round(ready - loaded, 3),
            "score": round(done - ready, 3),
            "total": round(done - opened.started, 3),
        }
        record["rows_per_second"] = round(counts.rows_in / max(done - ready, 1e-9))
        publish(record, staging, job.output)
    return record


CONNECT_PARALLELISM = 8
"""Tasks' worth of units a Spark Connect run cuts its input into when the server does not set
spark.default.parallelism (a Connect client cannot ask the cluster how many cores it has)."""


def _connect_session(master: str) -> SparkSession:
    """A Spark Connect session at an sc:// address (the client of serving/.venv-connect)."""
    from pyspark.sql import SparkSession

    try:
        return SparkSession.builder.remote(master).getOrCreate()
    except ImportError as exc:
        raise BatchError(
            f"{master} is a Spark Connect address, and this environment has no Spark Connect "
            f"client ({_first_line(exc)}): the model server's seldon-core holds protobuf below "
            "4. Run `make install-spark-connect` and score with "
            "serving/.venv-connect/bin/modelops-score, or give the cluster's own master "
            f"(spark://host:7077, yarn, k8s://...) with --master, or unset {REMOTE_ENV}"
        ) from None
    except Exception as exc:  # pyspark raises its own kinds and gRPC's; all mean "no session"
        raise BatchError(f"Spark Connect did not answer at {master}: {_first_line(exc)}") from None


def _connected(spark: SparkSession) -> bool:
    """Whether `spark` is a Spark Connect client's session (no SparkContext on this side)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def _master_of(spark: SparkSession, master: str) -> str:
    return master if _connected(spark) else str(spark.sparkContext.master)


def _cancel(spark: SparkSession) -> None:
    """Cancel the session's running jobs (and so stop their tasks)."""
    if _connected(spark):
        spark.interruptAll()
    else:
        spark.sparkContext.cancelAllJobs()


@contextlib.contextmanager
def spark_session(master: str) -> Iterator[SparkSession]:
    """A Spark session at `master`, stopped (its jobs cancelled) on the way out, before the
    staging folder its tasks write into is removed. A local one listens on loopback only and
    runs this environment's Python."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise BatchError(
            "--engine spark needs pyspark, which this environment lacks: run `make install-spark` "
            "(or `uv sync --group spark` in serving/)"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    if master.startswith("sc://"):
        remote = _connect_session(master)
        try:
            yield remote
        finally:
            _cancel(remote)
            remote.stop()
        return
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise BatchError(
            "--engine spark needs Java 17 or later, and there is no `java` on PATH nor a "
            "JAVA_HOME: install it (Debian: apt-get install default-jre-headless)"
        )
    # pyspark follows SPARK_REMOTE (Spark Connect) whenever it is set, whatever the master:
    # here the master was chosen already (an explicit --master wins), and it is not sc://.
    os.environ.pop(REMOTE_ENV, None)
    builder = (
        SparkSession.builder.appName("modelops-score")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "ERROR")
    )
    if master != SUBMITTED:
        builder = builder.master(master)
    if master.startswith("local"):
        # Workers would otherwise run `python3` from PATH, which lacks this environment; and
        # every port Spark opens (its block manager's too) stays on loopback.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", _LOOPBACK)
        for key in ("spark.driver.host", "spark.driver.bindAddress"):
            builder = builder.config(key, _LOOPBACK)
        builder = builder.config("spark.ui.enabled", "false")
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # pyspark raises its own kinds and Py4J's; all mean "no session"
        raise BatchError(f"Spark did not start at {master}: {_first_line(exc)}") from None
    try:
        yield spark
    finally:
        _cancel(spark)
        spark.stop()


def _parallelism(spark: SparkSession) -> int:
    if _connected(spark):
        configured = spark.conf.get("spark.default.parallelism", None)
        return max(1, int(configured)) if configured else CONNECT_PARALLELISM
    return max(1, int(spark.sparkContext.defaultParallelism))


def _units(source: Input, job: Job, parallelism: int) -> tuple[Unit, ...]:
    """Parquet: each file in slices of about total / (2 x parallelism) rows (two tasks a core
    even out uneven ones), at least MIN_UNIT_ROWS and at most a part file's rows. CSV: a file
    is a unit (rows are known only once read)."""
    fragments = list(source.dataset.get_fragments())
    if source.format != "parquet" or source.rows is None:
        offset = 0 if len(fragments) == 1 else None
        return tuple(Unit(fragment, offset=offset) for fragment in fragments)
    size = min(job.rows_per_file, max(MIN_UNIT_ROWS, math.ceil(source.rows / (2 * parallelism))))
    units: list[Unit] = []
    offset = 0
    for fragment in fragments:
        groups = [group.num_rows for group in fragment.row_groups]
        rows = sum(groups)
        pieces = max(1, math.ceil(rows / size))
        bounds = [rows * piece // pieces for piece in range(pieces + 1)]
        starts = np.cumsum([0, *groups])
        for first, last in itertools.pairwise(bounds):
            if first == last:
                continue
            ids = [g for g in range(len(groups)) if starts[g] < last and starts[g + 1] > first]
            skip = first - int(starts[ids[0]])
            piece = fragment.subset(row_group_ids=ids) if len(ids) < len(groups) else fragment
            units.append(Unit(piece, skip=skip, take=last - first, offset=offset + first))
        offset += rows
    return tuple(units)


def _with_offsets(spark: SparkSession, plan: Plan) -> Plan:
    """Each unit's first row's position in the input, from a Spark job counting every unit's
    rows with the local engine's parser (CSV files, whose rows are known only once read)."""
    counted = _run_tasks(spark, functools.partial(_count_units, plan), len(plan.units), _COUNTED)
    _raise_first_error(counted)
    rows = [int(row["rows"]) for row in sorted(counted, key=lambda row: int(row["unit"]))]
    offsets = np.cumsum([0, *rows[:-1]])
    units = tuple(
        dataclasses.replace(unit, offset=int(offset))
        for unit, offset in zip(plan.units, offsets, strict=True)
    )
    return dataclasses.replace(plan, units=units)


def _score(
    spark: SparkSession, plan: Plan, source: Input, progress: Progress
) -> list[dict[str, Any]]:
    """Run the scoring tasks; their result rows in unit order."""
    progress.start(source.rows)
    task = functools.partial(_score_units, plan)
    scored = _run_tasks(spark, task, len(plan.units), _SCORED, progress=progress, total=source.rows)
    return sorted(scored, key=lambda row: int(row["unit"]))


def _run_tasks(
    spark: SparkSession,
    task: Task,
    units: int,
    schema: str,
    *,
    progress: Progress | None = None,
    total: int | None = None,
) -> list[dict[str, Any]]:
    """One Spark task per unit (`task` gets the units' numbers and yields a row for each); the
    rows. The job runs in a thread, so that an interrupt (Ctrl-C, SIGTERM) reaches this one
    outside Py4J's socket: the job is then cancelled, and its tasks stopped, before the staging
    folder they write into is removed. Meanwhile Spark's count of finished tasks is shown as
    the rows they stand for."""
    frame = spark.range(0, units, 1, numPartitions=units).mapInArrow(task, schema)
    outcome: list[list[Row] | Exception] = []
    job = threading.Thread(target=lambda: outcome.append(_collect(frame)), daemon=True)
    job.start()
    # A Connect client sees no stages: its progress shows when the job is done.
    tracker = None if _connected(spark) else spark.sparkContext.statusTracker()
    try:
        while job.is_alive():
            job.join(1.0)
            if tracker is None:
                continue
            stages = [tracker.getStageInfo(stage) for stage in tracker.getActiveStageIds()]
            tasks = sum(stage.numTasks for stage in stages if stage)
            finished = sum(stage.numCompletedTasks for stage in stages if stage)
            if progress and total and tasks:
                progress.advance(total * finished // tasks)
    except KeyboardInterrupt:
        _cancel(spark)
        job.join()
        raise
    (result,) = outcome
    if isinstance(result, Exception):
        raise BatchError(f"the Spark job failed: {_spark_reason(result)}")
    return [row.asDict() for row in result]


def _collect(frame: DataFrame) -> list[Row] | Exception:
    """The frame's rows, or the exception that Spark (Py4J, pyspark) raised instead."""
    try:
        rows: list[Row] = frame.collect()
    except Exception as exc:
        return exc
    return rows


def _gather(plan: Plan, results: list[dict[str, Any]], staging: Path) -> Counts:
    """The tasks' counts added in input order; their parts renamed in input order into
    `staging`, their refused rows into one `_refused.parquet`."""
    _raise_first_error(results)
    total = Counts()
    for row in results:
        total += _counts_from_json(str(row["counts"]))
    check_refused(total, plan.job.max_refused)
    if total.rows_in == 0:
        raise BatchError(f"{plan.job.input}: the input has no rows; nothing to score")
    folders = [staging / TASKS_FOLDER / str(row["folder"]) for row in results]
    parts = [part for folder in folders for part in sorted(folder.glob("part-*.parquet"))]
    for number, part in enumerate(parts):
        part.rename(staging / f"part-{number:05d}.parquet")
    refused = [folder / REFUSED_FILE for folder in folders if (folder / REFUSED_FILE).exists()]
    if refused:
        with pq.ParquetWriter(staging / REFUSED_FILE, pq.read_schema(refused[0])) as writer:
            for path in refused:
                writer.write_table(pq.read_table(path))
    shutil.rmtree(staging / TASKS_FOLDER)
    return total


def _raise_first_error(results: list[dict[str, Any]]) -> None:
    errors = sorted((int(row["unit"]), str(row["error"])) for row in results if row["error"])
    if errors:
        raise BatchError(errors[0][1])


# What runs in Spark's Python workers.


def _score_units(plan: Plan, numbers: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """A task: score the units numbered in `numbers`, one result row each. A refused run (the
    model, an unreadable file) is reported in the row, not raised, so Spark does not retry what
    would fail again, and the driver shows the message as it is."""
    for batch in numbers:
        for number in batch.column(0).to_pylist():
            folder, counts, error = "", "", ""
            try:
                folder, counts = _score_unit(plan, number)
            except (BatchError, InputError) as exc:
                error = str(exc)
            yield pa.RecordBatch.from_pydict(
                {"unit": [number], "folder": [folder], "counts": [counts], "error": [error]}
            )


def _score_unit(plan: Plan, number: int) -> tuple[str, str]:
    """Score one unit into a folder of its own; the folder's name and the unit's counts (JSON).
    Stops early once the unit alone refused more rows than the run may."""
    job, unit = plan.job, plan.units[number]
    model, profile = _model(job)
    folder = f"{number:06d}-{uuid.uuid4().hex[:12]}"
    path = Path(plan.staging) / TASKS_FOLDER / folder
    path.mkdir()  # not its parents: a task outliving a stopped run must not recreate them
    total = Counts()
    with Parts(path, job.rows_per_file) as parts, Refusals(path) as refusals:
        for batch in _unit_batches(plan, unit):
            offset = (unit.offset or 0) + total.rows_in
            keys = batch_keys(batch, job.id_columns, offset=offset)
            scored = score_batch(model, profile, batch, keys=keys, run_id=job.run_id)
            total += scored.counts
            parts.write(scored.rows)
            if scored.refused is not None:
                refusals.write(scored.refused)
                if total.refused > job.max_refused:
                    break
    return folder, _counts_to_json(total)


def _count_units(plan: Plan, numbers: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """A task: count the rows of the units numbered in `numbers`."""
    for batch in numbers:
        for number in batch.column(0).to_pylist():
            rows, error = 0, ""
            try:
                rows = sum(part.num_rows for part in _unit_batches(plan, plan.units[number]))
            except InputError as exc:
                error = str(exc)
            yield pa.RecordBatch.from_pydict({"unit": [number], "rows": [rows], "error": [error]})


def _model(job: Job) -> tuple[LoadedModel, Profile]:
    """The job's model, loaded once per worker and only if its content hash is the one the
    driver verified (a model directory changed since, or another one at the same path on an
    executor, is refused)."""
    key = (str(job.model_dir), job.expected_hash)
    if key not in _MODELS:
        _, model, profile = load_job_model(job)
        _MODELS[key] = (model, profile)
    return _MODELS[key]


def _unit_batches(plan: Plan, unit: Unit) -> Iterator[pa.RecordBatch]:
    """A unit's rows in record batches of at most `batch_rows`, read as `tables.batches` does."""
    skip, left = unit.skip, unit.take
    try:
        scanner = ds.Scanner.from_fragment(
            unit.fragment,
            schema=plan.schema,
            columns=list(plan.names),
            batch_size=plan.job.batch_rows,
        )
        for batch in scanner.to_batches():
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            batch = batch.slice(skip, left)
            skip = 0
            if left is not None:
                left -= batch.num_rows
            if batch.num_rows:
                yield batch
            if left == 0:
                return
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{unit.fragment.path}: cannot be read ({_first_line(exc)})") from None


def _counts_to_json(counts: Counts) -> str:
    """A unit's counts for the driver: exact (integers, and the score sum as Python's repr)."""
    return json.dumps(
        {
            "rows_in": counts.rows_in,
            "scored": counts.scored,
            "positives": counts.positives,
            "score_sum": counts.score_sum,
            "reasons": dict(counts.reasons),
            "first_reasons": counts.first_reasons,
            "bins": {name: values.tolist() for name, values in counts.bins.items()},
            "score_bins": None if counts.score_bins is None else counts.score_bins.tolist(),
        }
    )


def _counts_from_json(text: str) -> Counts:
    data = json.loads(text)
    score_bins = data["score_bins"]
    return Counts(
        rows_in=int(data["rows_in"]),
        scored=int(data["scored"]),
        positives=int(data["positives"]),
        score_sum=float(data["score_sum"]),
        reasons=Counter({str(k): int(v) for k, v in data["reasons"].items()}),
        first_reasons=[str(reason) for reason in data["first_reasons"]],
        bins={name: np.asarray(values, dtype=np.int64) for name, values in data["bins"].items()},
        score_bins=None if score_bins is None else np.asarray(score_bins, dtype=np.int64),
    )


def _spark_reason(exc: BaseException) -> str:
    """The line of a Spark failure that says what went wrong (a Python worker's exception, or
    Spark's own), not the Java stack around it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error:" in line and not line.startswith("at "):
            return line
    return lines[0] if lines else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

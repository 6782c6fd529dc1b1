"""Score a table with a model: the batch engine behind `modelops score` and the batch CronJob.

It runs in the model server's environment (and image) and loads the model as the server does
(`loaded.load_model`: the content hash checked, the same exact scoring path), so a row gets
the same score in a batch as in a request.

- **Bounded memory**: the input is read, scored and written one record batch at a time
  (`Job.batch_rows`); peak memory grows with the batch and the model, not with the input.
- **Nothing half-written**: parts are written to a staging folder beside the output and moved
  into place in one rename when every row is accounted for; a failed, interrupted or
  concurrent run leaves the previous output as it was (`place`).
- **Refused, not lost**: a row the model cannot take goes to `_refused.parquet` with its
  reason; over `Job.max_refused` such rows the run fails, naming the first reasons.
- **A record of the run**: `_run.json` (rows in, scored, refused and why, the model, the
  input's fingerprint, timings, and each feature's and the score's counts in the reference
  profile's bins, which the monitor's drift definitions judge).

Files whose names start with `_` are skipped by Spark, pyarrow and pandas when they read the
output folder as a dataset, so the scores read back as one table.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import fcntl
import json
import os
import shutil
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from modelops_contract import bin_labels
from modelops_contract.batch import RECORD_FILE, REFUSED_FILE

from modelops_serving.artifact import Artifact, ArtifactError, read_artifact
from modelops_serving.loaded import LoadedModel, load_model
from modelops_serving.profile import Profile, ProfileError, parse_profile
from modelops_serving.tables import (
    ROW_NUMBER,
    Input,
    InputError,
    batches,
    model_columns,
    open_input,
)

SCORE = "score"
PREDICTION = "prediction"
MODEL_HASH = "model_hash"
RUN_ID = "run_id"
REASON = "reason"
_SHOWN_REASONS = 5


class BatchError(Exception):
    """The run cannot go on; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Job:
    """One batch run. `expected_hash` empty: any model directory (a trained, unreleased one)."""

    model_dir: Path
    input: str
    output: Path
    expected_hash: str = ""
    id_columns: tuple[str, ...] = ()
    max_refused: int = 1000
    batch_rows: int = 100_000
    rows_per_file: int = 1_000_000
    threads: int = 0
    """Threads scoring each batch; 0: every core this process may run on (or OMP_NUM_THREADS)."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Counts:
    """What a run has seen: rows, refusals by kind, and counts in the profile's bins. Counts of
    parts of a run add up (`+=`), whichever engine scored the parts."""

    rows_in: int = 0
    scored: int = 0
    model_seconds: float = 0.0
    """Time in the model's own scoring (what any engine pays): the rest is the engine's."""
    positives: int = 0
    score_sum: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    first_reasons: list[str] = field(default_factory=list)
    bins: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)
    score_bins: npt.NDArray[np.int64] | None = None

    @property
    def refused(self) -> int:
        return sum(self.reasons.values())

    def __iadd__(self, other: Counts) -> Counts:
        self.rows_in += other.rows_in
        self.scored += other.scored
        self.model_seconds += other.model_seconds
        self.positives += other.positives
        self.score_sum += other.score_sum
        self.reasons += other.reasons
        self.first_reasons.extend(other.first_reasons[: _SHOWN_REASONS - len(self.first_reasons)])
        for name, counts in other.bins.items():
            mine = self.bins.get(name)
            self.bins[name] = counts.copy() if mine is None else mine + counts
        if other.score_bins is not None:
            mine_score = self.score_bins
            self.score_bins = (
                other.score_bins.copy() if mine_score is None else mine_score + other.score_bins
            )
        return self


@dataclass(frozen=True)
class Scored:
    """One batch scored: the output rows, the refused rows (keys and reason), and its counts."""

    rows: pa.Table
    refused: pa.Table | None
    counts: Counts


class Progress:
    """Rows done, rows per second and time left: one rewritten line on a terminal, a plain line
    every `every` seconds elsewhere (CI logs, a CronJob's)."""

    def __init__(self, stream: IO[str] = sys.stderr, *, every: float = 10.0) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self.every = 0.2 if self.interactive else every
        self.total: int | None = None
        self.started = self.shown = time.monotonic()

    def start(self, total: int | None) -> None:
        self.total = total
        self.started = self.shown = time.monotonic()

    def advance(self, done: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.shown < self.every:
            return
        self.shown = now
        rate = done / max(now - self.started, 1e-9)
        line = f"score: {done:,} rows"
        if self.total:
            left = (self.total - done) / rate if rate else float("inf")
            line = f"score: {done:,} / {self.total:,} rows ({done / self.total:.0%})"
            line += "" if final else f", ETA {_duration(left)}"
        line += f", {rate:,.0f} rows/s"
        if self.interactive:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


@dataclass(frozen=True)
class Opened:
    """A job checked before any row is scored: its model, profile and input, and when."""

    artifact: Artifact
    model: LoadedModel
    profile: Profile
    source: Input
    started: float
    """`time.monotonic()` when the job began; `loaded` when its model and input were ready."""
    loaded: float
    started_at: str


def open_job(job: Job) -> Opened:
    """What every engine checks first: the output may be replaced, the model loads (its hash
    checked), the input fits it. Raises BatchError with what is wrong."""
    started, started_at = time.monotonic(), now()
    check_replaceable(job.output)
    artifact, model, profile = load_job_model(job)
    try:
        source = open_input(job.input, artifact.columns, keys=job.id_columns)
    except InputError as exc:
        raise BatchError(str(exc)) from None
    return Opened(artifact, model, profile, source, started, time.monotonic(), started_at)


def publish(record: Mapping[str, Any], staging: Path, output: Path) -> None:
    """Write the run record into the staging folder, then put the folder in place."""
    (staging / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    place(staging, output)


def run(job: Job, *, progress: Progress | None = None) -> dict[str, Any]:
    """Score `job.input` into `job.output`; the run record (also written as `_run.json`).

    Raises:
        BatchError: the model, the input or the refused rows stop the run; the previous output
            is left as it was.
    """
    progress = progress or Progress()
    opened = open_job(job)
    with lock_output(job.output), staging_folder(job.output, job.run_id) as staging:
        counts = _score(job, opened.model, opened.profile, opened.source, staging, progress)
        record = run_record(job, opened, counts)
        done = time.monotonic()
        record["seconds"] = {
            "load": round(opened.loaded - opened.started, 3),
            "score": round(done - opened.loaded, 3),
            "model": round(counts.model_seconds, 3),
            "total": round(done - opened.started, 3),
        }
        record["rows_per_second"] = round(counts.rows_in / max(done - opened.loaded, 1e-9))
        publish(record, staging, job.output)
    return record


def check_replaceable(output: Path) -> None:
    """A run replaces only an empty folder or a previous run's output, never other data."""
    if not output.exists():
        return
    if not output.is_dir():
        raise BatchError(f"{output} is a file; --output names a folder the scores go into")
    if any(output.iterdir()) and not (output / RECORD_FILE).is_file():
        raise BatchError(
            f"{output} holds files but no {RECORD_FILE}: it is not a batch run's output, and a "
            "run replaces its --output whole. Choose a new folder (or empty this one)"
        )


def load_job_model(job: Job) -> tuple[Artifact, LoadedModel, Profile]:
    try:
        artifact = read_artifact(job.model_dir, expected_hash=job.expected_hash)
        model = load_model(artifact, threads=job.threads or available_cores())
    except (ArtifactError, OSError) as exc:
        raise BatchError(f"model: {exc}") from None
    if artifact.profile_bytes is None:
        raise BatchError(
            f"{job.model_dir}: no profile.json, so no threshold to predict a class with and no "
            "bins to count drift in; retrain the model with this version of the pipeline"
        )
    try:
        profile = parse_profile(artifact.profile_bytes, where=str(job.model_dir))
    except ProfileError as exc:
        raise BatchError(str(exc)) from None
    return artifact, model, profile


def _score(
    job: Job,
    model: LoadedModel,
    profile: Profile,
    source: Input,
    staging: Path,
    progress: Progress,
) -> Counts:
    total = Counts()
    names = list(dict.fromkeys([*job.id_columns, *model.artifact.names]))
    progress.start(source.rows)
    with Parts(staging, job.rows_per_file) as parts, Refusals(staging) as refusals:
        for batch in batches(source, names, rows=job.batch_rows):
            keys = batch_keys(batch, job.id_columns, offset=total.rows_in)
            scored = score_batch(model, profile, batch, keys=keys, run_id=job.run_id)
            total += scored.counts
            if scored.refused is not None:
                refusals.write(scored.refused)
                check_refused(total, job.max_refused)
            parts.write(scored.rows)
            progress.advance(total.rows_in)
    progress.advance(total.rows_in, final=True)
    if total.rows_in == 0:
        raise BatchError(f"{job.input}: the input has no rows; nothing to score")
    return total


def batch_keys(batch: pa.RecordBatch, id_columns: Sequence[str], *, offset: int) -> pa.Table:
    """The output's key columns for a batch: the id columns, else each row's input position."""
    if id_columns:
        return pa.Table.from_batches([batch.select(list(id_columns))])
    rows = pa.array(np.arange(offset, offset + batch.num_rows, dtype=np.int64))
    return pa.table({ROW_NUMBER: rows})


def score_batch(
    model: LoadedModel, profile: Profile, batch: pa.RecordBatch, *, keys: pa.Table, run_id: str
) -> Scored:
    """Score one record batch: pure, so every engine (local, Spark) scores alike."""
    artifact = model.artifact
    counts = Counts(rows_in=batch.num_rows)
    values, refused = model_columns(batch, artifact.columns)
    refused_rows = None
    if refused.reasons:
        for position, reason in zip(refused.positions.tolist(), refused.reasons, strict=True):
            counts.reasons[reason.split(":", 1)[0]] += 1
            if len(counts.first_reasons) < _SHOWN_REASONS:
                where = ", ".join(
                    f"{key}={keys.column(key)[position].as_py()!r}" for key in keys.column_names
                )
                counts.first_reasons.append(f"row {where}: {reason}")
        refused_rows = keys.take(pa.array(refused.positions)).append_column(
            REASON, pa.array(refused.reasons, pa.string())
        )
        keep = np.ones(batch.num_rows, dtype=bool)
        keep[refused.positions] = False
        keys = keys.filter(pa.array(keep))
        values = {name: column[keep] for name, column in values.items()}
    started = time.perf_counter()
    scores = model.positive_scores(values) if keys.num_rows else np.empty(0, dtype=np.float64)
    counts.model_seconds = time.perf_counter() - started
    predicted = scores >= profile.threshold
    _count(counts, profile, values, scores, predicted)
    negative = next(c for c in artifact.classes if c != artifact.positive_label)
    classes = pa.array([negative, artifact.positive_label], pa.string())
    rows = keys.num_rows
    table = (
        keys.append_column(SCORE, pa.array(scores, pa.float64()))
        .append_column(PREDICTION, classes.take(pa.array(predicted.view(np.int8))))
        .append_column(MODEL_HASH, pa.repeat(pa.scalar(artifact.content_hash), rows))
        .append_column(RUN_ID, pa.repeat(pa.scalar(run_id), rows))
    )
    return Scored(table, refused_rows, counts)


def check_refused(total: Counts, max_refused: int) -> None:
    if total.refused > max_refused:
        raise BatchError(
            f"{total.refused} rows refused, over --max-refused {max_refused}; the input is "
            f"likely not what the model takes. First: {'; '.join(total.first_reasons)}"
        )


def _count(
    counts: Counts,
    profile: Profile,
    values: Mapping[str, Any],
    scores: npt.NDArray[np.float64],
    predicted: npt.NDArray[np.bool_],
) -> None:
    """Count a batch's scored rows in the reference profile's bins (drift's inputs)."""
    counts.scored = len(scores)
    counts.positives = int(predicted.sum())
    counts.score_sum = float(scores.sum())
    counts.bins = {
        feature.name: feature.counts(values[feature.name]) for feature in profile.features
    }
    cuts = np.asarray(profile.score_cuts, dtype=np.float64)
    index = np.searchsorted(cuts, scores, side="left")
    counts.score_bins = np.bincount(index, minlength=len(cuts) + 1).astype(np.int64)


def run_record(job: Job, opened: Opened, tally: Counts) -> dict[str, Any]:
    """The run record every engine writes as `_run.json` (the engine adds its timings)."""
    artifact, profile, source = opened.artifact, opened.profile, opened.source
    return {
        "run_id": job.run_id,
        "engine": "local",
        "started_at": opened.started_at,
        "finished_at": now(),
        "model": {
            "path": str(job.model_dir),
            "hash": artifact.content_hash,
            "hash_checked": bool(job.expected_hash),
            "data_version": artifact.data_version,
            "trained_at": artifact.trained_at,
        },
        "input": {
            "location": source.location,
            "format": source.format,
            "files": len(source.files),
            "fingerprint": source.fingerprint,
        },
        "output": str(job.output),
        "keys": list(job.id_columns) or [ROW_NUMBER],
        "threshold": profile.threshold,
        "rows": {"in": tally.rows_in, "scored": tally.scored, "refused": tally.refused},
        "refused_reasons": dict(tally.reasons.most_common()),
        "positive_rate": round(tally.positives / tally.scored, 6) if tally.scored else None,
        "mean_score": round(tally.score_sum / tally.scored, 6) if tally.scored else None,
        "bins": {
            feature.name: dict(zip(feature.labels, tally.bins[feature.name].tolist(), strict=True))
            for feature in profile.features
            if feature.name in tally.bins
        },
        "score_bins": dict(
            zip(
                bin_labels(len(profile.score_cuts) + 1),
                tally.score_bins.tolist() if tally.score_bins is not None else [],
                strict=False,
            )
        ),
    }


class Parts:
    """Parquet part files of at most `rows_per_file` rows each, written in order."""

    def __init__(self, folder: Path, rows_per_file: int) -> None:
        self.folder = folder
        self.rows_per_file = rows_per_file
        self.writer: pq.ParquetWriter | None = None
        self.rows_in_file = 0
        self.files = 0

    def __enter__(self) -> Parts:
        return self

    def write(self, table: pa.Table) -> None:
        start = 0
        while start < table.num_rows:
            if self.writer is None or self.rows_in_file >= self.rows_per_file:
                self._next_file(table.schema)
            assert self.writer is not None
            take = min(table.num_rows - start, self.rows_per_file - self.rows_in_file)
            self.writer.write_table(table.slice(start, take))
            self.rows_in_file += take
            start += take

    def _next_file(self, schema: pa.Schema) -> None:
        if self.writer is not None:
            self.writer.close()
        self.writer = pq.ParquetWriter(self.folder / f"part-{self.files:05d}.parquet", schema)
        self.files += 1
        self.rows_in_file = 0

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()


class Refusals:
    """`_refused.parquet`: the refused rows' keys and reasons, opened at the first one."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / REFUSED_FILE
        self.writer: pq.ParquetWriter | None = None

    def __enter__(self) -> Refusals:
        return self

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()


@contextlib.contextmanager
def lock_output(output: Path) -> Iterator[None]:
    """One run at a time per output folder: a second one fails at once, naming the first."""
    output.parent.mkdir(parents=True, exist_ok=True)
    lock = output.parent / f".{output.name}.lock"
    with lock.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise BatchError(
                f"{output} is being written by another run ({holder}); wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {now()}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)


@contextlib.contextmanager
def staging_folder(output: Path, run_id: str) -> Iterator[Path]:
    """A fresh staging folder beside `output`, removed unless it was placed. Under the lock, any
    staging folder left by a killed run is removed first."""
    for left in output.parent.glob(f".{output.name}.staging-*"):
        shutil.rmtree(left, ignore_errors=True)
    staging = output.parent / f".{output.name}.staging-{run_id}"
    staging.mkdir()
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def place(staging: Path, output: Path) -> None:
    """Put `staging` where `output` is, in one step: readers see the old folder or the new one.

    An existing output is swapped with the staging folder by one `renameat2(RENAME_EXCHANGE)`
    (Linux), then removed; elsewhere it is moved aside first (a moment with no output).
    """
    if not output.exists():
        staging.rename(output)
        return
    if not _exchange(staging, output):
        aside = output.parent / f".{output.name}.replaced-{staging.name.rsplit('-', 1)[-1]}"
        output.rename(aside)
        staging.rename(output)
        staging = aside
    shutil.rmtree(staging)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically; False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_cwd, exchange = -100, 2
    done = renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), exchange)
    return bool(done == 0)


def available_cores() -> int:
    """OMP_NUM_THREADS when set (a container sets it to its CPU limit), else the cores this
    process may run on."""
    setting = os.environ.get("OMP_NUM_THREADS", "")
    return int(setting) if setting.isdigit() and int(setting) > 0 else len(os.sched_getaffinity(0))


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"

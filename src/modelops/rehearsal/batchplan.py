"""What a batch rehearsal runs, decided before anything starts: pure functions, no processes.

A batch environment serves no traffic: on its schedule, the released model scores a table and
the run pushes its figures to a Pushgateway when it ends. Rehearsed on one machine, on
loopback: a real Pushgateway, a Prometheus scraping it with `honor_labels` (as production's
does) and evaluating the environment's batch rules in compressed time, an Alertmanager, and a
scheduler that runs `modelops-score` as the CronJob runs it, pushing under the CronJob's `job`
and the environment's `namespace`, every (longest gap between two scheduled runs / time scale)
seconds. `plan_batch` decides all of it; `rehearsal.rehearse` gathers what it needs from the
project and starts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from modelops_contract import batch as contract
from modelops_contract import records

from modelops.errors import RehearsalError
from modelops.params import BatchEnvironmentParams, longest_gap_seconds, missed_after_seconds
from modelops.paths import ALERTMANAGER_FILE
from modelops.rehearsal.plan import LOOPBACK, Served, UpRequest

SCORES_DIR = "scores"
"""Inside `paths.REHEARSAL_DIR`: the folder every successful run replaces."""
RUNS_FILE = "runs.jsonl"
"""Inside `paths.REHEARSAL_DIR`: one line per scheduled run (when, how long, its exit code)."""
A_MINUTE = 60.0
_REALTIME_OPTIONS = (
    ("shift", None, "--shift drifts real-time traffic; score a drifted table with --batch-input"),
    ("canary_percent", None, "--canary-percent splits traffic; a batch run has one model"),
    ("canary_errors", 0.0, "--canary-errors fails a canary's requests; a batch run has none"),
)


@dataclass(frozen=True)
class BatchRehearsal:
    """Everything `modelops up` starts for a batch environment, decided before it starts."""

    request: UpRequest
    job: str
    """The CronJob's name: the `job` runs push under and the rules select."""
    namespace: str
    schedule: str
    model: Served
    model_version: str
    """The pushed `model_version`: the release's version, else the model hash's start."""
    input: Path
    input_note: str
    output: Path
    id_columns: tuple[str, ...]
    max_refused: int
    batch_rows: int
    period_seconds: float
    """Between two runs' starts: the schedule's longest gap divided by the time scale."""
    missed_after_seconds: float
    """When ModelopsBatchRunMissed fires without a success, in compressed time."""
    notes: tuple[str, ...]
    """What the user should know before expecting an alert (e.g. too few rows for drift)."""

    @property
    def pushgateway_url(self) -> str:
        return f"http://{LOOPBACK}:{self.request.pushgateway_port}"


def check_kind(request: UpRequest, *, batch: bool) -> None:
    """Refuse options of the other kind of environment (rather than ignore them)."""
    if not batch:
        if request.batch_input is not None:
            raise RehearsalError(
                f"--batch-input is for a batch environment, and {request.env} serves real-time "
                "traffic: drift it with --shift FEATURE=FACTOR"
            )
        return
    given = [why for name, default, why in _REALTIME_OPTIONS if getattr(request, name) != default]
    if given:
        raise RehearsalError(
            f"{request.env} is a batch environment: " + "; ".join(given) + " (runbooks/"
            "batch-scoring.md#rehearse-a-batch-environment)"
        )


def plan_batch(
    request: UpRequest,
    environment: BatchEnvironmentParams,
    *,
    job: str,
    model: Served,
    model_version: str,
    test_rows_file: Path,
    test_rows: int,
    min_drift_rows: int,
    output: Path,
) -> BatchRehearsal:
    """The runs, their model, input and output, and what to say about them: `model` is the
    release's stable model (the workspace's where there is none), `model_version` what its runs
    push as `model_version`, `test_rows` how many rows `test_rows_file` holds, `min_drift_rows`
    the fewest rows a drift alert judges."""
    notes = []
    if request.batch_input is None:
        table, input_note = test_rows_file, f"the prepared test rows, {test_rows:,}"
        if test_rows < min_drift_rows:
            notes.append(
                f"drift is judged on at least {min_drift_rows:,} rows and the test rows are "
                f"{test_rows:,}: give a bigger table with --batch-input to see it"
            )
    else:
        table, input_note = Path(request.batch_input), "--batch-input, read again at every run"
    scale = request.time_scale
    return BatchRehearsal(
        request=request,
        job=job,
        namespace=environment.namespace,
        schedule=environment.schedule,
        model=model,
        model_version=model_version,
        input=table,
        input_note=input_note,
        output=output,
        id_columns=environment.id_columns,
        max_refused=environment.max_refused,
        batch_rows=environment.batch_rows,
        period_seconds=longest_gap_seconds(environment.schedule) / scale,
        missed_after_seconds=max(round(missed_after_seconds(environment) / scale), 1),
        notes=tuple(notes),
    )


def score_command(batch: BatchRehearsal, *, score: Path) -> list[str]:
    """`modelops-score` (at `score`) as the CronJob runs it, pushing to the rehearsal's
    Pushgateway under the group the batch rules select (the scheduler adds each `--run-id`)."""
    command = [
        str(score),
        *("--model", str(batch.model.directory)),
        *("--model-hash", batch.model.digest),
        *("--input", str(batch.input)),
        *("--output", str(batch.output)),
    ]
    for column in batch.id_columns:
        command += ["--id-column", column]
    return [
        *command,
        *("--max-refused", str(batch.max_refused)),
        *("--batch-rows", str(batch.batch_rows)),
        *("--pushgateway", batch.pushgateway_url),
        *("--push-job", batch.job),
        *("--push-label", f"namespace={batch.namespace}"),
        *("--model-version", batch.model_version),
    ]


class SchedulerConfig(TypedDict):
    """What the scheduler process reads (`rehearsal.scheduler`)."""

    command: list[str]
    """A run's command, but its `--run-id`."""
    period_seconds: float
    ledger: str
    """Where each run is appended (JSON lines)."""


def scheduler_config(batch: BatchRehearsal, *, score: Path, ledger: Path) -> SchedulerConfig:
    return {
        "command": score_command(batch, score=score),
        "period_seconds": batch.period_seconds,
        "ledger": str(ledger),
    }


def to_text(batch: BatchRehearsal, pids: Sequence[int], *, state: str, root: Path) -> str:
    """What `modelops up` prints once everything runs: the processes, each address, the runs,
    what to try and queries to paste (`state`: the state folder as shown to the user; `root`:
    the folder paths are shown relative to)."""
    request = batch.request
    prometheus = request.prometheus_url
    gap_hours = batch.period_seconds * request.time_scale / 3600
    lines = [
        f"up: {len(pids)} processes (PIDs {', '.join(str(pid) for pid in pids)}); "
        f"{request.env}'s runs every {batch.period_seconds:g} s (`{batch.schedule}`: "
        f"{gap_hours:g} h at most between two runs, divided by {request.time_scale:g}), the "
        "first now",
        f"  Prometheus   {prometheus}  (targets: {prometheus}/targets, alerts: {prometheus}/alerts;"
        f" {request.env}'s batch rules, windows divided by {request.time_scale:g}: a run is "
        f"missed after {batch.missed_after_seconds:g} s without a success)",
        f"  Alertmanager http://{LOOPBACK}:{request.alertmanager_port}  "
        f"(routes of {ALERTMANAGER_FILE})",
        f"  Pushgateway  {batch.pushgateway_url}  (runs push as job={batch.job}, "
        f"namespace={batch.namespace}, model_version={batch.model_version})",
        f"  model        {batch.model.digest[:12]} ({batch.model.note})",
        f"  input        {_shown(batch.input, root)} ({batch.input_note})",
        f"  output       {_shown(batch.output, root)} (replaced by every run that succeeds)",
        f"  logs         {state}/*.log (each run's lines: {state}/scheduler.log), the runs: "
        f"{state}/{RUNS_FILE}",
    ]
    if batch.period_seconds > 5 * A_MINUTE:
        every_minute = batch.period_seconds * request.time_scale / A_MINUTE
        lines.append(f"  faster       a run a minute: --time-scale {every_minute:g}")
    lines += [f"  note         {note}" for note in batch.notes]
    lines.append(
        "  rehearse     drift or a failure: --batch-input a drifted table, or one the model "
        "cannot score (runbooks/batch-scoring.md#rehearse-a-batch-environment)"
    )
    lines.append(f"Try in Prometheus ({prometheus}/graph):")
    for meaning, query in queries(job=batch.job, namespace=batch.namespace):
        lines.append(f"  # {meaning}\n  {query}")
    lines.append("Stop everything with: make down")
    return "\n".join(lines)


def queries(*, job: str, namespace: str) -> list[tuple[str, str]]:
    """Ready-to-paste PromQL for what the batch rehearsal shows, each with what it answers."""
    group = f'job="{job}", namespace="{namespace}"'
    return [
        ("rows of the last successful run", f"{contract.ROWS.name}{{{group}}}"),
        (
            "seconds since the last success",
            f"time() - {contract.LAST_SUCCESS.name}{{{group}}}",
        ),
        ("PSI of the last run per feature", f"{records.BATCH_FEATURE_DRIFT.psi}{{{group}}}"),
        ("PSI of the last run's score", f"{records.BATCH_SCORE_DRIFT.psi}{{{group}}}"),
    ]


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)

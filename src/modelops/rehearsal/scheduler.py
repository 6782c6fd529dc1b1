"""The batch rehearsal's scheduler: `modelops-score` run every period, as a CronJob runs it.

Run as `python -m modelops.rehearsal.scheduler CONFIG` (what `modelops up --env <batch
environment>` starts in the background; `batchplan.scheduler_config` wrote CONFIG). The first
run starts at once, then one at every multiple of the period after it. A run never overlaps
another, as the CronJob's `concurrencyPolicy: Forbid` has it: a run still going at a scheduled
time makes the scheduler skip that time. Each run's output goes to this process' log, and a
line per run (its number, start, seconds, exit code) to the ledger (JSON lines). SIGTERM stops
the scheduler: a run going then gets SIGTERM too, as Kubernetes stops a Job's pod (it pushes
its failure and leaves the output as it was).
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from modelops.io import JSONObject

POLL_SECONDS = 0.1
STOP_RUN_SECONDS = 15.0


@dataclass(frozen=True)
class ScheduledRun:
    """One run as the ledger records it."""

    run: int
    started: float
    seconds: float
    exit_code: int


def next_start(first: float, period: float, now: float) -> float:
    """The first scheduled time after `now` (runs are due at `first + k * period`): the times a
    run overlapped are skipped."""
    return first + (math.floor((now - first) / period) + 1) * period


def run(config: JSONObject) -> int:
    """Run the scheduled scorings `config` describes until SIGTERM (or SIGINT); 0 then."""
    stopped = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    command: list[str] = list(config["command"])
    period = float(config["period_seconds"])
    first = time.monotonic()
    number = 0
    with Path(config["ledger"]).open("a", encoding="utf-8") as ledger:
        while not stopped:
            number += 1
            began, wall = time.monotonic(), time.time()
            print(f"scheduler: run {number} starts", flush=True)
            code = _score([*command, "--run-id", f"rehearsal-{number}"], lambda: stopped)
            done = ScheduledRun(number, round(wall, 3), round(time.monotonic() - began, 3), code)
            ledger.write(json.dumps(asdict(done)) + "\n")
            ledger.flush()
            print(f"scheduler: run {number} exited {code} after {done.seconds:g} s", flush=True)
            due = next_start(first, period, time.monotonic())
            while not stopped and time.monotonic() < due:
                time.sleep(min(POLL_SECONDS * 5, max(due - time.monotonic(), 0.0)))
    print(f"scheduler: stopped after {number} runs", flush=True)
    return 0


def _score(command: Sequence[str], stopped: Callable[[], bool]) -> int:
    """One run, its output to ours; SIGTERM to it once `stopped()`, SIGKILL if it lingers."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    try:
        while process.poll() is None and not stopped():
            time.sleep(POLL_SECONDS)
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=STOP_RUN_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
    return process.wait()


if __name__ == "__main__":
    sys.exit(run(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))

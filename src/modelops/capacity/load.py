"""The side effects of a capacity run: the model server started as a pod runs it, one locust
process per step of offered load, and the server's CPU and memory read from its processes.

Every process started here leads its own process group and is stopped by its PID, within a
bounded time, whatever happens meanwhile (an error, Ctrl-C): the server by
`modelops_serving.launch.Server`, each locust run by `_generate`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
from modelops_contract import FEEDBACK_KEY_ENV
from modelops_serving.launch import PARAMETERS_ENV, Server

from modelops.capacity.policy import Usage
from modelops.errors import CapacityError

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PREDICT_PATH = "/api/v1.0/predictions"
LEAD_SECONDS = 1.5
"""From locust's start of the test to the first arrival: every user is spawned by then."""
STARTUP_SECONDS = 30.0
"""What locust may take to import and start, beyond the step itself."""
READY_SECONDS = 120.0
SETTLE_SECONDS = 15.0
"""After a step, how long the server may take to answer one request within the threshold
again (an overloaded step leaves a queue behind) before the next step starts anyway."""
METER_EVERY = 0.25


@dataclass(frozen=True)
class Target:
    """The server under load: where it answers, its process (None: not started here, so its
    CPU and memory are not measured) and the CPUs the server and the generator are pinned to
    (empty: not pinned)."""

    url: str
    pid: int | None = None
    path: str = PREDICT_PATH
    """Where predictions are posted (the protocol: Seldon's by default)."""
    server_cpus: tuple[int, ...] = ()
    generator_cpus: tuple[int, ...] = ()
    workers: int = 0
    threads: int = 0
    """gunicorn's workers and threads per worker (0: not started here, not known)."""


@contextlib.contextmanager
def served(
    model_dir: Path,
    *,
    model_hash: str,
    threshold: float,
    bin_dir: Path,
    log_file: Path,
    cpus: tuple[tuple[int, ...], tuple[int, ...]],
) -> Iterator[Target]:
    """The model server as serving/Dockerfile runs it (`modelops-microservice`, its gunicorn
    workers and threads, the graph parameters and environment a pod gets), on loopback, pinned
    to `cpus[0]`; stopped on leaving, whatever happened."""
    if not (bin_dir / "modelops-microservice").is_file():
        raise CapacityError(f"{bin_dir}/modelops-microservice is missing: `make install` builds it")
    parameters = [{"name": "threshold", "type": "FLOAT", "value": str(threshold)}]
    if model_hash:
        parameters.append({"name": "model_hash", "type": "STRING", "value": model_hash})
    environment = {
        PARAMETERS_ENV: json.dumps(parameters),
        "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus",
        FEEDBACK_KEY_ENV: secrets.token_hex(32),
    }
    server = Server(bin_dir, model_dir, extra_env=environment, log_file=log_file)
    try:
        server.start(ready_within=READY_SECONDS)
    except RuntimeError as exc:
        raise CapacityError(f"the model server did not start on {model_dir}: {exc}") from None
    try:
        assert server.process is not None
        _pin(server.process.pid, cpus[0])
        yield Target(
            server.url,
            server.process.pid,
            server_cpus=cpus[0],
            generator_cpus=cpus[1],
            workers=server.workers,
            threads=server.threads,
        )
    finally:
        server.stop()


def _pin(pid: int, cpus: tuple[int, ...]) -> None:
    """Pin the server and its workers to `cpus` (workers forked later inherit it)."""
    if not cpus:
        return
    root = psutil.Process(pid)
    for process in (root, *root.children(recursive=True)):
        with contextlib.suppress(psutil.Error):
            process.cpu_affinity(list(cpus))


def available_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on."""
    try:
        return tuple(sorted(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux: no pinning
        return ()


def check_answers(target: Target, body: str, *, timeout: float = 10.0) -> None:
    """One request, answered 200, before any load: a server that does not answer, or refuses
    the template's request, stops the run here with the reason.

    Raises:
        CapacityError: no answer, or an answer other than 200.
    """
    address = f"{target.url}{target.path}"
    status, text = post(address, body, timeout=timeout)
    if status == 0:
        raise CapacityError(
            f"nothing answers at {address} ({text}): start the server (`make serve`) or leave "
            "out --url to let `modelops capacity` start one"
        )
    if status != 200:
        raise CapacityError(
            f"{address} answered {status} to the template's request: {text[:300]} (is it this "
            "project's model server, serving a model of this data?)"
        )


def post(address: str, body: str, *, timeout: float) -> tuple[int, str]:
    """POST `body` (JSON) to `address`: (status, answer text); status 0 and the reason when
    nothing answered."""
    request = urllib.request.Request(
        address, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        return 0, str(getattr(error, "reason", error))


def settle(target: Target, body: str, *, threshold: float) -> None:
    """Wait (up to SETTLE_SECONDS) until one request is answered within the threshold again."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        started = time.monotonic()
        status, _ = post(f"{target.url}{target.path}", body, timeout=SETTLE_SECONDS)
        if status == 200 and time.monotonic() - started <= threshold:
            return
        time.sleep(0.5)


@dataclass(frozen=True)
class Generated:
    """What one locust run sent: its samples (seconds after t0), when t0 was (the epoch), and
    the processes' usage over the step."""

    samples: list[tuple[float, float, float, int]]
    t0: float
    usage: Usage


def generate(
    target: Target,
    *,
    rate: float,
    requests: int,
    seconds: float,
    bodies_file: Path,
    workdir: Path,
    timeout: float,
    threshold: float,
) -> Generated:
    """Offer `requests` at `rate` per second to the target (one locust process, open loop),
    and measure the server's and the generator's CPU and memory while it runs.

    Raises:
        CapacityError: locust did not start, crashed, or overran its time (it is killed then).
    """
    users = users_for(rate, threshold=threshold, requests=requests)
    plan_file, out = workdir / "step.json", workdir / "samples.json"
    out.unlink(missing_ok=True)
    plan = {
        "bodies": str(bodies_file),
        "rate": rate,
        "requests": requests,
        "users": users,
        "path": target.path,
        "timeout_seconds": timeout,
        "lead_seconds": LEAD_SECONDS,
        "out": str(out),
    }
    plan_file.write_text(json.dumps(plan), encoding="utf-8")
    limit = math.ceil(LEAD_SECONDS + seconds + timeout + 5)
    command = [
        sys.executable,
        *("-m", "locust", "-f", str(LOCUSTFILE), "--headless"),
        *("-u", str(users), "-r", str(users), "-t", f"{limit}s", "--stop-timeout", "5"),
        *("--host", target.url, "--plan", str(plan_file)),
        *("--loglevel", "WARNING", "--only-summary"),
    ]
    log = workdir / "locust.log"
    readings = _generate(command, log, target, within=limit + STARTUP_SECONDS)
    try:
        written = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        raise CapacityError(f"the load generator wrote no samples; its log ends:\n{tail}") from None
    t0 = float(written["t0"])
    samples = [(float(a), float(b), float(c), int(d)) for a, b, c, d in written["samples"]]
    return Generated(samples, t0, usage_between(readings, t0, t0 + seconds))


def users_for(rate: float, *, threshold: float, requests: int) -> int:
    """Locust users for a step: each has four thresholds between its arrivals, so a slow
    answer rarely delays its next request; at least 4, at most 1,000 (and not more than the
    requests)."""
    return max(1, min(requests, 1000, max(4, math.ceil(rate * 4 * threshold))))


@dataclass(frozen=True)
class Reading:
    """At `at` (the epoch): CPU-seconds the server and the generator used so far, and the
    server's memory (MiB, proportional set size: shared pages counted once)."""

    at: float
    server_cpu: float | None
    server_mib: float | None
    generator_cpu: float | None


def _generate(command: list[str], log: Path, target: Target, *, within: float) -> list[Reading]:
    """Run locust in its own session, pinned to the generator's CPUs, reading CPU and memory
    every METER_EVERY seconds; killed (its whole group) after `within` seconds."""
    with log.open("wb") as output:
        process = psutil.Popen(
            command, stdout=output, stderr=output, stdin=subprocess.DEVNULL, start_new_session=True
        )
    readings: list[Reading] = []
    deadline = time.monotonic() + within
    try:
        if target.generator_cpus:
            with contextlib.suppress(psutil.Error):
                process.cpu_affinity(list(target.generator_cpus))
        while process.poll() is None:
            if time.monotonic() > deadline:
                raise CapacityError(
                    f"the load generator did not finish within {within:g} s and was stopped; "
                    f"its log: {log}"
                )
            readings.append(_read(target.pid, process))
            time.sleep(METER_EVERY)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:]
        raise CapacityError(f"the load generator exited with {process.returncode}:\n{tail}")
    return readings


def _read(server_pid: int | None, generator: psutil.Process) -> Reading:
    server_cpu = server_mib = generator_cpu = None
    with contextlib.suppress(psutil.Error):
        times = generator.cpu_times()
        generator_cpu = times.user + times.system
    if server_pid is not None:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(server_pid)
            family = [root, *root.children(recursive=True)]
            server_cpu, server_mib = 0.0, 0.0
            for process in family:
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    server_cpu += times.user + times.system
                    server_mib += _memory_bytes(process) / 2**20
    return Reading(time.time(), server_cpu, server_mib, generator_cpu)


def _memory_bytes(process: psutil.Process) -> float:
    """Proportional set size where the system tells it (Linux), else the resident set."""
    try:
        return float(process.memory_full_info().pss)
    except (AttributeError, psutil.AccessDenied):
        return float(process.memory_info().rss)


def usage_between(readings: Sequence[Reading], start: float, end: float) -> Usage:
    """CPU (cores) over the readings inside [start, end], and the largest memory among them."""
    inside = [reading for reading in readings if start <= reading.at <= end]
    if len(inside) < 2:
        return Usage()
    first, last = inside[0], inside[-1]
    span = last.at - first.at

    def cores(before: float | None, after: float | None) -> float | None:
        if before is None or after is None or span <= 0:
            return None
        return round((after - before) / span, 2)

    memory = [reading.server_mib for reading in inside if reading.server_mib is not None]
    return Usage(
        server_cpu_cores=cores(first.server_cpu, last.server_cpu),
        server_memory_mib=round(max(memory), 1) if memory else None,
        generator_cpu_cores=cores(first.generator_cpu, last.generator_cpu),
    )

"""Start and stop a rehearsal: the side effects of `modelops up` and `modelops down`.

Every process `up` starts leads its own process group and is recorded, with a marker from its
command line, in `.rehearsal/processes.json`; `down` stops exactly those (SIGTERM, then SIGKILL
of what is left of each group after a grace period), and never a process that merely reused a
recorded PID. If anything fails while starting, what was started is stopped before the error
is raised. `restart` starts one of them again as it was started (a pod restarting).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypedDict

from modelops_contract import FEEDBACK_KEY_ENV, PARAMETERS_ENV

from modelops.errors import RehearsalError
from modelops.io import process_alive
from modelops.paths import REHEARSAL_DIR
from modelops.rehearsal.batchplan import SchedulerConfig
from modelops.rehearsal.plan import (
    INSTALL_ALERTMANAGER,
    INSTALL_PROMETHEUS,
    INSTALL_PUSHGATEWAY,
    LOOPBACK,
    MODEL_COPIES,
    PROCESSES_FILE,
    ServerPlan,
    TrafficConfig,
    TrafficPlan,
    prometheus_config,
    pushgateway_prometheus_config,
    server_parameters,
)

SERVER_CLASS = "modelops_serving.server.ModelServer"
READY_SECONDS = 120.0
STOP_SECONDS = 20.0


@dataclass(frozen=True)
class Started:
    """A process `up` started: what it is, its PID (its group's too), and a line to verify."""

    name: str
    pid: int
    marker: str
    log: str
    command: Sequence[str] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    """With `command`, what it was started with besides this process's environment: enough to
    start it again (`restart`)."""


@dataclass(frozen=True)
class Ports:
    """Where the rehearsal listens, all on loopback."""

    prometheus: int = 9090
    stable_http: int = 9000
    stable_metrics: int = 6000
    canary_http: int = 9001
    canary_metrics: int = 6001


def find_prometheus(environ: Mapping[str, str] = os.environ) -> str:
    """The Prometheus binary: $PROMETHEUS, else `prometheus` on PATH."""
    return _binary(environ, "PROMETHEUS", ("prometheus",), INSTALL_PROMETHEUS)


def find_alertmanager(environ: Mapping[str, str] = os.environ) -> str:
    """The Alertmanager binary: $ALERTMANAGER, else `alertmanager` or Debian's
    `prometheus-alertmanager` on PATH."""
    names = ("alertmanager", "prometheus-alertmanager")
    return _binary(environ, "ALERTMANAGER", names, INSTALL_ALERTMANAGER)


def find_pushgateway(environ: Mapping[str, str] = os.environ) -> str:
    """The Pushgateway binary: $PUSHGATEWAY, else `pushgateway` or Debian's
    `prometheus-pushgateway` on PATH."""
    names = ("pushgateway", "prometheus-pushgateway")
    return _binary(environ, "PUSHGATEWAY", names, INSTALL_PUSHGATEWAY)


def _binary(environ: Mapping[str, str], variable: str, names: Sequence[str], install: str) -> str:
    """The file $`variable` names, else the first of `names` on PATH.

    Raises:
        RehearsalError: there is none, with how to install it (`install`).
    """
    configured = environ.get(variable, "").strip()
    if configured and Path(configured).is_file():
        return configured
    for name in names:
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return found
    raise RehearsalError(install)


@dataclass(frozen=True)
class Alerting:
    """The rules Prometheus loads and the Alertmanager it sends to."""

    rules: str
    """A rules file's text (`rule_files`)."""
    alertmanager_config: str
    alertmanager_port: int
    namespace: str
    """The namespace label every target gets: the one the rules select."""


class _AlertingConfig(TypedDict, total=False):
    """`prometheus_config`'s options for rules and an Alertmanager."""

    namespace: str
    rule_files: list[str]
    alertmanager: str


def up(
    root: Path,
    servers: Sequence[ServerPlan],
    traffic: TrafficPlan | None,
    *,
    prometheus_port: int,
    threshold: float,
    business_value: Mapping[str, float] | None,
    traffic_config: TrafficConfig | None = None,
    alerting: Alerting | None = None,
) -> list[Started]:
    """Start Alertmanager (with `alerting`), Prometheus, the servers and the traffic; return
    them once all are ready.

    Without `traffic` (tests that send their own requests) no traffic process starts.

    Raises:
        RehearsalError: a rehearsal runs already, a port is taken, or a process did not start
            (nothing is left running then).
    """
    prometheus = find_prometheus()
    alertmanager = find_alertmanager() if alerting else None
    ports = [prometheus_port, *(p for s in servers for p in (s.http_port, s.metrics_port))]
    if alerting:
        ports.append(alerting.alertmanager_port)
    state = _fresh_state(root, ports)
    started: list[Started] = []
    try:
        extra: _AlertingConfig = {}
        if alerting and alertmanager:
            extra = _start_alertmanager(alertmanager, alerting, state, started)
            extra["namespace"] = alerting.namespace
        # The servers first: Prometheus' first scrape then finds them up, so a rehearsal in
        # compressed time does not start with a target-down alert for a server still loading.
        # One feedback key for all of them, as one Secret serves a deployment's predictors: a
        # shadow verifies the prediction ids of stable's answers that its feedback carries.
        feedback_key = secrets.token_hex(32)
        servers_started = []
        for server in servers:
            servers_started.append(
                _spawn_server(root, server, state, threshold, business_value, feedback_key)
            )
            started.append(servers_started[-1])
            _record(state, started)
        if alerting:
            url = f"http://{LOOPBACK}:{alerting.alertmanager_port}/-/ready"
            _wait_ready(url, started[0], state)
        for server, process in zip(servers, servers_started, strict=True):
            _wait_ready(f"{server.url}/health/status", process, state)
        address = f"{LOOPBACK}:{prometheus_port}"
        config = prometheus_config(servers, itself=address, **extra)
        _start_prometheus(prometheus, config, address, state, started)
        _wait_scraped(f"http://{address}", [s.metrics_target for s in servers], started[-1])
        if traffic is None:
            return started
        plan_file = state / "traffic.json"
        plan = {**(traffic_config or {}), "plan": asdict(traffic)}
        plan_file.write_text(json.dumps(plan, indent=1), encoding="utf-8")
        _start_python(started, state, "traffic", "modelops.rehearsal.traffic", plan_file)
    except BaseException:
        stop(started)
        (state / PROCESSES_FILE).unlink(missing_ok=True)
        raise
    return started


def up_batch(
    root: Path,
    *,
    prometheus_port: int,
    pushgateway_port: int,
    alerting: Alerting,
    scheduler: SchedulerConfig,
) -> list[Started]:
    """Start Alertmanager, a Pushgateway, a Prometheus scraping it (honor_labels) with
    `alerting`'s rules, and the scheduler that runs `scheduler["command"]` every period; return
    them once Prometheus has scraped the Pushgateway once.

    Raises:
        RehearsalError: a rehearsal runs already, a port is taken, a binary is missing, or a
            process did not start (nothing is left running then).
    """
    prometheus = find_prometheus()
    alertmanager = find_alertmanager()
    pushgateway = find_pushgateway()
    score = Path(scheduler["command"][0])
    if not score.is_file():
        raise RehearsalError(f"{score} is missing: `make install` builds serving/.venv")
    state = _fresh_state(root, [prometheus_port, pushgateway_port, alerting.alertmanager_port])
    started: list[Started] = []
    try:
        extra = _start_alertmanager(alertmanager, alerting, state, started)
        gateway = f"{LOOPBACK}:{pushgateway_port}"
        started.append(
            _spawn(
                "pushgateway",
                [pushgateway, f"--web.listen-address={gateway}"],
                state,
                marker=f"--web.listen-address={gateway}",
            )
        )
        _record(state, started)
        _wait_ready(f"http://{LOOPBACK}:{alerting.alertmanager_port}/-/ready", started[0], state)
        _wait_ready(f"http://{gateway}/-/ready", started[-1], state)
        address = f"{LOOPBACK}:{prometheus_port}"
        config = pushgateway_prometheus_config(
            gateway,
            itself=address,
            rule_files=extra["rule_files"],
            alertmanager=extra["alertmanager"],
        )
        _start_prometheus(prometheus, config, address, state, started)
        _wait_scraped(f"http://{address}", [gateway], started[-1])
        plan_file = state / "scheduler.json"
        plan_file.write_text(json.dumps(scheduler, indent=1), encoding="utf-8")
        _start_python(started, state, "scheduler", "modelops.rehearsal.scheduler", plan_file)
    except BaseException:
        stop(started)
        (state / PROCESSES_FILE).unlink(missing_ok=True)
        raise
    return started


def _fresh_state(root: Path, ports: Sequence[int]) -> Path:
    """The state folder, emptied of the last run's files (released models fetched before are
    kept), once no rehearsal runs and every port is free."""
    if running(root):
        raise RehearsalError("a rehearsal is running already: `make down` stops it first")
    taken = [port for port in ports if not _is_free(port)]
    if taken:
        raise RehearsalError(
            f"port(s) {', '.join(map(str, taken))} on {LOOPBACK} are in use: stop what listens "
            "there, or choose others (modelops up --help)"
        )
    state = root / REHEARSAL_DIR
    state.mkdir(parents=True, exist_ok=True)
    for leftover in state.iterdir():
        if leftover.name != MODEL_COPIES:
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return state


def _start_alertmanager(
    binary: str, alerting: Alerting, state: Path, started: list[Started]
) -> _AlertingConfig:
    """Alertmanager started (and recorded), the rules written: Prometheus' options for them."""
    started.append(_spawn_alertmanager(binary, alerting, state))
    _record(state, started)
    rules = state / "rules.yaml"
    rules.write_text(alerting.rules, encoding="utf-8")
    return {
        "rule_files": [str(rules)],
        "alertmanager": f"{LOOPBACK}:{alerting.alertmanager_port}",
    }


def _start_prometheus(
    binary: str, config_text: str, address: str, state: Path, started: list[Started]
) -> None:
    """Prometheus started with `config_text`, recorded, and ready."""
    config = state / "prometheus.yml"
    config.write_text(config_text, encoding="utf-8")
    started.append(
        _spawn(
            "prometheus",
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={state / 'prometheus-data'}",
                f"--web.listen-address={address}",
                "--storage.tsdb.retention.time=1d",
            ],
            state,
            marker=f"--web.listen-address={address}",
        )
    )
    _record(state, started)
    _wait_ready(f"http://{address}/-/ready", started[-1], state)


def _start_python(
    started: list[Started], state: Path, name: str, module: str, plan_file: Path
) -> None:
    """`python -m module plan_file` started in the background, and recorded."""
    started.append(
        _spawn(
            name,
            [sys.executable, "-m", module, str(plan_file)],
            state,
            marker=str(plan_file),
        )
    )
    _record(state, started)


def down(root: Path) -> list[Started]:
    """Stop every process the last `up` started (those still running); return them."""
    state = root / REHEARSAL_DIR
    recorded = _recorded(state)
    alive = [process for process in recorded if _is_ours(process)]
    stop(alive)
    (state / PROCESSES_FILE).unlink(missing_ok=True)
    return alive


def restart(root: Path, name: str, *, ready: str) -> Started:
    """Stop the recorded process `name` and start it again as it was started, as a pod
    restarts: the same command, parameters and feedback key, in a new process; returned once
    `ready` (a URL) answers.

    Raises:
        RehearsalError: no such process runs, or it did not come back (its log ends the message).
    """
    state = root / REHEARSAL_DIR
    recorded = _recorded(state)
    old = next((p for p in recorded if p.name == name and p.command and _is_ours(p)), None)
    if old is None:
        running = ", ".join(p.name for p in recorded if _is_ours(p)) or "none"
        raise RehearsalError(f"no {name} of a rehearsal runs to restart (running: {running})")
    stop([old])
    new = _spawn(name, list(old.command), state, marker=old.marker, extra_env=old.environment)
    _record(state, [new if process is old else process for process in recorded])
    _wait_ready(ready, new, state)
    return new


def running(root: Path) -> list[Started]:
    """The recorded processes of a rehearsal that still run."""
    return [process for process in _recorded(root / REHEARSAL_DIR) if _is_ours(process)]


def stop(processes: Sequence[Started], *, within: float = STOP_SECONDS) -> None:
    """SIGTERM each process, wait up to `within` s, then SIGKILL what is left of each group."""
    for process in reversed(processes):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + within
    for process in processes:
        while _alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        _reap(process.pid)


def _spawn_alertmanager(binary: str, alerting: Alerting, state: Path) -> Started:
    config = state / "alertmanager.yml"
    config.write_text(alerting.alertmanager_config, encoding="utf-8")
    address = f"{LOOPBACK}:{alerting.alertmanager_port}"
    return _spawn(
        "alertmanager",
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={state / 'alertmanager-data'}",
            f"--web.listen-address={address}",
            "--cluster.listen-address=",  # one instance: no gossip port
        ],
        state,
        marker=f"--web.listen-address={address}",
    )


def _spawn_server(
    root: Path,
    server: ServerPlan,
    state: Path,
    threshold: float,
    business_value: Mapping[str, float] | None,
    feedback_key: str,
) -> Started:
    """One model server, run as the Dockerfile runs it, with the graph parameters of a pod
    and the rehearsal's feedback key (the environment only: no command line shows it)."""
    executable = root / "serving" / ".venv" / "bin" / "modelops-microservice"
    if not executable.is_file():
        raise RehearsalError(f"{executable} is missing: `make install` builds serving/.venv")
    (grpc_port,) = free_ports(1)
    parameters = server_parameters(server, threshold=threshold, business_value=business_value)
    env = {
        PARAMETERS_ENV: json.dumps(parameters),
        "INCLUDE_METRICS_IN_CLIENT_RESPONSE": "false",
        # What the Seldon operator sets in a pod: metrics at /prometheus, not seldon's /metrics.
        "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus",
        "MODELOPS_BIND_HOST": LOOPBACK,
        FEEDBACK_KEY_ENV: feedback_key,
    }
    command = [
        str(executable),
        SERVER_CLASS,
        "--host",
        LOOPBACK,
        "--http-port",
        str(server.http_port),
        "--metrics-port",
        str(server.metrics_port),
        "--grpc-port",
        str(grpc_port),
        "--workers",
        "1",
        "--threads",
        "1",
    ]
    return _spawn(
        server.name, command, state, marker=f"--http-port\0{server.http_port}", extra_env=env
    )


def _spawn(
    name: str,
    command: list[str],
    state: Path,
    *,
    marker: str,
    extra_env: Mapping[str, str] | None = None,
) -> Started:
    """Start `command` detached (its own session and group), output to `<state>/<name>.log`.

    posix_spawn, not subprocess.Popen: the process outlives this one on purpose (`down` stops
    it), and a Popen object would warn when collected while its process still runs.
    """
    log = state / f"{name}.log"
    pid = os.posix_spawnp(
        command[0],
        command,
        {**os.environ, **(extra_env or {})},
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    return Started(name, pid, marker, str(log), tuple(command), dict(extra_env or {}))


def _wait_ready(url: str, process: Started, state: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if not _alive(process.pid):
            break
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(url, timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)
    tail = "\n".join(Path(process.log).read_text(errors="replace").splitlines()[-15:])
    raise RehearsalError(
        f"{process.name} did not become ready at {url} (its log, {process.log}, ends with):\n{tail}"
    )


def _wait_scraped(prometheus: str, targets: Sequence[str], process: Started) -> None:
    """Until Prometheus has scraped every server once (it applies new targets every few
    seconds): a rehearsal is up when its series are there, not when its processes are."""
    deadline = time.monotonic() + READY_SECONDS
    health: dict[str, str] = {}
    while time.monotonic() < deadline and _alive(process.pid):
        with (
            contextlib.suppress(urllib.error.URLError, OSError, ValueError, KeyError),
            urllib.request.urlopen(f"{prometheus}/api/v1/targets", timeout=2) as answer,
        ):
            active = json.loads(answer.read())["data"]["activeTargets"]
            health = {t["labels"]["instance"]: t["health"] for t in active}
            if all(health.get(target) == "up" for target in targets):
                return
        time.sleep(0.2)
    raise RehearsalError(
        f"Prometheus did not scrape every server within {READY_SECONDS:g} s (health: "
        f"{health or 'unknown'}); its log is {process.log}"
    )


def _record(state: Path, started: Sequence[Started]) -> None:
    path = state / PROCESSES_FILE
    staging = path.with_suffix(".tmp")
    staging.touch(mode=0o600)  # the servers' environment holds the rehearsal's feedback key
    staging.write_text(json.dumps([asdict(p) for p in started], indent=1), encoding="utf-8")
    staging.replace(path)


def _recorded(state: Path) -> list[Started]:
    path = state / PROCESSES_FILE
    if not path.is_file():
        return []
    try:
        return [Started(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]
    except (ValueError, TypeError) as exc:
        raise RehearsalError(f"{path} is unreadable ({exc}): stop its processes by hand") from exc


def _is_ours(process: Started) -> bool:
    """Alive, and still the command we started (a PID can be reused after a reboot)."""
    try:
        command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return _alive(process.pid) and sys.platform != "linux"
    return process.marker in command_line


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return process_alive(pid) and not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] == "Z"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _is_free(port: int) -> bool:
    """Nothing listens on `port` (connections of a stopped server in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> Iterator[int]:
    """`count` distinct free ports on loopback (for tests and `--ports auto`)."""
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind((LOOPBACK, 0))
            sockets.append(probe)
        ports = [int(s.getsockname()[1]) for s in sockets]
    finally:
        for probe in sockets:
            probe.close()
    yield from ports

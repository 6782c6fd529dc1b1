"""Start and stop the real microservice on a model: one definition of the command.

The Dockerfile, `make serve`, the smoke request of `make demo`, the tests and the benchmark all
run `modelops-microservice` (seldon-core's microservice bound to one host: see
`modelops_serving.microservice`). Standard library and the telemetry contract only, so the
pipeline's environment can import it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from modelops_contract import PARAMETERS_ENV as PARAMETERS_ENV  # seldon-core's; the contract's

EXECUTABLE = "modelops-microservice"
SERVER_CLASS = "modelops_serving.server.ModelServer"
LOOPBACK = "127.0.0.1"
BIND_HOST_ENV = "MODELOPS_BIND_HOST"
# Chosen from benchmarks/results/serving.md on 2 cores: one process per core, one thread each
# (threads also race in seldon-core's metrics bookkeeping and lose counter increments).
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 1
# seldon-core would copy custom metrics into each response (the server sends none now; kept so
# that a subclass returning `meta.metrics` does not leak them to clients).
SERVER_ENVIRONMENT = {"INCLUDE_METRICS_IN_CLIENT_RESPONSE": "false"}


def command(
    bin_dir: Path,
    *,
    http_port: int,
    metrics_port: int,
    host: str = LOOPBACK,
    workers: int = DEFAULT_WORKERS,
    threads: int = DEFAULT_THREADS,
    server_class: str = SERVER_CLASS,
) -> list[str]:
    """The microservice command line (the Dockerfile sets the same through environment)."""
    return [
        str(bin_dir / EXECUTABLE),
        server_class,
        "--host",
        host,
        "--http-port",
        str(http_port),
        "--metrics-port",
        str(metrics_port),
        "--grpc-port",
        str(free_port()),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A running microservice; use as a context manager so that it always stops.

    It runs in its own process group (same session), which it leads: `stop` asks it to stop
    (it then stops the rest of its group, see `modelops_serving.microservice`) and finally
    kills whatever of the group is left, so no process outlives the `Server`.
    """

    bin_dir: Path
    model_uri: Path
    workers: int = DEFAULT_WORKERS
    threads: int = DEFAULT_THREADS
    extra_env: Mapping[str, str] = field(default_factory=dict)
    log_file: Path | None = None
    http_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    host: str = LOOPBACK
    model_hash: str = ""
    server_class: str = SERVER_CLASS
    inherit_output: bool = False
    process: subprocess.Popen[bytes] | None = None
    started_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{self._client_host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        """Where Prometheus scrapes: `/prometheus`, the path Seldon's operator sets (seldon-core's
        own `/metrics` answers the same here)."""
        return f"http://{self._client_host}:{self.metrics_port}/prometheus"

    @property
    def _client_host(self) -> str:
        """Where a client on this machine reaches the server (IPv6 addresses in brackets)."""
        if self.host in ("0.0.0.0", "::", ""):
            return LOOPBACK
        return f"[{self.host}]" if ":" in self.host else self.host

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, *, ready_within: float | None = 60.0) -> None:
        """Start and wait until /health/status answers 200; raises with the log if it does not.

        `ready_within=None` waits as long as the server runs. Whatever happens meanwhile (the
        server exits, Ctrl-C), nothing is left running.
        """
        started = time.perf_counter()
        try:
            self._spawn()
            self._wait_until_ready(ready_within)
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.perf_counter() - started

    def stop(self, *, within: float = 20.0) -> int | None:
        """Stop gracefully (SIGTERM), then kill what is left of the group; return the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=within)
        with contextlib.suppress(ProcessLookupError):  # raised when the whole group has exited
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()

    def post(
        self, payload: Any, *, raw: bytes | None = None, headers: Sequence[tuple[str, str]] = ()
    ) -> tuple[int, Any]:
        """POST to the prediction endpoint; returns (status, decoded JSON body)."""
        return self.post_to("/api/v1.0/predictions", payload, raw=raw, headers=headers)

    def post_to(
        self,
        path: str,
        payload: Any,
        *,
        raw: bytes | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> tuple[int, Any]:
        """POST to `path`; returns (status, decoded JSON body)."""
        body = raw if raw is not None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=body,
            headers={"Content-Type": "application/json", **dict(headers)},
            method="POST",
        )
        return _call(request)

    def get(self, path: str) -> tuple[int, Any]:
        return _call(urllib.request.Request(f"{self.url}{path}"))

    def _spawn(self) -> None:
        env = {
            **os.environ,
            **SERVER_ENVIRONMENT,
            "MODEL_URI": str(self.model_uri),
            **self.extra_env,
        }
        if self.model_hash:
            parameters = [{"name": "model_hash", "type": "STRING", "value": self.model_hash}]
            env[PARAMETERS_ENV] = json.dumps(parameters)
        line = command(
            self.bin_dir,
            http_port=self.http_port,
            metrics_port=self.metrics_port,
            host=self.host,
            workers=self.workers,
            threads=self.threads,
            server_class=self.server_class,
        )
        if self.inherit_output:
            self.process = subprocess.Popen(line, env=env, process_group=0)
            return
        # The child keeps its own copy of the log's descriptor; ours closes at once.
        with Path(self.log_file or os.devnull).open("wb") as output:
            self.process = subprocess.Popen(
                line, env=env, stdout=output, stderr=subprocess.STDOUT, process_group=0
            )

    def _wait_until_ready(self, within: float | None) -> None:
        assert self.process is not None
        deadline = time.perf_counter() + (within if within is not None else float("inf"))
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.process.returncode}: {self._log()}"
                )
            if self._ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"the server was not ready within {within:g} s: {self._log()}")

    def _ready(self) -> bool:
        try:
            status, _ = self.get("/health/status")
        except OSError:
            return False
        return status == 200

    def _log(self) -> str:
        if self.log_file and self.log_file.exists():
            return self.log_file.read_text(errors="replace")[-2000:]
        return "(its output is above)" if self.inherit_output else "(no log file)"


def _call(request: urllib.request.Request) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")

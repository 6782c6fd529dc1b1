"""Start and stop the real microservice on a model: one definition of the command.

The Dockerfile, `make serve`, the smoke request of `make demo`, the tests and the benchmark all
run `modelops-microservice` (seldon-core's microservice with this server's error handlers: see
`modelops_serving.microservice`). Standard library only, so the pipeline's environment can
import it too.
"""

from __future__ import annotations

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

EXECUTABLE = "modelops-microservice"
SERVER_CLASS = "modelops_serving.server.ModelServer"
# Chosen from benchmarks/results/serving.md on 2 cores: one process per core, one thread each
# (threads also race in seldon-core's metrics bookkeeping and lose counter increments).
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 1
# Without this, seldon-core copies every custom metric (one per scored row) into each response.
SERVER_ENVIRONMENT = {"INCLUDE_METRICS_IN_CLIENT_RESPONSE": "false"}


def command(
    bin_dir: Path,
    *,
    http_port: int,
    metrics_port: int,
    workers: int = DEFAULT_WORKERS,
    threads: int = DEFAULT_THREADS,
    server_class: str = SERVER_CLASS,
) -> list[str]:
    """The microservice command line (the Dockerfile sets the same through environment)."""
    return [
        str(bin_dir / EXECUTABLE),
        server_class,
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
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A running microservice on loopback; use as a context manager so it always stops."""

    bin_dir: Path
    model_uri: Path
    workers: int = DEFAULT_WORKERS
    threads: int = DEFAULT_THREADS
    extra_env: Mapping[str, str] = field(default_factory=dict)
    log_file: Path | None = None
    http_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    server_class: str = SERVER_CLASS
    process: subprocess.Popen[bytes] | None = None
    started_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

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

    def start(self, *, ready_within: float = 60.0) -> None:
        """Start and wait until /health/status answers 200; raises with the log if it does not."""
        env = {
            **os.environ,
            **SERVER_ENVIRONMENT,
            "MODEL_URI": str(self.model_uri),
            **self.extra_env,
        }
        line = command(
            self.bin_dir,
            http_port=self.http_port,
            metrics_port=self.metrics_port,
            workers=self.workers,
            threads=self.threads,
            server_class=self.server_class,
        )
        started = time.perf_counter()
        # The child keeps its own copy of the log's descriptor; ours closes at once.
        with Path(self.log_file or os.devnull).open("wb") as output:
            self.process = subprocess.Popen(
                line, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = started + ready_within
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.process.returncode}: {self._log()}"
                )
            if self._ready():
                self.started_seconds = time.perf_counter() - started
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server was not ready within {ready_within:g} s: {self._log()}")

    def stop(self, *, within: float = 20.0) -> int | None:
        """Stop gracefully (SIGTERM to the process group), then forcefully; return the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
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

    def _ready(self) -> bool:
        try:
            status, _ = self.get("/health/status")
        except OSError:
            return False
        return status == 200

    def _log(self) -> str:
        if self.log_file and self.log_file.exists():
            return self.log_file.read_text(errors="replace")[-2000:]
        return "(no log file)"


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

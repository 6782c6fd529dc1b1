"""Starting and stopping the server as `make serve` and the image do: nothing is left behind.

Each test starts the real command, waits until it answers, signals the one process a person or
Kubernetes would signal, and then asks the kernel: the command exited within seconds, no process
it started is left, the ports can be listened on again, and while it ran every server (REST,
metrics, and gRPC where one is asked for) listened on the address it was told, never on 0.0.0.0.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from modelops_serving.artifact import content_hash
from modelops_serving.launch import (
    BIND_HOST_ENV,
    EXECUTABLE,
    PARAMETERS_ENV,
    SERVER_CLASS,
    free_port,
)

from tests.serving import dockerfile
from tests.serving.conftest import SERVING_BIN, SERVING_DIR
from tests.serving.processes import alive, can_listen, wait_for_listeners

READY_WITHIN = 120.0  # loading took up to 45 s at load 10 on 2 cores
# The gunicorn workers' exit is CPU-bound: 2 s with one worker; 7 to 10 s with two at load 8.
STOPPED_WITHIN = 15.0


def _wait_until_ready(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        assert process.poll() is None, f"it exited with {process.returncode}"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5):
            return
        time.sleep(0.2)
    raise AssertionError(f"not ready within {READY_WITHIN:g} s")


@contextlib.contextmanager
def _started(
    line: list[str],
    env: dict[str, str],
    log: Path,
    *,
    start_new_session: bool = False,
    process_group: int | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `line`; afterwards kill, by pid, whatever of it a failed test left running."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            line,
            cwd=SERVING_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=start_new_session,
            process_group=process_group,
        )
    try:
        yield process
    finally:
        for pid in {*alive(session=process.pid), *alive(group=process.pid)}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()


def _stop(process: subprocess.Popen[bytes], how: signal.Signals) -> tuple[int, float]:
    """Send `how` to `process` alone; its exit code and how long it took to exit."""
    process.send_signal(how)
    sent = time.monotonic()
    code = process.wait(timeout=STOPPED_WITHIN + 30)
    return code, time.monotonic() - sent


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MODEL_HASH", BIND_HOST_ENV)}


def test_ctrl_c_on_serve_stops_every_process_and_frees_the_ports(
    model_dir: Path, tmp_path: Path
) -> None:
    """`make serve`'s command; the terminal's Ctrl-C reaches it alone (the server has a
    process group of its own), so SIGINT goes to that process only. With a gRPC server asked
    for (GRPC_WORKERS), which binds to the host too and is stopped with the rest."""
    http_port, metrics_port = free_port(), free_port()
    line = [str(SERVING_BIN / "python"), "-m", "modelops_serving.cli", "serve", str(model_dir)]
    line += ["--port", str(http_port), "--metrics-port", str(metrics_port)]
    log = tmp_path / "serve.log"
    env = {**_clean_environment(), "GRPC_WORKERS": "1"}
    with _started(line, env, log, start_new_session=True) as cli:
        _wait_until_ready(cli, f"http://127.0.0.1:{http_port}/health/status")
        listeners = wait_for_listeners(lambda: alive(session=cli.pid), 3, within=60)
        code, seconds = _stop(cli, signal.SIGINT)
        left = alive(session=cli.pid)
    output = log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert seconds < STOPPED_WITHIN, f"serve took {seconds:.1f} s to stop"
    assert left == [], f"processes left running: {left}"
    assert can_listen(http_port), "the HTTP port is still held"
    assert can_listen(metrics_port), "the metrics port is still held"
    assert len(listeners) == 3, f"REST, metrics and gRPC should have listened: {listeners}"
    assert {address for address, _ in listeners} == {"127.0.0.1"}, listeners
    assert "content hash NOT verified" in output, "without MODEL_HASH, the log says so"
    assert "serve: stopped (exit code 0)" in output


def test_the_image_entrypoint_stops_all_of_itself_on_sigterm_to_its_first_process(
    model_dir: Path, tmp_path: Path
) -> None:
    """What Kubernetes does to a pod: SIGTERM to the container's first process only.

    The image's own command and environment, in the serving environment (no Docker engine runs
    here), as a process-group leader like a container's first process. The bind host is
    another loopback address instead of the image's 0.0.0.0, which tests must not listen on.
    """
    host, ports = "127.0.0.2", {"HTTP": free_port(), "METRICS": free_port(), "GRPC": free_port()}
    env = {
        **_clean_environment(),
        **dockerfile.environment(),
        "PATH": f"{SERVING_BIN}{os.pathsep}{os.environ['PATH']}",
        BIND_HOST_ENV: host,
        "MODEL_URI": str(model_dir),
        PARAMETERS_ENV: json.dumps(
            [{"name": "model_hash", "type": "STRING", "value": content_hash(model_dir)}]
        ),
        **{f"PREDICTIVE_UNIT_{name}_SERVICE_PORT": str(port) for name, port in ports.items()},
    }
    log = tmp_path / "image.log"
    with _started(dockerfile.entrypoint(), env, log, process_group=0) as first:
        _wait_until_ready(first, f"http://{host}:{ports['HTTP']}/health/status")
        listeners = wait_for_listeners(lambda: alive(group=first.pid), 2, within=60)
        time.sleep(1.0)  # a gRPC server, were one started, would be listening by now
        listeners = wait_for_listeners(lambda: alive(group=first.pid), 2, within=60)
        code, seconds = _stop(first, signal.SIGTERM)
        left = alive(group=first.pid)
    output = log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert seconds < STOPPED_WITHIN, f"it took {seconds:.1f} s to stop"
    assert left == [], f"processes left running: {left}"
    # No gRPC server: the executor calls the model over REST (serving/README.md).
    assert listeners == {(host, ports["HTTP"]), (host, ports["METRICS"])}
    assert all(can_listen(port) for port in ports.values())
    assert "content hash verified" in output


def test_flasks_development_server_is_refused(tmp_path: Path) -> None:
    """seldon-core's debug mode runs Flask's development server on 0.0.0.0."""
    line = [str(SERVING_BIN / EXECUTABLE), SERVER_CLASS, "--debug"]
    done = subprocess.run(line, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode != 0
    assert "is not supported here" in done.stderr

"""`modelops` commands that start warm: a fork server for the tests' pipeline stages.

Every `dvc repro` a test runs starts a fresh Python per stage, and most of a stage's time on
the tests' small projects is importing pandas, scikit-learn, MLflow and Deepchecks (about 14 of
a 3,000-row pipeline's 25 seconds). Each test process starts one server (`start`) that imports
those libraries once and listens on a Unix socket in the run's temporary folder; a `modelops`
shim, first on the PATH the tests give `dvc` (`command_path`), hands its arguments, working
folder, environment and standard streams to the server, which forks a child that runs
`modelops.cli.main` exactly as the installed script would. The child is a real process: its own
pid, the caller's streams, cwd and environment, its own signals, and its exit code (or the signal
that ended it) is the shim's. Nothing of `modelops` itself is imported before the fork, so its
module state (the orphan watch's parent, the interrupt flag) is a fresh process's.

What the shim cannot give is the parentage: the child's parent is the server, not dvc. A shim
that is interrupted passes the signal on, and a shim that dies (killed with its dvc) gets its
child interrupted, as `modelops.orphan` would; the test of that watch itself
(tests/pipeline/test_killed_dvc.py) runs the installed script, not the shim. Without a server
(it failed to start, or is still importing) the shim runs the installed script.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOCKET_VARIABLE = "MODELOPS_TEST_WARM_SOCKET"
SHIMS_VARIABLE = "MODELOPS_TEST_WARM_SHIMS"
LIFETIME_SECONDS = 3 * 3600
"""A server never outlives a test run: it stops on its own after this, or once its test
process is gone."""

PRELOADED = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "scipy.stats",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.inspection",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "skops.io",
    "sqlalchemy",
    "mlflow",
    "mlflow.artifacts",
    "mlflow.sklearn",
    "mlflow.store.tracking.sqlalchemy_store",
    "deepchecks.tabular",
    "deepchecks.tabular.checks",
    "deepchecks.tabular.suites",
    "dvc.api",
    "pygit2",
    "pydantic",
    "yaml",
    "jinja2",
)
"""What the stages import that is not `modelops` (measured with `python -X importtime`)."""

_HEADER = struct.Struct("!I")
_SHIM = """#!{python} -S
# The tests' `modelops`: runs in the warm server (tests/warm.py), or as installed without one.
import json, os, signal, socket, struct, sys

REAL = {real!r}
path = os.environ.get({socket_variable!r}, "")
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    server.connect(path)
except OSError:
    os.execv(REAL, [REAL, *sys.argv[1:]])
request = json.dumps(
    {{"argv": [REAL, *sys.argv[1:]], "cwd": os.getcwd(), "env": dict(os.environ)}}
).encode()
socket.send_fds(server, [struct.pack("!I", len(request))], [0, 1, 2])
server.sendall(request)
replies = server.makefile("r")
started = replies.readline().split()
if not started:  # the server refused the request: run as installed
    os.execv(REAL, [REAL, *sys.argv[1:]])
child = int(started[1])
for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(number, lambda received, _: os.kill(child, received))
ended = replies.readline().split()
if not ended:
    sys.exit("modelops (tests/warm.py): the warm server stopped before the command ended")
if ended[0] == "signal":
    signal.signal(int(ended[1]), signal.SIG_DFL)
    os.kill(os.getpid(), int(ended[1]))
sys.exit(int(ended[1]))
"""


@dataclass(frozen=True)
class WarmServer:
    """A running server (its process, stopped by its pid), socket and the shim's folder."""

    process: subprocess.Popen[bytes]
    socket: Path
    shims: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(folder: Path, real: Path) -> WarmServer:
    """Start a server in `folder` for the installed script `real`; it warms up in the background
    (the shim runs `real` until it listens)."""
    folder.mkdir(parents=True, exist_ok=True)
    shims = folder / "bin"
    shims.mkdir(exist_ok=True)
    shim = shims / "modelops"
    shim.write_text(
        _SHIM.format(python=sys.executable, real=str(real), socket_variable=SOCKET_VARIABLE)
    )
    shim.chmod(0o755)
    path = folder / "server.sock"
    with (folder / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.warm", str(path), str(os.getpid())],
            cwd=Path(__file__).resolve().parents[1],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    return WarmServer(process=server, socket=path, shims=shims)


def serve(path: Path, owner: int) -> None:
    """Import the libraries, then fork a child per request until stopped (SIGTERM), the owner
    is gone or the lifetime is up."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in PRELOADED:
            __import__(module)
    assert threading.active_count() == 1, "a fork server must hold no other thread"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    binding = path.with_name(f"{path.name}.tmp")
    listener.bind(str(binding))
    listener.listen(64)
    binding.rename(path)  # clients connect only to a listening server
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_read, selectors.EVENT_READ, "wake")
    children: dict[int, socket.socket] = {}
    deadline = time.monotonic() + LIFETIME_SECONDS
    while not stopping and time.monotonic() < deadline and os.getppid() == owner:
        for key, _ in selector.select(timeout=1.0):
            if key.data == "accept":
                connection, _ = listener.accept()
                child = _fork(connection, [listener.fileno(), wake_read, wake_write], selector)
                if child is not None:
                    children[child] = connection
                    selector.register(connection, selectors.EVENT_READ, child)
            elif key.data == "wake":
                os.read(wake_read, 4096)
            else:  # the shim is gone (killed): interrupt its child, as the orphan watch would
                with contextlib.suppress(OSError):
                    if not key.fileobj.recv(1, socket.MSG_PEEK):  # type: ignore[union-attr]
                        selector.unregister(key.fileobj)
                        os.kill(key.data, signal.SIGINT)
        _reap(children, selector)
    for child in children:
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
    path.unlink(missing_ok=True)


def _fork(
    connection: socket.socket, inherited: list[int], selector: selectors.BaseSelector
) -> int | None:
    """Read one request and fork its child; None when the request was broken."""
    try:
        header, fds, _, _ = socket.recv_fds(connection, _HEADER.size, 3)
        (size,) = _HEADER.unpack(header)
        body = b""
        while len(body) < size:
            chunk = connection.recv(size - len(body))
            if not chunk:
                raise OSError("the shim closed the connection mid-request")
            body += chunk
        request = json.loads(body)
    except (OSError, ValueError, struct.error):
        connection.close()
        return None
    child = os.fork()
    if child == 0:
        selector.close()
        for fd in inherited:
            os.close(fd)
        connection.close()
        _run(request, fds)
    for fd in fds:
        os.close(fd)
    # The server's log (its stderr): a line per command, to count what a test run ran.
    print(child, *request["argv"][1:], f"(in {request['cwd']})", file=sys.stderr, flush=True)
    connection.sendall(f"pid {child}\n".encode())
    return child


def _run(request: dict[str, Any], fds: list[int]) -> None:
    """In the child: become the command the shim was asked to run, then exit with its code."""
    signal.set_wakeup_fd(-1)
    for number in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    _reseed()
    code = 0
    try:
        from modelops.cli import main

        code = main()
    except SystemExit as exit_:
        code = _exit_code(exit_.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:  # the interpreter's own last word on any exception
        traceback.print_exc()
        code = 1
    threading._shutdown()  # type: ignore[attr-defined] # joined as at a normal exit
    atexit._run_exitfuncs()
    _flush()
    os._exit(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _reseed() -> None:
    """A fresh process draws fresh random state; a fork would share the server's."""
    import random

    import numpy as np

    random.seed()
    np.random.seed()


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _reap(children: dict[int, socket.socket], selector: selectors.BaseSelector) -> None:
    """Tell each shim whose child ended how it ended."""
    while children:
        try:
            child, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if child == 0:
            return
        connection = children.pop(child, None)
        if connection is None:
            continue
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(connection)
        ended = (
            f"signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exit {os.WEXITSTATUS(status)}"
        )
        with contextlib.suppress(OSError):
            connection.sendall(f"{ended}\n".encode())
        connection.close()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]))

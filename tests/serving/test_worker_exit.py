"""A gunicorn worker of `modelops-microservice` ends as `sys.exit` would, without the
interpreter's teardown (`microservice._end_worker`).

The worker here is a fork made inside `microservice.main`, as gunicorn's are, in the serving
environment's Python. What it prints without flushing must still come out; its exit code must
reach the process that waits for it (gunicorn's master halts on a worker's boot-error codes);
its atexit handlers must run (the telemetry writes its last counts in one); and an object that
only the teardown would delete must not be deleted.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.serving.conftest import SERVING_BIN

FORKS_A_WORKER = r"""
import atexit, json, os, sys
from pathlib import Path
from modelops_serving import microservice

marker, code = Path(sys.argv[1]), json.loads(sys.argv[2])

class TornDown:
    def __del__(self):
        with marker.open("a") as out:
            out.write("torn down\n")

def run_one_worker(host, rest):
    global kept
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        kept = TornDown()
        atexit.register(lambda: marker.open("a").write("atexit\n"))
        print("the worker answered")  # left in the buffer: stdout is a pipe
        sys.exit(code)
    _, status = os.waitpid(pid, 0)
    print("the worker exited with", os.waitstatus_to_exitcode(status))

microservice._run = run_one_worker
microservice.main([])
"""


@pytest.mark.parametrize(
    ("code", "exit_code", "stderr"),
    [(0, 0, ""), (3, 3, ""), (None, 0, ""), ("the model did not load", 1, "did not load")],
)
def test_a_worker_ends_with_its_code_and_output_and_no_teardown(
    tmp_path: Path, code: int | str | None, exit_code: int, stderr: str
) -> None:
    marker = tmp_path / "worker-ended"
    ran = subprocess.run(
        [str(SERVING_BIN / "python"), "-c", FORKS_A_WORKER, str(marker), json.dumps(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        "the worker answered",
        f"the worker exited with {exit_code}",
    ]
    assert stderr in ran.stderr
    assert marker.read_text() == "atexit\n", "the worker must run its atexit handlers only"

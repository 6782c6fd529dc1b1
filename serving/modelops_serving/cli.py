"""`python -m modelops_serving.cli serve|smoke MODEL_DIR`: what `make serve` and `make demo` run.

- `serve` runs the microservice in the foreground until Ctrl-C (or SIGTERM, SIGHUP), then
  stops every process it started (gunicorn masters and workers, the metrics and gRPC servers)
  and returns with no port held. The microservice runs in a process group of its own, so a
  terminal's Ctrl-C reaches only this process, which then stops the server in order.
- `smoke` starts the microservice, answers one request with the model's own input example,
  stops it cleanly, and exits non-zero if any of that failed (the last step of `make demo`).

Both listen on 127.0.0.1 unless `--host` (or `MODELOPS_BIND_HOST`) says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from modelops_serving.artifact import read_artifact
from modelops_serving.launch import BIND_HOST_ENV, LOOPBACK, Server

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Stopped(BaseException):
    """A stop signal arrived (a BaseException, like KeyboardInterrupt, so nothing swallows it)."""


def example_request(model_dir: Path) -> dict[str, Any]:
    """A request made of the model's own input example (one row)."""
    artifact = read_artifact(model_dir)
    return {"data": {"names": list(artifact.names), "ndarray": [list(artifact.example_rows[0])]}}


def curl_command(url: str, request: dict[str, Any]) -> str:
    return (
        f"curl -s -X POST {url}/api/v1.0/predictions -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(request))}"
    )


def serve(server: Server, request: dict[str, Any]) -> int:
    """Run `server` in the foreground until a stop signal; 0 if it then stopped cleanly."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped(signum)

    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, stop)
    try:
        server.start(ready_within=None)  # loading may take long on a busy machine
        print(f"serve: ready on {server.url} (metrics: {server.metrics_url}); Ctrl-C stops it")
        print(f"serve: try {curl_command(server.url, request)}", flush=True)
        assert server.process is not None
        server.process.wait()
    except _Stopped:
        pass
    except RuntimeError as error:  # it exited, or was not ready in time
        print(f"serve: {error}", file=sys.stderr)
        return 1
    finally:
        for stop_signal in STOP_SIGNALS:
            signal.signal(stop_signal, signal.SIG_IGN)
        code = server.stop()
    print(f"serve: stopped (exit code {code})", flush=True)
    return 0 if code == 0 else 1


def smoke(server: Server, request: dict[str, Any]) -> int:
    """Start `server`, send one request, stop it; 0 if all of that worked."""
    with server:
        print(f"serve: microservice ready on {server.url} in {server.started_seconds:.1f} s")
        print(f"serve: {curl_command(server.url, request)}")
        status, body = server.post(request)
        print(f"serve: HTTP {status} {json.dumps(body)}")
    code = server.process.returncode if server.process else None
    print(f"serve: stopped cleanly (exit code {code})" if code == 0 else f"serve: exit code {code}")
    return 0 if status == 200 and code == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops_serving.cli")
    parser.add_argument("action", choices=("serve", "smoke"))
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--port", type=int, default=9000, help="HTTP port (serve)")
    parser.add_argument("--metrics-port", type=int, default=6000, help="metrics port (serve)")
    parser.add_argument(
        "--host",
        default=os.environ.get(BIND_HOST_ENV) or LOOPBACK,
        help=f"address to listen on (default: ${BIND_HOST_ENV}, else {LOOPBACK})",
    )
    args = parser.parse_args(argv)
    request = example_request(args.model_dir)
    bin_dir = Path(sys.executable).parent
    model_dir = args.model_dir.resolve()
    if args.action == "smoke":
        return smoke(Server(bin_dir, model_dir, workers=1, host=args.host), request)
    server = Server(
        bin_dir,
        model_dir,
        http_port=args.port,
        metrics_port=args.metrics_port,
        host=args.host,
        inherit_output=True,
    )
    return serve(server, request)


if __name__ == "__main__":
    sys.exit(main())

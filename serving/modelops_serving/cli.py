"""`python -m modelops_serving.cli serve|smoke MODEL_DIR`: what `make serve` and `make demo` run.

- `serve` prints a ready-to-paste request, then becomes the microservice (foreground, Ctrl-C
  stops it).
- `smoke` starts the microservice, answers one request with the model's own input example,
  stops it cleanly, and exits non-zero if any of that failed (the last step of `make demo`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from modelops_serving.artifact import read_artifact
from modelops_serving.launch import SERVER_ENVIRONMENT, Server, command


def example_request(model_dir: Path) -> dict[str, Any]:
    """A request made of the model's own input example (one row)."""
    artifact = read_artifact(model_dir)
    return {"data": {"names": list(artifact.names), "ndarray": [list(artifact.example_rows[0])]}}


def curl_command(url: str, request: dict[str, Any]) -> str:
    return (
        f"curl -s -X POST {url}/api/v1.0/predictions -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(request))}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops_serving.cli")
    parser.add_argument("action", choices=("serve", "smoke"))
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--port", type=int, default=9000, help="HTTP port (serve)")
    parser.add_argument("--metrics-port", type=int, default=6000, help="metrics port (serve)")
    args = parser.parse_args(argv)
    request = example_request(args.model_dir)
    bin_dir = Path(sys.executable).parent
    if args.action == "serve":
        url = f"http://127.0.0.1:{args.port}"
        print(
            f"serving {args.model_dir} on {url} "
            f"(metrics: http://127.0.0.1:{args.metrics_port}/metrics)"
        )
        print(f"try: {curl_command(url, request)}", flush=True)
        line = command(bin_dir, http_port=args.port, metrics_port=args.metrics_port)
        env = {**os.environ, **SERVER_ENVIRONMENT, "MODEL_URI": str(args.model_dir.resolve())}
        os.execve(line[0], line, env)
    with Server(bin_dir, args.model_dir.resolve(), workers=1) as server:
        print(
            f"serve: seldon-core-microservice ready on {server.url} "
            f"in {server.started_seconds:.1f} s"
        )
        print(f"serve: {curl_command(server.url, request)}")
        status, body = server.post(request)
        print(f"serve: HTTP {status} {json.dumps(body)}")
    code = server.process.returncode if server.process else None
    print(f"serve: stopped cleanly (exit code {code})" if code == 0 else f"serve: exit code {code}")
    return 0 if status == 200 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

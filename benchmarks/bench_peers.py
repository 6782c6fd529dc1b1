"""Our server against MLServer on the same model, interleaved in one run; benchmarks/results/peers.*

MLServer (`mlserver` + `mlserver-mlflow`, two parallel workers) is what a user would pick instead
of a seldon-core Python component. It cannot share an environment with seldon-core 1.17, so it
runs from its own virtualenv, named by `--mlserver-venv` or `$MODELOPS_MLSERVER_VENV` (made
with `python3.11 -m venv DIR && DIR/bin/pip install` and the pins of `MLSERVER_PACKAGES`; uvloop
0.23 does not start, SeldonIO/MLServer#2286). Both servers are up at once and take turns point
by point, measured by wrk (it corrects for coordinated omission), `OMP_NUM_THREADS=1` for both,
on rows without missing values (MLServer's pandas codec refuses nulls in FP64 columns).
`bench_capacity` measures the same MLServer with these pieces (`MLServer`, `v2_body`,
`MLSERVER_VENV_ENV`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from modelops_serving.launch import Server, free_port
from modelops_serving.v2 import request_body

from benchmarks.bench_pipeline import machine, write_results
from benchmarks.bench_serving import SERVING_BIN, _load, _wrk, trained_model

REPO_ROOT = Path(__file__).resolve().parents[1]

POINTS = ((1, 8), (100, 8), (1, 1))
ROUNDS = 3
MLSERVER_PACKAGES = (
    "mlserver==1.7.1",
    "mlserver-mlflow==1.7.1",
    "uvloop==0.21.0",
    "mlflow==3.17.2",
    "scikit-learn==1.7.2",
    "skops==0.16.0",
)
"""MLServer's virtualenv: the runtime KServe would use for an MLflow model, and the model's
libraries at the versions of uv.lock."""
MLSERVER_VENV_ENV = "MODELOPS_MLSERVER_VENV"
"""Where MLServer's virtualenv is when `--mlserver-venv` is not given."""


def mlserver_venv_problem(venv: Path | None) -> str | None:
    """Why MLServer cannot run from `venv` (None: it can), with how to make it."""
    if venv is None:
        return f"no MLServer virtualenv given (--mlserver-venv DIR or ${MLSERVER_VENV_ENV})"
    if not (venv / "bin" / "mlserver").is_file():
        return (
            f"{venv}/bin/mlserver is missing: make it with `python3.11 -m venv {venv} && "
            f"{venv}/bin/pip install {' '.join(MLSERVER_PACKAGES)}`"
        )
    return None


class MLServer:
    """`mlserver start` on one MLflow model directory, on loopback, two workers; pinned to
    `cpus` (every process it starts inherits them) when given."""

    name = "churn"
    """The model's name: its V2 paths are /v2/models/<name>/..."""

    def __init__(self, venv: Path, model_dir: Path, cpus: tuple[int, ...] = ()) -> None:
        self.venv, self.model_dir, self.cpus = venv, model_dir, cpus
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.folder = Path(tempfile.mkdtemp(prefix="mlserver-"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        settings = {
            "host": "127.0.0.1",
            "http_port": self.http_port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "parallel_workers": 2,
        }
        (self.folder / "settings.json").write_text(json.dumps(settings))
        model = {
            "name": self.name,
            "implementation": "mlserver_mlflow.MLflowRuntime",
            "parameters": {"uri": str(self.model_dir)},
        }
        (self.folder / "model-settings.json").write_text(json.dumps(model))
        env = {
            **os.environ,
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "OMP_NUM_THREADS": "1",
        }
        self.process = subprocess.Popen(
            [str(self.venv / "bin" / "mlserver"), "start", str(self.folder)],
            env=env,
            stdout=(self.folder / "log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, self.cpus)) if self.cpus else None,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(urllib.error.URLError, OSError):
                ready = f"{self.url}/v2/models/{self.name}/ready"
                with urllib.request.urlopen(ready, timeout=2) as answer:
                    if answer.status == 200:
                        return
            time.sleep(0.5)
        log = (self.folder / "log").read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"MLServer did not become ready:\n{log}")

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def v2_body(frame: Any) -> bytes:
    """An Open Inference Protocol request, one input per column (the server's own
    `request_body`), marked for MLServer's codec as a DataFrame (our server ignores the mark)."""
    body = request_body(list(frame.columns), frame.astype(object).to_numpy().tolist())
    body["parameters"] = {"content_type": "pd"}
    return json.dumps(body).encode()


def seldon_body(frame: Any) -> bytes:
    rows = frame.astype(object).to_numpy().tolist()
    return json.dumps({"data": {"names": list(frame.columns), "ndarray": rows}}).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mlserver-venv",
        type=Path,
        default=os.environ.get(MLSERVER_VENV_ENV) or None,
        help=f"MLServer's virtualenv (default ${MLSERVER_VENV_ENV})",
    )
    args = parser.parse_args()
    problem = mlserver_venv_problem(args.mlserver_venv)
    if problem is not None:
        sys.exit(f"bench_peers: {problem}")
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("bench_peers needs wrk (apt-get install wrk)")
    model_dir, frame = trained_model()
    complete = frame.dropna().head(100)
    ours = Server(SERVING_BIN, model_dir)
    peer = MLServer(args.mlserver_venv, model_dir)
    result: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "load_before": _load(),
        "points": [],
    }
    try:
        ours.start()
        peer.start()
        for batch, concurrency in POINTS:
            bodies = {
                "modelops": seldon_body(complete.head(batch)),
                "mlserver": v2_body(complete.head(batch)),
            }
            for round_number in range(ROUNDS):
                for name, target, path in (
                    ("modelops", ours, "/api/v1.0/predictions"),
                    ("mlserver", peer, f"/v2/models/{peer.name}/infer"),
                ):
                    run = _wrk(wrk, target, bodies[name], concurrency=concurrency, path=path)
                    run.update(
                        server=name, batch=batch, concurrency=concurrency, round=round_number
                    )
                    result["points"].append(run)
                    print(json.dumps(run), flush=True)
    finally:
        ours.stop()
        peer.stop()
    result["load_after"] = _load()
    write_results("peers", result, markdown(result))
    return 0


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Our server against MLServer",
        "",
        f"Machine: {result['machine']}. `python -m benchmarks.bench_peers --mlserver-venv DIR`. "
        f"Date: {result['date']}. Load averages before: {result['load_before']}, after: "
        f"{result['load_after']}. wrk, 5 s per point, {ROUNDS} interleaved rounds (medians); "
        "both servers 2 workers, OMP_NUM_THREADS=1, the same model and rows.",
        "",
        "| rows/request | concurrency | server | requests/s | p50 ms | p99 ms | max ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ratios = []
    for batch, concurrency in POINTS:
        medians = {}
        for name in ("modelops", "mlserver"):
            runs = [
                p
                for p in result["points"]
                if (p["server"], p["batch"], p["concurrency"]) == (name, batch, concurrency)
            ]
            median = {
                key: round(statistics.median(r[key] for r in runs), 2)
                for key in ("per_second", "p50_ms", "p99_ms", "max_ms")
            }
            medians[name] = median
            errors = sum(r["errors"] for r in runs)
            lines.append(
                f"| {batch} | {concurrency} | {name} | {median['per_second']} | "
                f"{median['p50_ms']} | {median['p99_ms']} | {median['max_ms']} | {errors} |"
            )
        ratio = medians["modelops"]["per_second"] / max(medians["mlserver"]["per_second"], 1e-9)
        ratios.append(f"{batch} row(s) at concurrency {concurrency}: {ratio:.1f}x")
    lines += ["", "Throughput, ours over MLServer's: " + "; ".join(ratios) + ".", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

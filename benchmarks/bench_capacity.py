"""The capacity of one replica of the template's model; benchmarks/results/capacity.{json,md}.

`python -m benchmarks.bench_capacity` (part of `make bench`): the search of `modelops
capacity` (the same policy, the same locust steps, open loop, coordinated omission corrected)
against our server started as a pod runs it, pinned to the CPUs of the template's production
pod (`resources.cpu_limit` 1) with locust on the other, at 1 and 100 rows per request, for the
template's latency objective (p99 within 100 ms, no error).

A point is (server, protocol, rows per request): `POINTS` lists (server, protocol) pairs and
`ROWS` the sizes. A protocol is where requests go and how a table becomes a body (`PROTOCOLS`);
a server is a running target (`SERVERS`: started once, measured at each of its protocols).
Today our server with Seldon's protocol; the Open Inference Protocol V2 on the same server
and MLServer 1.7.1 (`bench_peers.MLServer`, its V2 bodies `bench_peers.v2_body`) join as
entries there. The rows are the test rows without missing values (MLServer's codec refuses
nulls), the same for every point.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.bench_peers import seldon_body
from benchmarks.bench_pipeline import machine, write_results
from benchmarks.bench_serving import SERVING_BIN, _load, trained_model
from modelops.capacity import load, run
from modelops.capacity.document import curve_section
from modelops.capacity.policy import Objective, cautions, cpu_split
from modelops.capacity.report import Curve, curve_json
from modelops.params import RealtimeEnvironmentParams, load_params

ROWS = (1, 100)
BODIES_ROWS = 4000
ENVIRONMENT = "production"


@dataclass(frozen=True)
class Protocol:
    """Where a protocol's predictions go, and a table of rows as its request body."""

    name: str
    path: str
    body: Callable[[Any], str]


PROTOCOLS = {"seldon": Protocol("seldon", load.PREDICT_PATH, lambda f: seldon_body(f).decode())}
POINTS = (("modelops", "seldon"),)
"""(server, protocol) pairs, measured in this order at each of ROWS."""


@contextlib.contextmanager
def modelops_server(model_dir: Path, work: Path, cpus: Any, threshold: float) -> Iterator[Any]:
    """Our server as `modelops capacity` starts it."""
    with load.served(
        model_dir,
        model_hash="",
        threshold=threshold,
        bin_dir=SERVING_BIN,
        log_file=work / "server.log",
        cpus=cpus,
    ) as target:
        yield target


SERVERS = {"modelops": modelops_server}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per step")
    parser.add_argument("--max-rate", type=float, default=3000.0)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per curve")
    parser.add_argument("--quick", action="store_true", help="print, do not record")
    args = parser.parse_args()
    model_dir, frame = trained_model()
    project = model_dir.parents[1]
    params = load_params(project / "params.yaml")
    latency = params.monitoring.objectives.latency
    objective = Objective(quantile=latency.target, threshold_seconds=latency.threshold_seconds)
    environment = params.deploy.environments[ENVIRONMENT]
    assert isinstance(environment, RealtimeEnvironmentParams)
    cpus = cpu_split(environment.resources.cpu_limit, load.available_cpus())
    complete = frame.dropna()
    result: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "load_before": _load(),
        "objective": asdict(objective),
        "cpu_limit": environment.resources.cpu_limit,
        "server_cpus": list(cpus[0]),
        "generator_cpus": list(cpus[1]),
        "duration": args.duration,
        "points": [],
    }
    curves: list[tuple[str, str, Curve]] = []
    ladder = run.first_ladder(objective, duration=args.duration, max_rate=args.max_rate)
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as scratch:
        work = Path(scratch)
        for server in dict.fromkeys(name for name, _ in POINTS):
            with SERVERS[server](model_dir, work, cpus, objective.threshold_seconds) as target:
                for protocol_name in (p for s, p in POINTS if s == server):
                    protocol = PROTOCOLS[protocol_name]
                    aimed = replace(target, path=protocol.path)
                    for rows in ROWS:
                        count = max(10, min(200, BODIES_ROWS // rows))
                        chunks = [complete.iloc[i * rows : (i + 1) * rows] for i in range(count)]
                        bodies = [protocol.body(chunk) for chunk in chunks if len(chunk) == rows]
                        body_file = work / "bodies.json"
                        body_file.write_text(json.dumps(bodies), encoding="utf-8")
                        load.check_answers(aimed, bodies[0])
                        curve = run.climb(
                            aimed,
                            body_file,
                            rows=rows,
                            objective=objective,
                            ladder=ladder,
                            duration=args.duration,
                            until=time.monotonic() + args.budget,
                            work=work,
                            say=lambda line: print(line, flush=True),
                        )
                        curves.append((server, protocol_name, curve))
                        point = {"server": server, "protocol": protocol_name, **curve_json(curve)}
                        point["cautions"] = cautions(
                            curve.steps,
                            server_cores=len(aimed.server_cpus),
                            generator_cores=len(aimed.generator_cpus),
                            rows=rows,
                        )
                        result["points"].append(point)
    result["load_after"] = _load()
    text = markdown(result, curves)
    if args.quick:
        print(text)
        return 0
    write_results("capacity", result, text)
    return 0


def markdown(result: dict[str, Any], curves: list[tuple[str, str, Curve]]) -> str:
    objective = result["objective"]
    lines = [
        "# Capacity of one replica",
        "",
        f"Machine: {result['machine']}. `python -m benchmarks.bench_capacity`. Date: "
        f"{result['date']}. Load averages (1, 5, 15 min) before: {result['load_before']}, "
        f"after: {result['load_after']}.",
        "",
        f"The search of `modelops capacity` against one replica: our server as serving/Dockerfile "
        f"runs it (2 gunicorn workers x 1 thread) pinned to CPU(s) {result['server_cpus']} (the "
        f"production pod's cpu_limit {result['cpu_limit']}), locust on {result['generator_cpus']}; "
        f"p{objective['quantile'] * 100:g} within {objective['threshold_seconds'] * 1000:g} ms "
        f"and no error; {result['duration']:g} s steps (longer at low rates, until a step holds "
        "726 requests), open loop, latency counted from when each request was due.",
        "",
        "| server | protocol | rows/request | knee req/s | next step req/s | bounded by | "
        "server CPU at knee (cores) | server MiB at knee |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def shown(value: Any) -> str:
        return "-" if value is None else f"{value:g}"

    for point in result["points"]:
        lines.append(
            f"| {point['server']} | {point['protocol']} | {point['rows']} | "
            f"{shown(point['knee_rps'])} | {shown(point['upper_rps'])} | {point['limited_by']} | "
            f"{shown(point['knee_cpu_cores'])} | {shown(point['knee_memory_mib'])} |"
        )
    said = [caution for point in result["points"] for caution in point["cautions"]]
    busy = float(result["load_before"].split()[0]) > (os.cpu_count() or 1) / 2
    if busy:
        said.insert(0, f"the machine was busy (load average {result['load_before']})")
    if said:
        lines += ["", "Cautions:", ""] + [f"- {caution}." for caution in said]
    for server, protocol, curve in curves:
        lines += curve_section(curve, title=f"{server}, {protocol}, {curve.rows} row(s)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())

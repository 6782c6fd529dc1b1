"""The capacity of one replica of the template's model; benchmarks/results/capacity.{json,md}.

`python -m benchmarks.bench_capacity --mlserver-venv DIR` (in `make bench`, where MLServer is
measured when $MODELOPS_MLSERVER_VENV names its environment; it wants a quiet machine and 15 to
25 minutes; `--rates 80 --duration 5 --quick` is a two-minute smoke run that prints and records
nothing): the search of `modelops capacity` (the same policy, the same locust
steps, open loop, coordinated omission corrected) against one replica pinned to the CPUs of the
template's production pod (`resources.cpu_limit` 1) with locust on the other, at 1 and 100 rows
per request, for the template's latency objective (p99 within 100 ms, no error).

A point is (server, protocol, rows per request): `POINTS` lists (server, protocol) pairs and
`ROWS` the sizes. A protocol is where requests go and how a table becomes a body (`PROTOCOLS`:
Seldon's, and the Open Inference Protocol V2 with the same bytes for every server that speaks
it); a server is a running target (`SERVERS`: started once, measured at each of its protocols,
stopped before the next starts). Our server as `modelops capacity` starts it, at both protocols;
MLServer 1.7.1 with mlserver-mlflow (the runtime KServe would use for an MLflow model;
`bench_peers.MLServer`, two workers, `OMP_NUM_THREADS=1`) at V2, from the virtualenv
`--mlserver-venv` or `$MODELOPS_MLSERVER_VENV` names. Without it the other points are measured
and the results say MLServer was not. The rows are the test rows without missing values
(MLServer's codec refuses nulls), the same for every point. The results compare the knees:
V2 over Seldon's protocol on our server (each protocol's overhead), ours over MLServer's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.bench_peers import (
    MLSERVER_VENV_ENV,
    MLServer,
    mlserver_venv_problem,
    seldon_body,
    v2_body,
)
from benchmarks.bench_pipeline import machine, write_results
from benchmarks.bench_serving import SERVING_BIN, _load, trained_model
from modelops.capacity import load, run
from modelops.capacity.document import curve_section
from modelops.capacity.policy import Ladder, Objective, cautions, cpu_split
from modelops.capacity.report import Curve, curve_json
from modelops.params import RealtimeEnvironmentParams, load_params

ROWS = (1, 100)
BODIES_ROWS = 4000
ENVIRONMENT = "production"
PROTOCOL_GOAL = 0.9
"""V2's knee over Seldon's protocol's on the same server that the goal asks for (within 10 %)."""


@dataclass(frozen=True)
class Protocol:
    """Where a protocol's predictions go (`{model}`: the server's model name) and a table of
    rows as its request body."""

    name: str
    path: str
    body: Callable[[Any], str]


PROTOCOLS = {
    "seldon": Protocol("seldon", load.PREDICT_PATH, lambda f: seldon_body(f).decode()),
    "v2": Protocol("v2", "/v2/models/{model}/infer", lambda f: v2_body(f).decode()),
}
POINTS = (("modelops", "seldon"), ("modelops", "v2"), ("mlserver", "v2"))
"""(server, protocol) pairs, measured in this order at each of ROWS."""


@dataclass(frozen=True)
class Launch:
    """What starting a server takes: the model, a scratch folder, the (server, generator) CPUs,
    the objective's threshold, and MLServer's virtualenv (None: not given)."""

    model_dir: Path
    work: Path
    cpus: tuple[tuple[int, ...], tuple[int, ...]]
    threshold: float
    mlserver_venv: Path | None


@dataclass(frozen=True)
class Served:
    """A running server: the target to load, and the model's name in its V2 paths."""

    target: load.Target
    model: str


@contextlib.contextmanager
def modelops_server(launch: Launch) -> Iterator[Served]:
    """Our server as `modelops capacity` starts it."""
    with load.served(
        launch.model_dir,
        model_hash="",
        threshold=launch.threshold,
        bin_dir=SERVING_BIN,
        log_file=launch.work / "server.log",
        cpus=launch.cpus,
    ) as target:
        with urllib.request.urlopen(f"{target.url}/metadata", timeout=10) as answer:
            name = json.loads(answer.read())["name"]
        yield Served(target, name)


class NotStartedError(Exception):
    """A server that did not start: its points are recorded as not measured, with the reason."""


@contextlib.contextmanager
def mlserver(launch: Launch) -> Iterator[Served]:
    """MLServer from its virtualenv, every process pinned to the server's CPUs."""
    assert launch.mlserver_venv is not None
    peer = MLServer(launch.mlserver_venv, launch.model_dir, cpus=launch.cpus[0])
    try:
        try:
            peer.start()
        except RuntimeError as error:
            raise NotStartedError(str(error)) from None
        assert peer.process is not None
        yield Served(
            load.Target(
                peer.url,
                peer.process.pid,
                server_cpus=launch.cpus[0],
                generator_cpus=launch.cpus[1],
                workers=2,
            ),
            peer.name,
        )
    finally:
        peer.stop()


@dataclass(frozen=True)
class Server:
    """A server the benchmark can start, why it cannot (None: it can), and what it is."""

    start: Callable[[Launch], contextlib.AbstractContextManager[Served]]
    missing: Callable[[Launch], str | None]
    description: str


SERVERS = {
    "modelops": Server(
        modelops_server,
        lambda launch: None,
        "our server as serving/Dockerfile runs it (2 gunicorn workers x 1 thread)",
    ),
    "mlserver": Server(
        mlserver,
        lambda launch: mlserver_venv_problem(launch.mlserver_venv),
        "MLServer 1.7.1 with mlserver-mlflow (2 parallel workers, OMP_NUM_THREADS=1)",
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per step")
    parser.add_argument("--max-rate", type=float, default=3000.0)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per curve")
    parser.add_argument(
        "--rates",
        default="",
        help="comma-separated rates to step through instead of the search (a smoke run)",
    )
    parser.add_argument(
        "--mlserver-venv",
        type=Path,
        default=os.environ.get(MLSERVER_VENV_ENV) or None,
        help=f"MLServer's virtualenv (default ${MLSERVER_VENV_ENV}); without it, not measured",
    )
    parser.add_argument("--quick", action="store_true", help="print, do not record")
    args = parser.parse_args()
    rates = tuple(float(rate) for rate in args.rates.split(",") if rate.strip())
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
        "rates": list(rates),
        "servers": {name: server.description for name, server in SERVERS.items()},
        "points": [],
        "not_measured": [],
    }
    curves: list[tuple[str, str, Curve]] = []
    ladder = run.first_ladder(objective, duration=args.duration, max_rate=args.max_rate)
    ladder = replace(ladder, rates=rates)
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as scratch:
        work = Path(scratch)
        launch = Launch(model_dir, work, cpus, objective.threshold_seconds, args.mlserver_venv)
        for name in dict.fromkeys(server for server, _ in POINTS):
            protocols = [protocol for server, protocol in POINTS if server == name]
            problem = SERVERS[name].missing(launch)
            if problem is None:
                try:
                    with SERVERS[name].start(launch) as served:
                        for protocol, rows in ((p, r) for p in protocols for r in ROWS):
                            curve = _climb(
                                served,
                                PROTOCOLS[protocol],
                                rows,
                                complete,
                                objective,
                                ladder,
                                duration=args.duration,
                                budget=args.budget,
                                work=work,
                            )
                            curves.append((name, protocol, curve))
                            result["points"].append(_point(name, protocol, curve, served.target))
                    continue
                except NotStartedError as error:
                    problem = f"it did not start: {error}"
            print(f"bench_capacity: {name} NOT MEASURED: {problem}", file=sys.stderr, flush=True)
            result["not_measured"] += [
                {"server": name, "protocol": p, "why": problem} for p in protocols
            ]
    result["load_after"] = _load()
    result["comparisons"] = comparisons(result["points"])
    text = markdown(result, curves)
    if args.quick:
        print(text)
    else:
        write_results("capacity", result, text)
    return 1 if any("did not start" in m["why"] for m in result["not_measured"]) else 0


def _climb(
    served: Served,
    protocol: Protocol,
    rows: int,
    complete: Any,
    objective: Objective,
    ladder: Ladder,
    *,
    duration: float,
    budget: float,
    work: Path,
) -> Curve:
    """One point's search: its bodies written, one request checked, then the steps."""
    aimed = replace(served.target, path=protocol.path.format(model=served.model))
    count = max(10, min(200, BODIES_ROWS // rows))
    chunks = [complete.iloc[i * rows : (i + 1) * rows] for i in range(count)]
    bodies = [protocol.body(chunk) for chunk in chunks if len(chunk) == rows]
    body_file = work / "bodies.json"
    body_file.write_text(json.dumps(bodies), encoding="utf-8")
    load.check_answers(aimed, bodies[0])
    return run.climb(
        aimed,
        body_file,
        rows=rows,
        objective=objective,
        ladder=ladder,
        duration=duration,
        until=time.monotonic() + budget,
        work=work,
        say=lambda line: print(line, flush=True),
    )


def _point(server: str, protocol: str, curve: Curve, target: load.Target) -> dict[str, Any]:
    point = {"server": server, "protocol": protocol, **curve_json(curve)}
    point["cautions"] = cautions(
        curve.steps,
        server_cores=len(target.server_cpus),
        generator_cores=len(target.generator_cpus),
        rows=curve.rows,
    )
    return point


def _between(point: dict[str, Any]) -> tuple[float, float] | None:
    """Where the point's capacity lies: from its knee to the first rate above it that failed
    (infinity when none did); None without a knee."""
    if point["knee_rps"] is None:
        return None
    upper = point["upper_rps"]
    return float(point["knee_rps"]), math.inf if upper is None else float(upper)


def _ratio(over: dict[str, Any] | None, under: dict[str, Any] | None) -> dict[str, Any] | None:
    """`over`'s knee over `under`'s, and the range the two brackets allow; None when either
    was not measured, a None ratio when either found no knee."""
    if over is None or under is None:
        return None
    top, bottom = _between(over), _between(under)
    if top is None or bottom is None:
        return {"ratio": None, "low": None, "high": None}
    return {
        "ratio": round(top[0] / bottom[0], 3),
        "low": round(top[0] / bottom[1], 3),
        "high": round(top[1] / bottom[0], 3) if top[1] < math.inf else None,
    }


def _verdict(ratio: dict[str, Any] | None, goal: float) -> str:
    """Whether the ratio is at least `goal`: met when its whole range is, not met when none
    of it is, else inconclusive."""
    if ratio is None:
        return "not measured"
    if ratio["ratio"] is None:
        return "no knee"
    if ratio["low"] >= goal:
        return "met"
    if ratio["high"] is not None and ratio["high"] < goal:
        return "not met"
    return "inconclusive"


def _shared_rate(
    first: dict[str, Any], second: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The two points' steps at the highest rate both passed."""
    passed = [{s["rate"]: s for s in p["steps"] if s["verdict"] == "pass"} for p in (first, second)]
    shared = set(passed[0]) & set(passed[1])
    return (passed[0][max(shared)], passed[1][max(shared)]) if shared else None


def comparisons(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per request size: V2 over Seldon's protocol on our server, ours over MLServer's (both
    at V2, the same bytes; and ours at Seldon's), each a knee ratio with its range and
    verdict, and the two protocols' latencies at the highest rate both passed."""
    found = {(p["server"], p["protocol"], p["rows"]): p for p in points}
    out = []
    for rows in ROWS:
        seldon = found.get(("modelops", "seldon", rows))
        v2 = found.get(("modelops", "v2", rows))
        peer = found.get(("mlserver", "v2", rows))
        protocols = _ratio(v2, seldon)
        ahead = _ratio(v2, peer)
        shared = _shared_rate(seldon, v2) if seldon and v2 else None
        out.append(
            {
                "rows": rows,
                "v2_over_seldon": protocols,
                "v2_within_10_percent": _verdict(protocols, PROTOCOL_GOAL),
                "ours_v2_over_mlserver": ahead,
                "ours_seldon_over_mlserver": _ratio(seldon, peer),
                "ahead_of_mlserver": _verdict(ahead, 1.0),
                "shared_rate": None
                if shared is None
                else {
                    "rate": shared[0]["rate"],
                    **{
                        f"{name}_{q}_ms": step[f"{q}_ms"]
                        for name, step in zip(("seldon", "v2"), shared, strict=True)
                        for q in ("p50", "p99")
                    },
                },
            }
        )
    return out


def markdown(result: dict[str, Any], curves: list[tuple[str, str, Curve]]) -> str:
    objective = result["objective"]
    servers = result["servers"]
    over = (
        f" over the rates {result['rates']} (a smoke run, not the search)"
        if result["rates"]
        else ""
    )
    lines = [
        "# Capacity of one replica",
        "",
        f"Machine: {result['machine']}. `python -m benchmarks.bench_capacity --mlserver-venv DIR`. "
        f"Date: {result['date']}. Load averages (1, 5, 15 min) before: {result['load_before']}, "
        f"after: {result['load_after']}.",
        "",
        f"The search of `modelops capacity`{over} against one "
        f"replica pinned to CPU(s) {result['server_cpus']} (the production pod's cpu_limit "
        f"{result['cpu_limit']}), locust on {result['generator_cpus']}; "
        f"p{objective['quantile'] * 100:g} within {objective['threshold_seconds'] * 1000:g} ms "
        f"and no error; {result['duration']:g} s steps (longer at low rates, until a step holds "
        "726 requests), open loop, latency counted from when each request was due. Servers, one "
        f"at a time: modelops is {servers['modelops']}; mlserver is {servers['mlserver']}. "
        "Protocols: seldon is `POST /api/v1.0/predictions` with `data.ndarray`; v2 is the Open "
        "Inference Protocol, `POST /v2/models/<name>/infer`, one tensor per column, the same "
        "bytes to both servers. The same rows (test rows without missing values) everywhere.",
    ]
    for missing in result["not_measured"]:
        lines += [
            "",
            f"**{missing['server']} at {missing['protocol']} was NOT measured**: {missing['why']}",
        ]
    lines += [
        "",
        "| server | protocol | rows/request | knee req/s | next step req/s | bounded by | "
        "server CPU at knee (cores) | server MiB at knee |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for point in result["points"]:
        lines.append(
            f"| {point['server']} | {point['protocol']} | {point['rows']} | "
            f"{_shown(point['knee_rps'])} | {_shown(point['upper_rps'])} | "
            f"{point['limited_by']} | {_shown(point['knee_cpu_cores'])} | "
            f"{_shown(point['knee_memory_mib'])} |"
        )
    lines += _comparison_lines(result["comparisons"])
    said = [caution for point in result["points"] for caution in point["cautions"]]
    busy = float(result["load_before"].split()[0]) > (os.cpu_count() or 1) / 2
    if busy:
        said.insert(0, f"the machine was busy (load average {result['load_before']})")
    if said:
        lines += ["", "Cautions:", ""] + [f"- {caution}." for caution in said]
    for server, protocol, curve in curves:
        lines += curve_section(curve, title=f"{server}, {protocol}, {curve.rows} row(s)")
    return "\n".join(lines) + "\n"


def _shown(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


def _ratio_text(ratio: dict[str, Any] | None) -> str:
    if ratio is None or ratio["ratio"] is None:
        return _verdict(ratio, 1.0)
    high = "unbounded" if ratio["high"] is None else f"{ratio['high']:.2f}"
    return f"{ratio['ratio']:.2f} ({ratio['low']:.2f} to {high})"


def _comparison_lines(compared: list[dict[str, Any]]) -> list[str]:
    """The knees side by side: each protocol's overhead on our server, ours against
    MLServer's, the goal's verdicts, and the protocols' latencies at a shared rate."""
    lines = [
        "",
        "Knee ratios, each with the range the searches' brackets allow (a capacity lies between "
        "its knee and the next rate that failed; run-to-run noise is not in the range):",
        "",
        "| rows/request | v2 / seldon, our server | ours / mlserver, both v2 | "
        "ours at seldon / mlserver at v2 | v2 within 10 % of seldon | ours ahead of mlserver |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in compared:
        lines.append(
            f"| {row['rows']} | {_ratio_text(row['v2_over_seldon'])} | "
            f"{_ratio_text(row['ours_v2_over_mlserver'])} | "
            f"{_ratio_text(row['ours_seldon_over_mlserver'])} | {row['v2_within_10_percent']} | "
            f"{row['ahead_of_mlserver']} |"
        )
    lines += [
        "",
        "A verdict is met when the whole range reaches the goal (v2 at least 0.9 of seldon; "
        "ours at least 1.0 of mlserver), not met when none of it does, else inconclusive.",
    ]
    shared = [row for row in compared if row["shared_rate"] is not None]
    if shared:
        lines.append("")
        for row in shared:
            at = row["shared_rate"]
            lines.append(
                f"- {row['rows']} row(s), at {at['rate']:g} req/s (the highest rate both "
                f"protocols passed on our server): p50 seldon {_shown(at['seldon_p50_ms'])} ms, "
                f"v2 {_shown(at['v2_p50_ms'])} ms; p99 seldon {_shown(at['seldon_p99_ms'])} ms, "
                f"v2 {_shown(at['v2_p99_ms'])} ms."
            )
    return lines


if __name__ == "__main__":
    sys.exit(main())

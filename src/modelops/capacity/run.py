"""`modelops capacity`: measure what one replica sustains, then propose its replicas.

The order keeps a failure cheap and the outputs whole: the options are checked, the traffic
is read (Prometheus, or the numbers given) and the request rows are built before any load; the
server is started (or the given one asked) and must answer the template's request; then each
request size climbs its ladder of steps within its share of the time budget; the report is
written only at the end, in one step (`keep`), so a run that fails or is interrupted writes
nothing.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from modelops_contract import ENDPOINT, PREDICT, REQUESTS, SHADOW, TRACK

from modelops.batch.score import released_model
from modelops.capacity import document, load
from modelops.capacity.policy import (
    Ladder,
    Objective,
    Step,
    Traffic,
    cautions,
    cpu_split,
    limited_by,
    next_rate,
    propose,
    step_seconds,
    summarize,
)
from modelops.capacity.report import Capacity, Curve, Setup, report_file, to_json
from modelops.errors import CapacityError
from modelops.io import bytes_writer, commit
from modelops.params import Params, RealtimeEnvironmentParams
from modelops.paths import ProjectPaths
from modelops.telemetry.prometheus import connect
from modelops.telemetry.promql import scalar

BODIES_ROWS = 4000
"""Rows of distinct request bodies per size (at most 200 bodies, at least 10), cycled."""
STEP_OVERHEAD_SECONDS = 5.0
"""What a step costs beyond its own length and its requests' timeout: locust starting, the
lead-in. A step starts only when it can end within the budget."""
MIN_BUDGET_SECONDS = 30.0


@dataclass(frozen=True)
class CapacityRequest:
    """What `modelops capacity` was asked (the command line's options)."""

    env: str
    rows: tuple[int, ...] = (1, 100)
    duration: float = 10.0
    rates: tuple[float, ...] = ()
    max_rate: float = 2000.0
    peak_rps: float | None = None
    baseline_rps: float | None = None
    prometheus: str | None = None
    window: str = "7d"
    headroom: float = 0.3
    budget: float = 600.0
    url: str | None = None
    model_dir: Path | None = None

    def problems(self) -> list[str]:
        """Every option out of range, each with its allowed values."""
        found = []
        if not self.rows or any(not 1 <= rows <= 1000 for rows in self.rows):
            found.append(f"--rows must be from 1 to 1000 each, got {list(self.rows)}")
        if not self.duration >= 1:
            found.append(f"--duration must be at least 1 second, got {self.duration:g}")
        if any(not rate > 0 for rate in self.rates):
            found.append(f"--rates must be above 0, got {list(self.rates)}")
        if not self.max_rate > 0:
            found.append(f"--max-rate must be above 0, got {self.max_rate:g}")
        if not 0 <= self.headroom < 1:
            found.append(f"--headroom is a share of the knee, from 0 to below 1: {self.headroom:g}")
        if not self.budget >= MIN_BUDGET_SECONDS:
            found.append(f"--budget must be at least {MIN_BUDGET_SECONDS:g} s, got {self.budget:g}")
        for name, value in (("--peak-rps", self.peak_rps), ("--baseline-rps", self.baseline_rps)):
            if value is not None and not value >= 0:
                found.append(f"{name} must be 0 or more, got {value:g}")
        if self.baseline_rps is not None and self.peak_rps is None:
            found.append("--baseline-rps needs --peak-rps (or neither: Prometheus gives both)")
        elif (self.peak_rps or 0) < (self.baseline_rps or 0):
            found.append(f"--baseline-rps {self.baseline_rps:g} is above --peak-rps")
        if not re.fullmatch(r"[1-9][0-9]*(m|h|d|w)", self.window):
            found.append(f"--window is a duration such as 1h, 7d or 4w, got {self.window!r}")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            found.append(f"--url must start with http:// or https://, got {self.url!r}")
        return found


def measure(
    request: CapacityRequest,
    params: Params,
    paths: ProjectPaths,
    *,
    say: Callable[[str], None] = print,
) -> Capacity:
    """Run the load test the request describes and propose replicas (nothing is written).

    Raises:
        CapacityError: bad options, no traffic to size for, or a server that does not answer.
    """
    problems = request.problems()
    if problems:
        raise CapacityError("; ".join(problems))
    environment = _environment(params, request.env)
    objective = Objective(
        quantile=params.monitoring.objectives.latency.target,
        threshold_seconds=params.monitoring.objectives.latency.threshold_seconds,
    )
    traffic = read_traffic(request, params, environment.namespace)
    started = time.monotonic()
    deadline = started + request.budget
    load_before = _load()
    model_dir, model_hash, described = _model(request, params, paths)
    bodies = request_bodies(paths, request.rows)
    cpus = cpu_split(environment.resources.cpu_limit, load.available_cpus())
    ladder = replace(
        first_ladder(objective, duration=request.duration, max_rate=request.max_rate),
        rates=request.rates,
    )
    with tempfile.TemporaryDirectory(prefix="modelops-capacity-") as scratch:
        work = Path(scratch)
        with _target(request, model_dir, model_hash, objective, paths, work, cpus) as target:
            curves = []
            for index, rows in enumerate(request.rows):
                left = len(request.rows) - index
                until = time.monotonic() + (deadline - time.monotonic()) / left
                body_file = work / f"bodies-{rows}.json"
                body_file.write_text(json.dumps(bodies[rows]), encoding="utf-8")
                load.check_answers(target, bodies[rows][0])
                curve = climb(
                    target,
                    body_file,
                    rows=rows,
                    objective=objective,
                    ladder=ladder,
                    duration=request.duration,
                    until=until,
                    work=work,
                    say=say,
                )
                curves.append(curve)
    knees = [(curve.knee.rate, curve.rows) for curve in curves]
    proposal = None
    if all(rate is not None for rate, _ in knees):
        rate, rows = min((rate, rows) for rate, rows in knees if rate is not None)
        proposal = propose(rate, rows, traffic, headroom=request.headroom)
    scaling = environment.autoscaling
    load_after = _load()
    return Capacity(
        environment=request.env,
        measured_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        objective=objective,
        curves=tuple(curves),
        traffic=traffic,
        proposal=proposal,
        current={
            "min_replicas": scaling.min_replicas,
            "max_replicas": scaling.max_replicas,
            "target_cpu_utilization": scaling.target_cpu_utilization,
        },
        setup=Setup(
            model=described,
            model_hash=model_hash,
            url=target.url,
            started_here=target.pid is not None,
            workers=target.workers,
            threads=target.threads,
            server_cpus=target.server_cpus,
            generator_cpus=target.generator_cpus,
            resources=environment.resources.model_dump(),
            machine=f"{platform.machine()}, {os.cpu_count()} cores",
            load_before=load_before,
            load_after=load_after,
            seconds=time.monotonic() - started,
            budget_seconds=request.budget,
        ),
        cautions=_cautions(curves, target, load_before),
    )


def _cautions(curves: list[Curve], target: load.Target, load_before: str) -> tuple[str, ...]:
    said = []
    cores = os.cpu_count() or 1
    busy = float(load_before.split()[0])
    if busy > cores / 2:
        said.append(
            f"the machine was busy before the run (load average {busy:g} on {cores} cores): "
            "other work competed with the server, so the knees are likely low"
        )
    for curve in curves:
        said += cautions(
            curve.steps,
            server_cores=len(target.server_cpus),
            generator_cores=len(target.generator_cpus),
            rows=curve.rows,
        )
    return tuple(said)


def climb(
    target: load.Target,
    body_file: Path,
    *,
    rows: int,
    objective: Objective,
    ladder: Ladder,
    duration: float,
    until: float,
    work: Path,
    say: Callable[[str], None],
) -> Curve:
    """One request size's steps against `target` (its bodies in `body_file`), from the
    ladder's first rate until it is done or the clock reaches `until` (time.monotonic)."""
    timeout = max(1.0, 10 * objective.threshold_seconds)
    first_body = json.loads(body_file.read_text(encoding="utf-8"))[0]
    steps: list[Step] = []
    out_of_budget = False
    while (rate := next_rate(ladder, steps)) is not None:
        if steps:  # the last step may have left a queue behind
            load.settle(target, first_body, threshold=objective.threshold_seconds)
        seconds = step_seconds(rate, duration, objective)
        if time.monotonic() + seconds + timeout + STEP_OVERHEAD_SECONDS > until:
            out_of_budget = True
            break
        planned = max(1, round(rate * seconds))
        generated = load.generate(
            target,
            rate=rate,
            requests=planned,
            seconds=seconds,
            bodies_file=body_file,
            workdir=work,
            timeout=timeout,
            threshold=objective.threshold_seconds,
        )
        step = summarize(rate, seconds, planned, generated.samples, objective, generated.usage)
        steps.append(step)
        say(document.step_line(rows, step))
    return Curve(rows, tuple(steps), limited_by(ladder, steps, out_of_budget=out_of_budget))


def first_ladder(objective: Objective, *, duration: float, max_rate: float) -> Ladder:
    """The search's ladder: it starts at the lowest rate at which a step of `duration` holds
    the requests the objective wants."""
    start = max(1.0, float(round(objective.requests_wanted() / duration)))
    return Ladder(start=start, max_rate=max_rate)


def _target(
    request: CapacityRequest,
    model_dir: Path,
    model_hash: str,
    objective: Objective,
    paths: ProjectPaths,
    work: Path,
    cpus: tuple[tuple[int, ...], tuple[int, ...]],
) -> contextlib.AbstractContextManager[load.Target]:
    """The server this run loads: the given URL, or one started here as a pod runs it."""
    if request.url is not None:
        return contextlib.nullcontext(load.Target(request.url.rstrip("/")))
    return load.served(
        model_dir,
        model_hash=model_hash,
        threshold=objective.threshold_seconds,
        bin_dir=paths.root / "serving" / ".venv" / "bin",
        log_file=work / "server.log",
        cpus=cpus,
    )


def _environment(params: Params, env: str) -> RealtimeEnvironmentParams:
    environments = params.deploy.environments
    if env not in environments:
        raise CapacityError(
            f"no environment {env!r} in params.yaml (deploy.environments: "
            f"{', '.join(environments)})"
        )
    environment = environments[env]
    if not isinstance(environment, RealtimeEnvironmentParams):
        raise CapacityError(
            f"{env} is a batch environment: it serves no requests, so it has no replicas to size"
        )
    return environment


def _model(request: CapacityRequest, params: Params, paths: ProjectPaths) -> tuple[Path, str, str]:
    """(directory, content hash or "", description): --model, else the environment's released
    stable model, else the workspace's trained one."""
    if request.model_dir is None and request.url is None:
        released = released_model(request.env, params, paths)
        if released is not None:
            return released.directory, released.expected_hash, released.described
    directory = request.model_dir or paths.model_dir
    if request.url is None and not (directory / "MLmodel").is_file():
        raise CapacityError(
            f"{paths.show(directory)}: no trained model; run `dvc repro`, or give --model DIR"
        )
    if request.url is not None:
        return directory, "", f"the model the server at {request.url} serves"
    return directory, "", f"the model in {paths.show(directory)}"


def request_bodies(paths: ProjectPaths, sizes: tuple[int, ...]) -> dict[int, list[str]]:
    """Seldon requests of each size made of the prepared test rows, as the rehearsal's traffic
    sends them (missing values as null), `BODIES_ROWS` rows' worth of each."""
    from modelops.prepared import load_prepared
    from modelops.rehearsal.traffic import requests_from

    prepared = load_prepared(paths.prepared_dir)
    schema = prepared.schema
    bodies = {}
    for rows in sizes:
        made = requests_from(
            prepared.test, list(schema.features), schema.label, per_request=rows, seed=rows
        )
        count = max(10, min(200, BODIES_ROWS // rows))
        bodies[rows] = [json.dumps(next(made)[0]) for _ in range(count)]
    return bodies


def peak_queries(namespace: str, window: str) -> dict[str, str]:
    """PromQL of the environment's predict requests per second (every track but the shadow's,
    which sees copies), at their peak and their median over `window` (1-minute points of a
    5-minute rate)."""
    where = f'namespace="{namespace}", {ENDPOINT}="{PREDICT}", {TRACK}!="{SHADOW}"'
    rate = f"sum(rate({REQUESTS.total}{{{where}}}[5m]))"
    return {
        "peak": f"max_over_time({rate}[{window}:1m])",
        "baseline": f"quantile_over_time(0.5, {rate}[{window}:1m])",
    }


def read_traffic(request: CapacityRequest, params: Params, namespace: str) -> Traffic:
    """The numbers given, else the environment's peak and median from Prometheus.

    Raises:
        CapacityError: Prometheus has no predict requests of the environment in the window.
        PrometheusError: no Prometheus to ask, or it cannot answer.
    """
    if request.peak_rps is not None:
        baseline = request.baseline_rps if request.baseline_rps is not None else request.peak_rps
        return Traffic(request.peak_rps, baseline, "given on the command line")
    prometheus = connect(request.prometheus, params.monitoring.prometheus_url)
    queries = peak_queries(namespace, request.window)
    answers = {name: prometheus.query(query) for name, query in queries.items()}
    if not answers["peak"]:
        raise CapacityError(
            f"Prometheus at {prometheus.url} has no predict requests of namespace {namespace} "
            f"over the last {request.window}: give the traffic to size for with --peak-rps N"
        )
    peak, baseline = scalar(answers["peak"]), scalar(answers["baseline"])
    source = f"Prometheus at {prometheus.url}, the last {request.window}"
    return Traffic(round(peak, 2), round(min(baseline, peak), 2), source)


def keep(paths: ProjectPaths, capacity: Capacity, folder: Path | None = None) -> list[Path]:
    """Write the report as Markdown and JSON to `folder` (default reports/capacity/), both or
    neither."""
    json_file = report_file(paths, capacity.environment)
    if folder is not None:
        json_file = folder / json_file.name
    targets = {
        json_file.with_suffix(".md"): document.to_markdown(capacity).encode(),
        json_file: to_json(capacity),
    }
    commit({path: bytes_writer(content) for path, content in targets.items()})
    return list(targets)


def _load() -> str:
    """The machine's load averages (1, 5, 15 minutes): the figures depend on them."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def budget_note(request: CapacityRequest) -> str:
    """What a person waits for, said before the wait."""
    sizes = ", ".join(str(rows) for rows in request.rows)
    return (
        f"capacity: measuring {request.env}'s replica at {sizes} row(s) per request, at most "
        f"{math.ceil(request.budget)} s…"
    )

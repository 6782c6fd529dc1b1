"""The capacity report: what a run measured and proposes, as Markdown for people and JSON for
tools, and the JSON's reader (`read_capacity`) for what renders autoscaling from it.

The JSON (`reports/capacity/<env>.json`, schema `SCHEMA`) keeps these fields stable:

    environment, measured_at, objective {quantile, threshold_seconds, confidence},
    curves [{rows, knee_rps, upper_rps, limited_by, knee_cpu_cores, knee_memory_mib,
             steps [{rate, seconds, requests, errors, slow, p50_ms, p95_ms, p99_ms,
                     achieved_rps, send_lag_p99_ms, server_cpu_cores, server_memory_mib,
                     generator_cpu_cores, verdict, reason}]}],
    traffic {peak_rps, baseline_rps, source}, cautions [text],
    proposal {min_replicas, max_replicas, target_rps_per_replica, headroom, knee_rps,
              rows_per_request} or null (no knee),
    server {...}, current {...}, run {...}   (what was measured where, for people)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelops.capacity.policy import (
    Knee,
    LimitedBy,
    Objective,
    Proposal,
    Step,
    Traffic,
    knee,
)
from modelops.errors import CapacityError, ExitCode
from modelops.io import JSONObject, json_bytes
from modelops.paths import ProjectPaths

SCHEMA = 1


@dataclass(frozen=True)
class Curve:
    """The steps measured at one request size, and why the search stopped."""

    rows: int
    steps: tuple[Step, ...]
    limited_by: LimitedBy

    @property
    def knee(self) -> Knee:
        return knee(self.steps)


@dataclass(frozen=True)
class Setup:
    """Where and how it was measured: for people reading the report, not for tools."""

    model: str
    model_hash: str
    url: str
    started_here: bool
    workers: int
    threads: int
    server_cpus: tuple[int, ...]
    generator_cpus: tuple[int, ...]
    resources: dict[str, str]
    """The environment's container requests and limits (deploy.environments.<env>.resources)."""
    machine: str
    load_before: str
    load_after: str
    seconds: float
    budget_seconds: float


@dataclass(frozen=True)
class Capacity:
    """A whole capacity run of one environment."""

    environment: str
    measured_at: str
    objective: Objective
    curves: tuple[Curve, ...]
    traffic: Traffic
    proposal: Proposal | None
    current: dict[str, int]
    """The environment's autoscaling in params.yaml now (min, max, CPU target)."""
    setup: Setup
    cautions: tuple[str, ...] = ()
    """What makes the figures less sure (a busy machine, a busy generator), for people."""

    @property
    def exit_code(self) -> ExitCode:
        """OK with a proposal; FAILED when no rate met the objective at some request size."""
        return ExitCode.OK if self.proposal is not None else ExitCode.FAILED


def to_json(capacity: Capacity) -> bytes:
    """The report as stable JSON (the module docstring lists the fields)."""
    objective = capacity.objective
    document: JSONObject = {
        "schema": SCHEMA,
        "environment": capacity.environment,
        "measured_at": capacity.measured_at,
        "objective": {
            "quantile": objective.quantile,
            "threshold_seconds": objective.threshold_seconds,
            "confidence": objective.confidence,
        },
        "curves": [curve_json(curve) for curve in capacity.curves],
        "traffic": asdict(capacity.traffic),
        "proposal": asdict(capacity.proposal) if capacity.proposal else None,
        "current": capacity.current,
        "cautions": list(capacity.cautions),
        "server": {
            key: value
            for key, value in asdict(capacity.setup).items()
            if key not in ("machine", "load_before", "load_after", "seconds", "budget_seconds")
        },
        "run": {
            "machine": capacity.setup.machine,
            "load_before": capacity.setup.load_before,
            "load_after": capacity.setup.load_after,
            "seconds": round(capacity.setup.seconds, 1),
            "budget_seconds": capacity.setup.budget_seconds,
        },
    }
    return json_bytes(document)


def curve_json(curve: Curve) -> JSONObject:
    """One request size's curve and knee, as the report's JSON holds it."""
    found = curve.knee
    usage = found.step.usage if found.step else None
    return {
        "rows": curve.rows,
        "knee_rps": found.rate,
        "upper_rps": found.upper.rate if found.upper else None,
        "limited_by": curve.limited_by,
        "knee_cpu_cores": usage.server_cpu_cores if usage else None,
        "knee_memory_mib": usage.server_memory_mib if usage else None,
        "steps": [_step(step) for step in curve.steps],
    }


def _step(step: Step) -> JSONObject:
    fields = asdict(step)
    fields.update(fields.pop("usage"))
    return fields


@dataclass(frozen=True)
class CapacityReport:
    """What tools read back from a capacity report: the proposal (None when the run found no
    knee) and when and for which environment it was measured."""

    environment: str
    measured_at: str
    proposal: Proposal | None
    source: Path


def report_file(paths: ProjectPaths, env: str) -> Path:
    """Where `modelops capacity --env ENV` keeps the environment's JSON report (its Markdown
    beside it, `.md`): read it with `read_capacity`."""
    return paths.capacity_dir / f"{env}.json"


def read_capacity(path: Path) -> CapacityReport:
    """Read a capacity report's JSON (what `modelops capacity` wrote).

    Raises:
        CapacityError: the file is missing or is not a capacity report (names the field).
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise CapacityError(
            f"{path}: no capacity report; `modelops capacity --env ENV` measures one"
        ) from None
    except ValueError as exc:
        raise CapacityError(f"{path}: not JSON ({exc}); run `modelops capacity` again") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise CapacityError(
            f"{path}: not a capacity report of schema {SCHEMA}; run `modelops capacity` again"
        )
    proposal = document.get("proposal")
    try:
        made = None if proposal is None else _proposal(proposal)
        return CapacityReport(
            str(document["environment"]), str(document["measured_at"]), made, path
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CapacityError(f"{path}: a field is missing or wrong ({exc!r})") from None


def _proposal(fields: Any) -> Proposal:
    made = Proposal(
        min_replicas=int(fields["min_replicas"]),
        max_replicas=int(fields["max_replicas"]),
        target_rps_per_replica=float(fields["target_rps_per_replica"]),
        headroom=float(fields["headroom"]),
        knee_rps=float(fields["knee_rps"]),
        rows_per_request=int(fields["rows_per_request"]),
    )
    if not 1 <= made.min_replicas <= made.max_replicas or made.target_rps_per_replica <= 0:
        raise ValueError(
            f"proposal: replicas {made.min_replicas}..{made.max_replicas}, target "
            f"{made.target_rps_per_replica}"
        )
    return made

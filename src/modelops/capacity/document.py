"""The capacity report in words: Markdown for reports/capacity/<env>.md, a summary for the
terminal, and one line per step while the run goes."""

from __future__ import annotations

from modelops.capacity.policy import Objective, Proposal, Step
from modelops.capacity.report import Capacity, Curve

LIMITS = {
    "objective": "the next step up did not pass",
    "max_rate": "the highest rate allowed (--max-rate) passed: the knee may be higher",
    "rates": "the last of the given rates (--rates) passed: the knee may be higher",
    "budget": "the time budget (--budget) ran out before a step failed: the knee may be higher",
}


def _quantile_name(objective: Objective) -> str:
    return f"p{objective.quantile * 100:g}"


def _number(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:g}{unit}"


def step_line(rows: int, step: Step) -> str:
    """One step as it finishes (printed while the run goes)."""
    return (
        f"capacity: {rows} row(s), {step.rate:g} req/s for {step.seconds:g} s: {step.verdict} "
        f"(p50 {_number(step.p50_ms)} ms, p99 {_number(step.p99_ms)} ms, {step.errors} errors; "
        f"{step.reason})"
    )


def headline(capacity: Capacity) -> str:
    """The knee at each request size and the proposal, in one sentence."""
    knees = []
    for curve in capacity.curves:
        rate = curve.knee.rate
        said = "no rate met the objective" if rate is None else f"{rate:g} requests/s"
        knees.append(f"{said} at {curve.rows} row(s) per request")
    text = f"One replica sustains {'; '.join(knees)}."
    proposal = capacity.proposal
    if proposal is None:
        return f"{text} No proposal: a request size has no knee."
    return f"{text} {_proposal_sentence(proposal)}"


def _proposal_sentence(proposal: Proposal) -> str:
    return (
        f"Proposal: min_replicas {proposal.min_replicas}, max_replicas "
        f"{proposal.max_replicas}, scale at {proposal.target_rps_per_replica:g} requests/s per "
        f"replica ({proposal.headroom:.0%} headroom below the {proposal.knee_rps:g} requests/s "
        f"knee at {proposal.rows_per_request} row(s) per request)."
    )


def to_text(capacity: Capacity) -> str:
    """The terminal summary."""
    lines = [f"capacity of one {capacity.environment} replica: {headline(capacity)}"]
    traffic = capacity.traffic
    lines.append(
        f"traffic: peak {traffic.peak_rps:g}, baseline {traffic.baseline_rps:g} requests/s "
        f"({traffic.source})"
    )
    lines += [f"caution: {caution}" for caution in capacity.cautions]
    return "\n".join(lines)


def to_markdown(capacity: Capacity) -> str:
    """The whole report."""
    objective = capacity.objective
    quantile = _quantile_name(objective)
    threshold_ms = objective.threshold_seconds * 1000
    lines = [
        f"# Capacity of one replica: {capacity.environment}",
        "",
        f"**{headline(capacity)}**",
        "",
        f"Measured {capacity.measured_at} on {capacity.setup.model}.",
        "",
        "## The objective",
        "",
        f"The {quantile} latency of predict requests within {threshold_ms:g} ms "
        "(`monitoring.objectives.latency`) and no error. A step offers a fixed rate, open loop: "
        "each request is due at a time set in advance, and its latency counts from then, so a "
        "stall is charged to every request it delayed (coordinated omission corrected). A step "
        f"passes when the share of requests slower than {threshold_ms:g} ms has a "
        f"{objective.confidence:.0%} Wilson interval at or below "
        f"{objective.allowed_slow_share:.2%} and none failed; it fails on an error or when the "
        "whole interval is above; otherwise it is inconclusive. A step needs at least "
        f"{objective.requests_to_pass()} requests to pass at all, and runs long enough for "
        f"{objective.requests_wanted()} (a replica with a quarter of the allowed slow share "
        "then passes). The knee is the highest passing rate below every step that did not pass.",
    ]
    if capacity.cautions:
        lines += ["", "## Cautions", ""] + [f"- {caution}." for caution in capacity.cautions]
    for curve in capacity.curves:
        lines += curve_section(curve)
    lines += _proposal_section(capacity)
    lines += _setup_section(capacity)
    return "\n".join(lines) + "\n"


def curve_section(curve: Curve, *, title: str = "") -> list[str]:
    """One request size's table of steps and its knee, in Markdown, under `title` (default:
    the request size)."""
    lines = [
        "",
        f"## {title or f'{curve.rows} row(s) per request'}",
        "",
        "| offered req/s | seconds | requests | errors | slow | p50 ms | p95 ms | p99 ms | "
        "answered req/s | send lag p99 ms | server CPU (cores) | server MiB | generator CPU "
        "(cores) | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for step in sorted(curve.steps, key=lambda s: s.rate):
        usage = step.usage
        lines.append(
            f"| {step.rate:g} | {step.seconds:g} | {step.requests} | {step.errors} | "
            f"{step.slow} | {_number(step.p50_ms)} | {_number(step.p95_ms)} | "
            f"{_number(step.p99_ms)} | {step.achieved_rps:g} | "
            f"{_number(step.send_lag_p99_ms)} | {_number(usage.server_cpu_cores)} | "
            f"{_number(usage.server_memory_mib)} | {_number(usage.generator_cpu_cores)} | "
            f"{step.verdict}: {step.reason} |"
        )
    found = curve.knee
    lines.append("")
    if found.step is None:
        lowest = min(curve.steps, key=lambda s: s.rate) if curve.steps else None
        why = f" (the lowest, {lowest.rate:g} req/s: {lowest.reason})" if lowest else ""
        lines.append(f"No knee: no step passed below one that did not{why}.")
        return lines
    usage = found.step.usage
    above = (
        f" and below {found.upper.rate:g} ({found.upper.verdict}: {found.upper.reason})"
        if found.upper
        else ""
    )
    lines.append(
        f"Knee: {found.step.rate:g} requests/s{above}. Stopped because "
        f"{LIMITS[curve.limited_by]}. At the knee the server used "
        f"{_number(usage.server_cpu_cores)} CPU cores and {_number(usage.server_memory_mib)} "
        "MiB (proportional set size of its processes)."
    )
    return lines


def _proposal_section(capacity: Capacity) -> list[str]:
    traffic, proposal, current = capacity.traffic, capacity.proposal, capacity.current
    lines = [
        "",
        "## Replicas",
        "",
        f"Traffic: peak {traffic.peak_rps:g} requests/s, baseline {traffic.baseline_rps:g} "
        f"({traffic.source}).",
        "",
    ]
    if proposal is None:
        lines.append(
            "No proposal: at some request size no rate met the objective. Make the model or the "
            "server faster, give each replica more CPU, or relax the objective."
        )
        return lines
    lines += [
        "| | params.yaml now | proposed |",
        "| --- | --- | --- |",
        f"| min_replicas | {current['min_replicas']} | {proposal.min_replicas} |",
        f"| max_replicas | {current['max_replicas']} | {proposal.max_replicas} |",
        f"| scaling target | CPU {current['target_cpu_utilization']} % | "
        f"{proposal.target_rps_per_replica:g} requests/s per replica |",
        "",
        f"With the lowest knee ({proposal.knee_rps:g} requests/s at "
        f"{proposal.rows_per_request} row(s) per request) and {proposal.headroom:.0%} headroom: "
        f"target = knee * (1 - headroom) = {proposal.target_rps_per_replica:g}; "
        "min_replicas = max(2, ceil(baseline / target) + 1); max_replicas = max(min_replicas, "
        "ceil(peak / target) + 1). The + 1 keeps every replica at its target with one of them "
        "lost (a node drain, a crash); headroom is the room an autoscaler needs while it adds "
        "a replica. Apply by setting `deploy.environments."
        f"{capacity.environment}.autoscaling` in params.yaml to min_replicas: "
        f"{proposal.min_replicas}, max_replicas: {proposal.max_replicas} and "
        f"requests_per_replica: {proposal.target_rps_per_replica:g} (KEDA then scales on it: "
        "runbooks/deploy.md#autoscaling).",
    ]
    return lines


def _setup_section(capacity: Capacity) -> list[str]:
    setup = capacity.setup
    resources = ", ".join(f"{key} {value}" for key, value in setup.resources.items())
    if setup.started_here:
        server = (
            f"`modelops-microservice` as serving/Dockerfile runs it ({setup.workers} gunicorn "
            f"workers x {setup.threads} thread), started here on {setup.url}"
        )
    else:
        server = f"the server already running at {setup.url} (its CPU and memory not measured)"
    pinned = (
        f"The server ran on CPU(s) {_cpus(setup.server_cpus)} (as many as the pod's CPU limit, "
        f"one at least left over) and the load generator on {_cpus(setup.generator_cpus)}, "
        "so that it did not take the server's time."
        if setup.server_cpus
        else "Nothing was pinned: the load generator shared the server's CPUs."
    )
    hashed = f" (content hash {setup.model_hash[:12]})" if setup.model_hash else ""
    return [
        "",
        "## How it was measured",
        "",
        f"- Server: {server}; model: {setup.model}{hashed}. {pinned}",
        f"- The pod's resources (deploy.environments.{capacity.environment}.resources): "
        f"{resources}. Figures measured on this machine stand for a node like it.",
        "- Load: locust, headless, one process per step on loopback; the requests are the "
        "prepared test rows as the rehearsal's traffic sends them.",
        f"- Machine: {setup.machine}. Load averages (1, 5, 15 min) before: {setup.load_before}, "
        f"after: {setup.load_after} (above the core count, other work competed).",
        f"- {setup.seconds:.0f} s of a {setup.budget_seconds:g} s budget.",
    ]


def _cpus(cpus: tuple[int, ...]) -> str:
    return ", ".join(str(cpu) for cpu in cpus)

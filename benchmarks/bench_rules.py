"""Benchmark the alerting rules: what evaluating them costs a real Prometheus, and promtool's
unit tests of every alert; write benchmarks/results/rules.{json,md}.

A trained project (the template's default data) is rehearsed with `modelops up`: the real
servers under traffic (20 requests/s of 5 rows, labels after 5 s), Prometheus evaluating the
production environment's rules once a second, at production windows (`--time-scale 1`) and
compressed (`--time-scale 60`). Every 5 s the cost of each rule group is read from
Prometheus' own `prometheus_rule_group_last_duration_seconds`.

Run with `make bench` (or `python -m benchmarks.bench_rules --quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.bench_pipeline import environment, fresh, machine, write_results
from modelops.rehearsal import processes
from tests.support import copy_template, template_params, venv_bin

REPO_ROOT = Path(__file__).resolve().parents[1]

COST = "prometheus_rule_group_last_duration_seconds"


def _query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as answer:
        result: list[dict[str, Any]] = json.loads(answer.read())["data"]["result"]
    return result


def _group(metric: dict[str, str]) -> str:
    return metric["rule_group"].rsplit(";", 1)[-1]


def rehearse(project: Path, *, scale: float, seconds: float) -> dict[str, Any]:
    """Rule costs per group (median, max over the samples) during one rehearsal."""
    names = ("prometheus", "alertmanager", "stable", "canary", "stable-metrics", "canary-metrics")
    ports = dict(zip(names, processes.free_ports(len(names)), strict=True))
    command = [str(venv_bin() / "modelops"), "up", "--minutes", f"{seconds / 60 + 0.5:g}"]
    command += ["--rate", "20", "--rows", "5", "--label-delay", "5", "--time-scale", str(scale)]
    for name, port in ports.items():
        command += [f"--{name}-port", str(port)]
    subprocess.run(
        command, cwd=project, env=environment(project), check=True, text=True, capture_output=True
    )
    samples: dict[str, list[float]] = {}
    rules: dict[str, int] = {}
    try:
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            time.sleep(5)
            for row in _query(ports["prometheus"], COST):
                samples.setdefault(_group(row["metric"]), []).append(float(row["value"][1]))
        for row in _query(ports["prometheus"], "prometheus_rule_group_rules"):
            rules[_group(row["metric"])] = int(float(row["value"][1]))
        series = len(_query(ports["prometheus"], '{__name__=~"modelops.*"}'))
    finally:
        processes.down(project)
    groups = {
        name: {
            "rules": rules.get(name, 0),
            "median_ms": round(statistics.median(values) * 1000, 2),
            "max_ms": round(max(values) * 1000, 2),
            "samples": len(values),
        }
        for name, values in sorted(samples.items())
        if not name.startswith("prometheus")
    }
    total = sum(g["median_ms"] for g in groups.values())
    return {
        "time_scale": scale,
        "groups": groups,
        "total_median_ms": round(total, 2),
        "series": series,
    }


def promtool_suite() -> float:
    """Seconds for tests/monitoring/test_rules.py (every alert's promtool cases), 2 workers."""
    started = time.perf_counter()
    subprocess.run(
        [
            str(venv_bin() / "pytest"),
            "-q",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            "tests/monitoring/test_rules.py",
        ],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return round(time.perf_counter() - started, 1)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Alerting rules benchmark",
        "",
        f"Machine: {result['machine']}. `python -m benchmarks.bench_rules`. Date: "
        f"{result['date']}. Load average (1 min) {result['load'][0]:.2f} at the start, "
        f"{result['load'][1]:.2f} at the end.",
        "",
        "The production environment's rules in a real Prometheus (rehearsal, evaluated every "
        "second), with the real servers under 20 requests/s of 5 rows and labels after 5 s; "
        f"{result['seconds']:g} s of traffic per run.",
        "",
        "| time scale | group | rules | median | max |",
        "| --- | --- | --- | --- | --- |",
    ]
    for run in result["runs"]:
        for name, group in run["groups"].items():
            lines.append(
                f"| {run['time_scale']:g} | {name} | {group['rules']} | {group['median_ms']} ms "
                f"| {group['max_ms']} ms |"
            )
    lines.append("")
    for run in result["runs"]:
        lines.append(
            f"- Time scale {run['time_scale']:g}: all groups {run['total_median_ms']} ms per "
            f"evaluation (median), over {run['series']} modelops series."
        )
    lines += [
        f"- `promtool test rules` for every alert of two sets of params "
        f"(tests/monitoring/test_rules.py, 2 workers): {result['promtool_seconds']} s.",
        "",
        "Production evaluates every rule group once per `evaluation_interval` (usually 15 s "
        "to 1 min); the cost above is per evaluation.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 s of traffic (smoke run)")
    args = parser.parse_args()
    seconds = 30.0 if args.quick else 90.0
    load_before = os.getloadavg()[0]
    project = copy_template(fresh("rules"), template_params())
    serving = project / "serving" / ".venv"
    serving.symlink_to(REPO_ROOT / "serving" / ".venv")
    subprocess.run(
        [str(venv_bin() / "modelops"), "prepare"],
        cwd=project,
        env=environment(project),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [str(venv_bin() / "modelops"), "train"],
        cwd=project,
        env=environment(project),
        check=True,
        capture_output=True,
    )
    runs = []
    for scale in (1.0, 60.0):
        print(f"rehearsal at time scale {scale:g}...", flush=True)
        runs.append(rehearse(project, scale=scale, seconds=seconds))
    print("promtool tests...", flush=True)
    result = {
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "seconds": seconds,
        "runs": runs,
        "promtool_seconds": promtool_suite(),
        "load": [load_before, os.getloadavg()[0]],
    }
    write_results("rules", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

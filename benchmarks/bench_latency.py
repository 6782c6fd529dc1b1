"""Benchmark the latency gate; write benchmarks/results/latency.{json,md}.

Measures, on this machine, on the template's default data (20,000 rows) and params:
- what the gate costs in the `gate_model` stage: `latency_gate` in one process with both models
  already loaded (as the stage has them), choosing their scoring paths, sampling and timing;
- how it decides the template's model against an identical copy of itself (it should pass,
  never fail), and against a slower candidate of the same kind (HistGradientBoosting without
  early stopping, 200 iterations of 63 leaves: it should fail), each `--runs` times;
- the load on the machine meanwhile (1-minute load average before and after), since the
  machine is shared: the decisions are the point, the seconds are this machine's.

Run with `make bench` (or `python -m benchmarks.bench_latency --quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.bench_pipeline import environment, fresh, machine, timed, write_results
from tests.support import template_params, venv_bin, write_params

SLOWER = {"early_stopping": False, "max_iter": 200, "max_leaf_nodes": 63}
GOALS = {"gate_s": 5.0}
_RATIO = re.compile(r"(\d+\.\d+x(?: \[[^\]]+\])?)")
"""The ratio and its interval in a check's value: '1.02x [0.99x, 1.05x]'."""


def _trained(name: str, model: dict[str, Any]) -> Path:
    """A project trained on the default data with `model` changed; its directory."""
    project = fresh(name)
    params = template_params()
    params["train"]["model"].update(model)
    write_params(project, params)
    env = environment(project) | {"OMP_NUM_THREADS": "1"}
    modelops = str(venv_bin() / "modelops")
    for command in ("prepare", "train"):
        timed([modelops, command], project, env)
    return project


def bench(runs: int) -> dict[str, Any]:
    """The gate's seconds and decisions, same model and slower model, `runs` times each."""
    from modelops import tracking
    from modelops.gates.champion import Matchup
    from modelops.gates.latency import latency_gate
    from modelops.params import GatesParams
    from modelops.prepared import load_prepared

    champion_project = _trained("latency-champion", {})
    slower_project = _trained("latency-slower", SLOWER)
    prepared = load_prepared(champion_project / "data" / "prepared")
    champion = tracking.load_model(champion_project / "models" / "model")
    models = {
        "same": tracking.load_model(champion_project / "models" / "model"),
        "slower": tracking.load_model(slower_project / "models" / "model"),
    }
    gates = GatesParams()
    latency = gates.latency
    result: dict[str, Any] = {
        "load_before": round(os.getloadavg()[0], 1),
        "settings": f"{latency.rows} sampled test rows, {latency.repeats} paired repeats of "
        f"{latency.requests} one-row requests and {latency.requests} batches of "
        f"{latency.batch_rows} rows per model",
    }
    for name, candidate in models.items():
        matchup = Matchup(candidate, champion, {}, prepared.test, prepared.schema, 0.5)
        seconds, decisions, ratios = [], Counter[str](), []
        for _ in range(runs):
            started = time.perf_counter()
            gate = latency_gate(gates, matchup)
            seconds.append(time.perf_counter() - started)
            decisions.update(f"{check.check} {check.status}" for check in gate.checks)
            ratios.append([_RATIO.search(check.value).group(1) for check in gate.checks])  # type: ignore[union-attr]
        result[name] = {
            "seconds": [round(s, 2) for s in seconds],
            "median_s": round(statistics.median(seconds), 2),
            "max_s": round(max(seconds), 2),
            "decisions": dict(sorted(decisions.items())),
            "ratios": ratios,
            "paths": gate.context["latency"].split("scoring path: ")[1],
        }
    result["load_after"] = round(os.getloadavg()[0], 1)
    return result


def markdown(result: dict[str, Any]) -> str:
    runs = len(result["same"]["seconds"])
    lines = [
        "# Latency gate benchmark",
        "",
        f"Machine: {result['machine']}. Command: `make bench`. Date: {result['date']}.",
        f"Load average (1 min) {result['load_before']} before, {result['load_after']} after.",
        "",
        f"`latency_gate` with the default `gates.latency` ({result['settings']}), both models "
        "loaded as the `gate_model` stage has them; the template's default data and model as "
        f"the champion; {runs} runs each.",
        "",
        "| candidate | scoring paths | seconds (median, max) | decisions | ratios "
        "(single row; batch) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, label in (
        ("same", "the champion's own model (a second copy)"),
        ("slower", "200 iterations of 63 leaves, no early stopping"),
    ):
        found = result[name]
        decisions = ", ".join(f"{k} {v}" for k, v in found["decisions"].items())
        ratios = "; ".join(" / ".join(pair) for pair in found["ratios"][:3])
        lines.append(
            f"| {label} | {found['paths']} | {found['median_s']} s, {found['max_s']} s "
            f"| {decisions} | {ratios} … |"
        )
    lines += [
        "",
        f"Goal: the gate under {GOALS['gate_s']:g} s on the default data (the slower "
        "candidate's own calls are most of its time), no failure of the same model against "
        "itself, the slower candidate failing every run.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two runs each (smoke run)")
    parser.add_argument("--runs", type=int, default=10, help="runs of the gate per candidate")
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs
    result: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    print(f"latency gate, {runs} runs per candidate...", flush=True)
    result |= bench(runs)
    if args.quick:
        print(markdown(result))
        return 0
    write_results("latency", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How often the gates block clean data, and how often they catch each defect, by data size.

Runs the real stage commands on generated tables (tests/gate_scenarios.py) at 30, 300, 3k and
30k rows: clean data over several seeds (the false-block rate, with its Wilson interval), and
each defect (the catch rate: blocked by the check meant to catch it; and the share that was
inconclusive instead, never passed). Also times the statistics the gates add (the judges'
intervals and the paired bootstrap) on the default data's test set.

    python -m benchmarks.bench_gate_statistics [--quick] [--seeds N]

Results: benchmarks/results/gate_statistics.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_pipeline import machine, write_results
from modelops.gates.bootstrap import interval, paired_differences
from modelops.statistics import wilson, z_value
from tests.gate_scenarios import DEFECTS, SIZES, run_scenario

GOALS = {"false_block_rate": 0.0, "catch_rate_from_3k": 1.0}


def run_one(name: str, rows: int, seed: int) -> dict[str, Any]:
    """One scenario in a fresh directory; what the gates said and how long it took."""
    root = Path(tempfile.mkdtemp(prefix=f"gate-stats-{name}-{rows}-"))
    previous = Path.cwd()
    started = time.perf_counter()
    try:
        os.chdir(root)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            outcome = run_scenario(root, name, rows, seed)
    finally:
        os.chdir(previous)
        shutil.rmtree(root, ignore_errors=True)
    defect = DEFECTS.get(name)
    target = outcome.statuses(defect.gate, defect.check) if defect else set()
    return {
        "scenario": name,
        "rows": rows,
        "seed": seed,
        "verdict": outcome.verdict,
        "blocked": outcome.blocked,
        "caught": outcome.blocked and "fail" in target,
        "target": sorted(target),
        "seconds": round(time.perf_counter() - started, 1),
    }


def rate(events: int, runs: int) -> dict[str, Any]:
    found = wilson(events, runs, z=z_value(0.95))
    return {"events": events, "runs": runs, "rate": found.estimate, "ci": [found.low, found.high]}


def interval_cost(rows: int = 4000, repeats: int = 5) -> dict[str, float]:
    """Seconds the gates' bootstraps take on a test set of the default size (20k rows -> 4k)."""
    generator = np.random.default_rng(0)
    truth = (generator.random(rows) < 0.2).astype(float)
    first = np.clip(0.3 * truth + generator.random(rows) * 0.7, 0, 1)
    second = np.clip(first + generator.normal(0, 0.05, rows), 0, 1)
    timings: dict[str, list[float]] = {"champion_bootstrap_s": [], "simple_model_bootstrap_s": []}
    for _ in range(repeats):
        started = time.perf_counter()
        paired_differences(
            truth,
            first,
            second,
            ["roc_auc", "average_precision", "recall", "log_loss"],
            threshold=0.5,
            resamples=1000,
            confidence=0.95,
            seed=0,
        )
        timings["champion_bootstrap_s"].append(time.perf_counter() - started)
        started = time.perf_counter()
        interval(truth, first, "f1", threshold=0.5, resamples=1000, confidence=0.95, seed=0)
        timings["simple_model_bootstrap_s"].append(time.perf_counter() - started)
    return {name: round(float(np.median(values)), 3) for name, values in timings.items()}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Gate statistics: false blocks on clean data, catches of each defect",
        "",
        f"Machine: {result['machine']}. `python -m benchmarks.bench_gate_statistics`"
        f"{' --quick' if result['quick'] else ''}; {result['seconds']:.0f} s in all.",
        "",
        "## Clean data (strong legitimate feature): blocked, warned, passed",
        "",
        "| rows | runs | blocked (false-block rate, 95% CI) | warned (inconclusive) | passed |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in result["clean"]:
        block = row["false_blocks"]
        lines.append(
            f"| {row['rows']} | {row['runs']} | {block['events']} "
            f"({block['rate']:.0%}, [{block['ci'][0]:.0%}, {block['ci'][1]:.0%}]) | "
            f"{row['warned']} | {row['passed']} |"
        )
    lines += [
        "",
        "## Defects: caught (blocked by the check meant for it), else inconclusive, never passed",
        "",
        "| defect | check | " + " | ".join(f"{rows} rows" for rows in result["sizes"]) + " |",
        "| --- | --- | " + " | ".join("---" for _ in result["sizes"]) + " |",
    ]
    for name, by_size in result["defects"].items():
        defect = DEFECTS[name]
        cells = []
        for rows in result["sizes"]:
            cell = by_size.get(str(rows))
            if cell is None:
                cells.append("-")
                continue
            cells.append(
                f"caught {cell['caught']}/{cell['runs']}, inconclusive {cell['inconclusive']}, "
                f"refused {cell['refused']}, passed {cell['passed']}"
            )
        lines.append(f"| {name} | {defect.gate}/{defect.check} | " + " | ".join(cells) + " |")
    cost = result["interval_cost"]
    lines += [
        "",
        "## What the intervals cost",
        "",
        f"On a 4,000-row test set (the default data's): the champion's paired bootstrap of four "
        f"metrics, 1,000 resamples, {cost['champion_bootstrap_s']:.3f} s; the simple-model F1 "
        f"bootstrap {cost['simple_model_bootstrap_s']:.3f} s. The other intervals are closed "
        "forms (Wilson, DKW, chi-square, Hanley-McNeil) and cost microseconds.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, sizes up to 3k")
    parser.add_argument("--seeds", type=int, default=5, help="clean-data seeds per size")
    args = parser.parse_args()
    sizes = [rows for rows in SIZES if not args.quick or rows <= 3_000]
    seeds = 1 if args.quick else args.seeds
    started = time.perf_counter()
    runs = []
    for rows in sizes:
        clean_seeds = seeds if rows < 30_000 else max(1, seeds // 2)
        for seed in range(clean_seeds):
            runs.append(run_one("clean", rows, 100 + seed))
            print(runs[-1], flush=True)
        for name in DEFECTS:
            defect_seeds = 2 if not args.quick and rows < 30_000 else 1
            for seed in range(defect_seeds):
                runs.append(run_one(name, rows, 200 + seed))
                print(runs[-1], flush=True)
    clean = []
    for rows in sizes:
        mine = [r for r in runs if r["scenario"] == "clean" and r["rows"] == rows]
        clean.append(
            {
                "rows": rows,
                "runs": len(mine),
                "false_blocks": rate(sum(r["blocked"] for r in mine), len(mine)),
                "warned": sum(r["verdict"] == "warn" for r in mine),
                "passed": sum(r["verdict"] == "pass" for r in mine),
            }
        )
    defects: dict[str, dict[str, Any]] = {}
    for name in DEFECTS:
        for rows in sizes:
            mine = [r for r in runs if r["scenario"] == name and r["rows"] == rows]
            defects.setdefault(name, {})[str(rows)] = {
                "runs": len(mine),
                "caught": sum(r["caught"] for r in mine),
                "inconclusive": sum(
                    not r["caught"] and r["verdict"] != "refused" and "pass" not in r["target"]
                    for r in mine
                ),
                "refused": sum(r["verdict"] == "refused" for r in mine),
                "passed": sum(
                    not r["caught"] and "pass" in r["target"] and r["verdict"] != "refused"
                    for r in mine
                ),
            }
    result = {
        "machine": machine(),
        "quick": args.quick,
        "sizes": sizes,
        "goals": GOALS,
        "clean": clean,
        "defects": defects,
        "interval_cost": interval_cost(),
        "runs": runs,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_results("gate_statistics", result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

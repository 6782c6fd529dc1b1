"""How often the leak check blocks clean data, and how often it catches a copy of the label.

The drift gate's `label_correlation` check runs for real (Deepchecks' predictive power score,
and the balance-free separation J = max |TPR - FPR| of `gates.inputs.sizes`), in process, on
generated tables of 100, 300, 500 and 3,000 rows (80 % train, 20 % test): clean data with a
legitimately strong feature (J about 0.63), on a balanced and on a 3 %-positive label, and the
same data with a column equal to the label with 1 %, 5 % or 10 % of rows flipped. Also breast
cancer (scikit-learn's bundled copy of the public Wisconsin table, 569 rows, its best legitimate
feature separates with J 0.84) clean and with such a column.

    python -m benchmarks.bench_leaks [--seeds N]

Results: benchmarks/results/leaks.{json,md}.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.bench_pipeline import machine, write_results
from modelops.data import Schema
from modelops.gates.catalog import DRIFT, Facts
from modelops.gates.inputs import datasets, sizes
from modelops.gates.runner import GateInputs, RunSettings, run_gate
from modelops.params import DriftGateParams
from modelops.statistics import wilson, z_value

SIZES = (100, 300, 500, 3_000)
NOISES = (0.01, 0.05, 0.10)
BALANCES = {"balanced": 0.5, "3% positives": 0.03}
LABEL = "label"
CHECK = next(spec for spec in DRIFT if spec.key == "label_correlation")


def generated(rows: int, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """A label at `share` positives, one legitimately strong feature and weaker ones."""
    label = (rng.random(rows) < share).astype(int)
    return pd.DataFrame(
        {
            "strong_signal": rng.normal(1.8 * label, 1.0).round(3),
            "usage": rng.gamma(2.0 + label, 10.0).round(1),
            "tenure": rng.integers(1, 72, rows),
            "segment": np.where(rng.random(rows) < 0.3 + 0.3 * label, "retail", "business"),
            LABEL: label,
        }
    )


def breast_cancer(rows: int, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """The Wisconsin table (its own 37 % positives; `rows` and `share` do not apply)."""
    from sklearn.datasets import load_breast_cancer

    found = load_breast_cancer(as_frame=True)
    table = found.frame.rename(columns={"target": LABEL})
    return table.sample(frac=1.0, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)


def with_copy(table: pd.DataFrame, noise: float, rng: np.random.Generator) -> pd.DataFrame:
    """A column equal to the label with a share `noise` of rows flipped."""
    flips = rng.random(len(table)) < noise
    return table.assign(copied=np.where(flips, 1 - table[LABEL], table[LABEL]))


def judged(table: pd.DataFrame) -> tuple[str, str]:
    """The label_correlation check's worst decision, and its verdict values, on an 80/20 split."""
    cut = int(len(table) * 0.8)
    train, test = table.iloc[:cut].reset_index(drop=True), table.iloc[cut:].reset_index(drop=True)
    columns = [str(c) for c in table.columns if c != LABEL]
    categorical = tuple(c for c in columns if table[c].dtype == object)
    schema = Schema(
        label=LABEL,
        positive_label="1",
        negative_label="0",
        categorical=categorical,
        numeric=tuple(c for c in columns if c not in categorical),
    )
    frames = [frame.astype({LABEL: str}) for frame in (train, test)]
    train_set, test_set = datasets(frames[0], frames[1], schema)
    inputs = GateInputs(
        train=train_set,
        test=test_set,
        facts=Facts(id_column=None, has_timestamp=False, time_split=False, positive_label="1"),
        sizes=sizes(frames[0], frames[1], schema, sample_rows=10_000),
    )
    settings = RunSettings(sample_rows=10_000, timeout_seconds=600, html="never")
    result = run_gate("drift", [CHECK], DriftGateParams(), inputs, settings)
    statuses = {record.status for record in result.checks}
    decision = next(d for d in ("fail", "error", "inconclusive", "pass") if d in statuses)
    return decision, " | ".join(f"{r.status}: {r.value}" for r in result.checks)


def rate(events: int, runs: int) -> dict[str, Any]:
    found = wilson(events, runs, z=z_value(0.95))
    return {"events": events, "runs": runs, "rate": found.estimate, "ci": [found.low, found.high]}


def scenarios() -> list[tuple[str, Callable[[int, float, np.random.Generator], pd.DataFrame]]]:
    return [("generated", generated), ("breast cancer", breast_cancer)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="runs per cell")
    args = parser.parse_args()
    started = time.perf_counter()
    cells: list[dict[str, Any]] = []
    plans: list[tuple[str, str, int, float | None]] = []
    for balance in BALANCES:
        for rows in SIZES:
            plans.append(("generated", balance, rows, None))
            plans.extend(("generated", balance, rows, noise) for noise in NOISES)
    plans.append(("breast cancer", "37% positives", 569, None))
    plans.extend(("breast cancer", "37% positives", 569, noise) for noise in NOISES)
    makers = dict(scenarios())
    for data, balance, rows, noise in plans:
        decisions = []
        for seed in range(args.seeds):
            rng = np.random.default_rng(1_000 * seed + rows)
            table = makers[data](rows, BALANCES.get(balance, 0.0), rng)
            if noise is not None:
                table = with_copy(table, noise, rng)
            decisions.append(judged(table)[0])
        cell = {
            "data": data,
            "balance": balance,
            "rows": rows,
            "leak_noise": noise,
            "decisions": {d: decisions.count(d) for d in sorted(set(decisions))},
            "blocked": rate(decisions.count("fail"), len(decisions)),
        }
        cells.append(cell)
        print(cell, flush=True)
    result = {
        "machine": machine(),
        "seeds": args.seeds,
        "seconds": round(time.perf_counter() - started, 1),
        "cells": cells,
    }
    write_results("leaks", result, markdown(result))
    return 0


def markdown(result: dict[str, Any]) -> str:
    def cell_text(cell: dict[str, Any]) -> str:
        blocked = cell["blocked"]
        low, high = (round(100 * v) for v in blocked["ci"])
        others = ", ".join(f"{d} {n}" for d, n in cell["decisions"].items() if d != "fail")
        return f"{blocked['events']}/{blocked['runs']} [{low}%, {high}%]" + (
            f" ({others})" if others else ""
        )

    lines = [
        "# Leak check: false blocks on clean data, catches of a copied label",
        "",
        f"Machine: {result['machine']}. `python -m benchmarks.bench_leaks --seeds "
        f"{result['seeds']}`; {result['seconds']:.0f} s in all. Each cell: runs blocked by "
        "`drift/label_correlation` (95% Wilson interval), then the other decisions. A leak is a "
        "column equal to the label with a share of rows flipped (its J = 1 - 2 x noise).",
        "",
        "| data | label | rows | clean (false blocks) | leak, 1% flipped | leak, 5% flipped "
        "| leak, 10% flipped |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    keyed = {(c["data"], c["balance"], c["rows"], c["leak_noise"]): c for c in result["cells"]}
    groups = dict.fromkeys((c["data"], c["balance"], c["rows"]) for c in result["cells"])
    for data, balance, rows in groups:
        row = [cell_text(keyed[(data, balance, rows, noise)]) for noise in (None, *NOISES)]
        lines.append(f"| {data} | {balance} | {rows} | " + " | ".join(row) + " |")
    lines += [
        "",
        "What the rule can and cannot tell: a copy with under 6 % of rows flipped separates the "
        "classes beyond J 0.88 and blocks at any class balance once its interval excludes no "
        "separation; at 10 % flipped (J 0.80) a copy separates no better than a legitimately "
        "strong feature does (breast cancer's best reads 0.84), so no single-feature statistic "
        "can call it a leak without blocking clean data: the model gate's too-good-to-be-true "
        "check and the reviewer's reading of the feature list are what is left.",
        "",
        "Breast cancer's blocks without a copy (clean 1/10, and 1/10 with a 10 % copy that was "
        "not what blocked) come from the other condition of the same check, the train-versus-"
        "test PPS gap (`max_feature_label_pps_change`, decided on its whole interval): e.g. "
        "'perimeter error' PPS 0.523 in train against 0.000 in test on 114 rows. The PPS is a "
        "cross-validated tree's score, noisier than the Wilson interval of its F1 says on a "
        "100-row test set (scoring train on a test-sized sample does not remove it: the gap "
        "still read 0.438). Not changed by the separation J, which never blocked clean data "
        "here; it is an open weakness of the PPS gap on small test sets.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

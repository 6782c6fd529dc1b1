"""The device side of benchmarks/bench_edge.py: run by it in edge/.venv, where the device client
(modelops_device, onnxruntime) and the trained pipeline's libraries both live.

Reads a request (JSON: the bundle, the model file, the test rows and the edge cases) and writes
the figures (JSON): each part's parity (the bundle's probability against the pipeline's
`predict_proba`, row by row) and the time of one call of each, for one row and for a batch, on
one thread. Both score the same rows, interleaved in each repeat (a coin decides who goes first),
so a burst of load from elsewhere lands on both. Only the call is timed: the rows are built
before (columns for the device, a DataFrame for the pipeline).
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _frame(columns: dict[str, list[Any]], categorical: list[str]) -> pd.DataFrame:
    """Rows as the pipeline takes them: categories as objects (None missing), numbers as floats."""
    return pd.DataFrame(
        {
            name: pd.Series(values, dtype=object if name in categorical else float)
            for name, values in columns.items()
        }
    )


def _parity(bundle: np.ndarray, reference: np.ndarray, threshold: float) -> dict[str, Any]:
    diff = np.abs(bundle - reference)
    agree = (bundle >= threshold) == (reference >= threshold)
    return {
        "rows": len(diff),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "class_agreement": float(agree.mean()),
        "classed_differently": int((~agree).sum()),
    }


def _summary(nanoseconds: list[int], rows: int) -> dict[str, float]:
    """Median and 95th percentile of one call, in µs, and per row."""
    micro = np.asarray(nanoseconds, dtype=float) / 1e3
    median, p95 = float(np.median(micro)), float(np.percentile(micro, 95))
    return {
        "calls": len(micro),
        "median_us": round(median, 2),
        "p95_us": round(p95, 2),
        "median_us_per_row": round(median / rows, 3),
    }


def _timed(
    contenders: dict[str, tuple[Any, list[Any]]], repeats: int, seed: int
) -> dict[str, list[int]]:
    """Each contender's calls on its inputs, interleaved: per repeat, per input, both in turn."""
    coins = np.random.default_rng(seed).random((repeats, 1 << 16)) < 0.5
    names = list(contenders)
    found: dict[str, list[int]] = {name: [] for name in names}
    for repeat in range(repeats):
        inputs = len(contenders[names[0]][1])
        for index in range(inputs):
            order = names if coins[repeat, index % coins.shape[1]] else names[::-1]
            for name in order:
                score, given = contenders[name]
                start = time.perf_counter_ns()
                score(given[index])
                found[name].append(time.perf_counter_ns() - start)
    return found


def measure(request: dict[str, Any]) -> dict[str, Any]:
    """Parity per part and timings of the bundle and of the pipeline (see the module doc)."""
    import modelops_device
    import skops.io
    from threadpoolctl import threadpool_limits

    scorer = modelops_device.load(Path(request["bundle"]))
    pipeline = skops.io.load(request["model_file"], trusted=request["trusted_types"])
    classes = [str(label) for label in pipeline.classes_]
    positive = classes.index(str(request["positive_label"]))
    categorical, threshold = request["categorical"], float(request["threshold"])

    def reference(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(pipeline.predict_proba(frame))[:, positive]

    with threadpool_limits(limits=1):
        parity = {
            part: _parity(
                scorer.predict_proba(columns), reference(_frame(columns, categorical)), threshold
            )
            for part, columns in request["rows"].items()
        }
        test = request["rows"]["test"]
        count = len(next(iter(test.values())))
        singles = [{name: [values[i]] for name, values in test.items()} for i in range(count)]
        singles = singles[: request["single_calls"]]
        batch_rows = request["batch_rows"]
        batch = {
            name: [values[i % count] for i in range(batch_rows)] for name, values in test.items()
        }
        shapes: dict[str, tuple[list[dict[str, list[Any]]], int]] = {
            "single_row": (singles, 1),
            f"batch_{batch_rows}": ([batch], batch_rows),
        }
        timings: dict[str, Any] = {}
        for shape, (given, rows) in shapes.items():
            frames = [_frame(columns, categorical) for columns in given]
            contenders: dict[str, tuple[Any, list[Any]]] = {
                "bundle": (scorer.predict_proba, given),
                "sklearn": (reference, frames),
            }
            _timed(contenders, repeats=2, seed=1)  # warm up
            collecting = gc.isenabled()
            gc.collect()
            gc.disable()
            try:
                found = _timed(contenders, repeats=request["repeats"], seed=0)
            finally:
                if collecting:
                    gc.enable()
            timings[shape] = {name: _summary(calls, rows) for name, calls in found.items()}
    return {"parity": parity, "timings": timings}


def main(argv: list[str]) -> int:
    """`REQUEST.json RESULT.json`."""
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    Path(argv[1]).write_text(json.dumps(measure(request), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

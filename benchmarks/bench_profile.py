"""The reference profile's cost: time to build it at training time, and its size.

`python -m benchmarks.bench_profile`: the built-in data's training set (and ten times it),
median of 3 builds in process, plus the test-set scoring `train` does for it. Results go to
benchmarks/results/profile.{json,md}.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_pipeline import machine, write_results
from modelops import synth
from modelops.data import validate
from modelops.params import load_params
from modelops.telemetry.profile import build_profile

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"

REPEATS = 3


def bench(rows: int) -> dict[str, Any]:
    columns = load_params(PARAMS).prepare.columns
    resolved, table = validate(synth.generate_churn(rows, seed=0), columns, source="synthetic")
    schema = resolved.schema
    draws = np.random.default_rng(0)
    scores = draws.random(rows // 4)
    positive = draws.random(rows // 4) < scores  # labels drawn from the scores: calibrated
    seconds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        profile = build_profile(
            table,
            numeric=schema.numeric,
            categorical=schema.categorical,
            test_scores=scores,
            test_positive=positive,
            threshold=0.5,
            expected={"roc_auc": 0.8},
            positive_label=schema.positive_label,
        )
        seconds.append(time.perf_counter() - started)
    return {
        "rows": rows,
        "features": len(schema.features),
        "build_s": round(statistics.median(seconds), 4),
        "bytes": len(profile.to_json()),
    }


def main() -> int:
    sizes = [bench(rows) for rows in (20_000, 200_000)]
    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "sizes": sizes}
    lines = [
        "# Reference profile benchmark",
        "",
        f"Machine: {result['machine']}. `python -m benchmarks.bench_profile`. "
        f"Date: {result['date']}.",
        "",
        "| training rows | features | build (median of 3) | profile.json |",
        "| --- | --- | --- | --- |",
        *(
            f"| {s['rows']:,} | {s['features']} | {s['build_s']} s | {s['bytes']:,} bytes |"
            for s in sizes
        ),
        "",
        "Training also scores the test set once for the profile's score bins and expected "
        "metrics (the same `predict_proba` evaluate runs). The file's size does not grow with "
        "rows: it holds cut points, shares and at most 1,000 categories per feature.",
        "",
    ]
    write_results("profile", result, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

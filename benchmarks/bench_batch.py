"""Benchmark batch scoring; write benchmarks/results/batch.{json,md}.

On the template's model (trained on the default data), 1 million and 10 million rows of the
built-in churn data as Parquet: rows/s and peak memory of the local engine (`modelops-score`)
and of the plain baseline (`pandas.read_parquet` + the pipeline's `predict_proba`, all rows at
once), each a process of its own in serving/.venv, measured from outside (wall clock, peak RSS
from `wait4`). The engine's overhead is its scoring time minus the time its model spent scoring
(`_run.json`'s `seconds.model`). Parity: the engine's scores against the baseline's, row by row.

Run with `python -m benchmarks.bench_batch` (`--rows 200000` for a quick run).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.bench_pipeline import fresh, machine, write_results
from benchmarks.bench_serving import trained_model

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVING_PYTHON = REPO_ROOT / "serving" / ".venv" / "bin" / "python"
SIZES = (1_000_000, 10_000_000)
SPARK_MASTER = "local[2]"
CHUNK = 1_000_000  # rows generated and written at a time, so making the input stays bounded too
BASELINE = """
import json, sys, time
import numpy as np, pandas as pd
from pathlib import Path
from modelops_serving.artifact import load_pipeline, read_artifact
artifact = read_artifact(Path(sys.argv[1]))
pipeline = load_pipeline(artifact)
started = time.perf_counter()
frame = pd.read_parquet(sys.argv[2], columns=list(artifact.names))
read = time.perf_counter()
positive = [str(c) for c in pipeline.classes_].index(artifact.positive_label)
scores = pipeline.predict_proba(frame)[:, positive]
done = time.perf_counter()
np.save(sys.argv[3], scores)
print(json.dumps({"read": read - started, "model": done - read}))
"""


def write_input(path: Path, rows: int) -> None:
    """`rows` rows of the built-in generator, in 1-million-row slices (distinct seeds)."""
    from modelops.synth import generate_churn

    writer: pq.ParquetWriter | None = None
    for start in range(0, rows, CHUNK):
        frame = generate_churn(min(CHUNK, rows - start), seed=start // CHUNK)
        frame["customer_id"] = [f"C{start + i:010d}" for i in range(len(frame))]
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=100_000)
    assert writer is not None
    writer.close()


def measured(command: list[str], *, tree: bool = False) -> dict[str, Any]:
    """Run `command`; its wall seconds, peak RSS (MB) and stdout.

    The peak is the process's own high-water mark (VmHWM, reset by exec), read every 50 ms:
    `ru_maxrss` would count this benchmark's memory, which the child inherits before exec.
    With `tree`, the peak of the resident memory of the process and all its descendants
    together (Spark: the Python driver, its JVM and the Python workers), sampled every 50 ms.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, text=True)
        peak = 0
        while process.poll() is None:
            sample = _tree_resident_kb(process.pid) if tree else _high_water_kb(process.pid)
            peak = max(peak, sample)
            time.sleep(0.05)
        out.seek(0)
        printed = out.read()
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} exited {process.returncode}")
    return {
        "wall_s": round(time.perf_counter() - started, 2),
        "peak_mb": round(peak / 1024),
        "out": printed,
    }


def _high_water_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # it exited between poll() and here
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _tree_resident_kb(root: int) -> int:
    """Resident memory of `root` and every descendant, now (VmRSS summed)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total += int(found.group(1)) if found else 0
    return total


def spark_installed() -> bool:
    return (
        subprocess.run(
            [str(SERVING_PYTHON), "-c", "import pyspark"], capture_output=True, check=False
        ).returncode
        == 0
    )


def bench_spark(model_dir: Path, source: Path, work: Path, rows: int) -> dict[str, Any]:
    """The Spark engine at local[2] on the same input: session start apart from scoring."""
    run = measured(
        [
            str(REPO_ROOT / "serving" / ".venv" / "bin" / "modelops-score"),
            *("--model", str(model_dir), "--input", str(source)),
            *("--output", str(work / "spark-scores"), "--id-column", "customer_id"),
            *("--engine", "spark", "--master", SPARK_MASTER),
        ],
        tree=True,
    )
    seconds = json.loads((work / "spark-scores" / "_run.json").read_text())["seconds"]
    import numpy as np

    local = pq.read_table(work / "scores", columns=["customer_id", "score"]).to_pandas()
    spark = pq.read_table(work / "spark-scores", columns=["customer_id", "score"]).to_pandas()
    paired = local.merge(spark, on="customer_id", suffixes=("_local", "_spark"))
    return {
        "master": SPARK_MASTER,
        "wall_s": run["wall_s"],
        "peak_mb": run["peak_mb"],
        "session_start_s": seconds["spark_start"],
        "score_s": seconds["score"],
        "rows_per_s": round(rows / seconds["score"]),
        "identical_to_local": int(np.sum(paired["score_local"] == paired["score_spark"])),
    }


def bench_size(model_dir: Path, rows: int) -> dict[str, Any]:
    work = fresh(f"batch-{rows}")
    source = work / "input.parquet"
    write_input(source, rows)
    engine = measured(
        [
            str(REPO_ROOT / "serving" / ".venv" / "bin" / "modelops-score"),
            *("--model", str(model_dir), "--input", str(source)),
            *("--output", str(work / "scores"), "--id-column", "customer_id"),
        ]
    )
    record = json.loads((work / "scores" / "_run.json").read_text())
    baseline = measured(
        [str(SERVING_PYTHON), "-c", BASELINE, str(model_dir), str(source), str(work / "base.npy")]
    )
    split = json.loads(baseline["out"].strip().splitlines()[-1])
    import numpy as np

    ours = pq.read_table(work / "scores", columns=["score"]).column("score").to_numpy()
    theirs = np.load(work / "base.npy")
    seconds = record["seconds"]
    result = {
        "rows": rows,
        "input_mb": round(source.stat().st_size / 2**20),
        "engine": {
            "wall_s": engine["wall_s"],
            "peak_mb": engine["peak_mb"],
            "load_s": seconds["load"],
            "score_s": seconds["score"],
            "model_s": seconds["model"],
            "overhead_s": round(seconds["score"] - seconds["model"], 2),
            "rows_per_s": round(rows / seconds["score"]),
        },
        "baseline": {
            "wall_s": baseline["wall_s"],
            "peak_mb": baseline["peak_mb"],
            "read_s": round(split["read"], 2),
            "model_s": round(split["model"], 2),
            "rows_per_s": round(rows / (split["read"] + split["model"])),
        },
        "parity": {
            "identical_rows": int(np.sum(ours == theirs)),
            "max_abs_difference": float(np.max(np.abs(ours - theirs))),
        },
    }
    if spark_installed():
        result["spark"] = bench_spark(model_dir, source, work, rows)
    print(json.dumps(result), flush=True)
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Batch scoring benchmark",
        "",
        f"Machine: {result['machine']}. Command: `python -m benchmarks.bench_batch`. "
        f"Date: {result['date']}.",
        "",
        "The template's model; the built-in churn data as one Parquet file (row groups of "
        "100,000). Each measure is a process of its own in serving/.venv: wall clock and peak "
        "resident memory from outside. Rows/s count reading and scoring (the engine's also "
        "writing), not loading the model.",
        "",
        "| rows | engine rows/s | engine peak | engine model time | engine overhead "
        "| baseline rows/s | baseline peak | baseline read + model | identical scores |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size in result["sizes"]:
        engine, base, parity = size["engine"], size["baseline"], size["parity"]
        lines.append(
            f"| {size['rows']:,} | {engine['rows_per_s']:,} | {engine['peak_mb']:,} MB "
            f"| {engine['model_s']} s | {engine['overhead_s']} s "
            f"| {base['rows_per_s']:,} | {base['peak_mb']:,} MB "
            f"| {base['read_s']} + {base['model_s']} s "
            f"| {parity['identical_rows']:,} / {size['rows']:,} |"
        )
    first, last = result["sizes"][0], result["sizes"][-1]
    lines += [
        "",
        f"Memory: the engine reads, scores and writes one record batch (100,000 rows) at a time; "
        f"its peak went from {first['engine']['peak_mb']:,} MB to {last['engine']['peak_mb']:,} "
        f"MB for {last['rows'] // first['rows']}x the rows, the baseline's from "
        f"{first['baseline']['peak_mb']:,} MB to "
        f"{last['baseline']['peak_mb']:,} MB: it holds the whole table and its scores.",
        "",
        "Speed: "
        + "; ".join(
            f"at {size['rows']:,} rows the engine scores at "
            f"{size['engine']['rows_per_s'] / size['baseline']['rows_per_s']:.0%} of the "
            f"baseline's rate"
            for size in result["sizes"]
        )
        + ". Its model time is lower than the baseline's `predict_proba`: the server's exact "
        "fast path (category codes by table lookup, the trees on every core; scoring.py checks "
        "it against `predict_proba` at load), on text columns Arrow dictionary-encodes as it "
        "reads them, so each category is looked up once per distinct value, not once per row. "
        "Its overhead (reading, checking every value, counting the drift bins, writing "
        "Parquet) is what it pays on top, on one core while the trees use both.",
        "",
    ]
    lines += _spark_lines(result["sizes"])
    return "\n".join(lines)


def _spark_lines(sizes: list[dict[str, Any]]) -> list[str]:
    measured_sizes = [size for size in sizes if "spark" in size]
    if not measured_sizes:
        return [
            "Spark: not measured (pyspark is not in serving/.venv: `make install-spark`).",
            "",
        ]
    lines = [
        f"Spark `{SPARK_MASTER}` on the same input (`--engine spark`; peak is the driver, its "
        "JVM and the Python workers together; rows/s count scoring only, after the session "
        "started):",
        "",
        "| rows | session start | rows/s | peak | identical to the local engine |",
        "| --- | --- | --- | --- | --- |",
    ]
    for size in measured_sizes:
        spark = size["spark"]
        lines.append(
            f"| {size['rows']:,} | {spark['session_start_s']} s | {spark['rows_per_s']:,} "
            f"| {spark['peak_mb']:,} MB | {spark['identical_to_local']:,} / {size['rows']:,} |"
        )
    lines += [
        "",
        "Where Spark wins: not on one machine, where it runs the same scoring code in Python "
        "workers and adds a JVM, Arrow transfers and a session start; it wins where the table "
        "is already in a lake a cluster reads, or is larger than one machine scores in the "
        "time allowed, since its tasks run on as many executors as the cluster gives.",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_batch")
    parser.add_argument("--rows", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args(argv)
    model_dir, _ = trained_model()
    sizes = [bench_size(model_dir, rows) for rows in args.rows]
    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "sizes": sizes}
    write_results("batch", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

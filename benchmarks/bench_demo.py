"""Benchmark `make demo` on a fresh clone; write benchmarks/results/demo.{json,md}.

For each revision, back to back on this machine (`deaddbe`, the state before issue 18, then
HEAD, unless told otherwise): a fresh clone checked out as `main`, as a user gets it;
`make install` (uv's cache holds the wheels); `make demo`, with each stage's seconds as the CLI
records them (`reports/timings.json`); then the median of `--runs` runs of `modelops --help`,
`import modelops.params`, `modelops champion` and a no-op `dvc repro`; each stage command
run again on its own, for its CPU seconds (user + system, child processes included); and
`modelops train` with one and with two OpenMP threads. CPU seconds hold when other processes
share the cores; wall seconds do not, so the load average is recorded beside them. Last, the
results both revisions computed are compared. It takes 10 to 15 minutes on two cores.

Run from the repository root: `python -m benchmarks.bench_demo` (`--rev` to measure another
committed revision than HEAD, `--before` another baseline, `--no-before` one revision only,
`--keep` to leave the clones in benchmarks/.work/demo/).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.bench_pipeline import machine, timed, write_results

REPO_ROOT = Path(__file__).resolve().parents[1]
WORK = REPO_ROOT / "benchmarks" / ".work" / "demo"
BEFORE = "deaddbe"
"""The last commit before issue 18 ("Lint: a shorter comment", 2026-12-03)."""
GOALS = {"demo": 90.0, "help": 0.5, "noop": 3.0}
"""Seconds, on two idle cores (issue 18)."""
COMPARED = (
    "metrics/data.json",
    "metrics/model.json",
    "reports/feature_importance.json",
    "reports/champion.json",
    "reports/gates.json",
)
"""What the pipeline computed that must not change with its speed."""
PROBES = {
    "help": ["modelops", "--help"],
    "params": ["python", "-c", "import modelops.params"],
    "champion": ["modelops", "champion"],
    "noop": ["dvc", "repro"],
}


@dataclass(frozen=True)
class Run:
    """Wall and CPU seconds of one process and its children, and what it printed."""

    wall: float
    cpu: float
    output: str


def run(command: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """`timed`, in the hundredths of a second the results record.

    Raises:
        SystemExit: the command failed (its output is shown).
    """
    done = timed(command, cwd, env)
    return Run(round(done.seconds, 2), round(done.cpu_seconds, 2), done.output)


def environment(clone: Path | None = None) -> dict[str, str]:
    """This process's environment without its own virtualenv; the clone's first on PATH.

    The Makefile puts the clone's .venv/bin first itself; the probes run outside make.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MLFLOW_TRACKING_URI"}
    }
    own = Path(sys.executable).parent.resolve() if sys.prefix != sys.base_prefix else None
    path = [p for p in env["PATH"].split(os.pathsep) if own is None or Path(p).resolve() != own]
    if clone is not None:
        path.insert(0, str(clone / ".venv" / "bin"))
    env["PATH"] = os.pathsep.join(path)
    env.update(DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true")
    return env


def clone(rev: str, label: str) -> tuple[Path, str]:
    """A fresh clone of this repository at `rev`, on a branch named main; and the commit."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    target = WORK / label
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(target)], check=True)
    subprocess.run(["git", "checkout", "--quiet", "-B", "main", commit], cwd=target, check=True)
    return target, commit


def measure(rev: str, label: str, runs: int) -> tuple[dict[str, Any], Path]:
    """Every figure of one revision, in a fresh clone of it (see the module docstring)."""
    project, commit = clone(rev, label)
    print(f"{label}: {rev} ({commit[:10]}) in {project}", flush=True)
    loads = [_load()]
    result: dict[str, Any] = {"rev": rev, "commit": commit}
    for target in ("install", "demo"):
        made = run(["make", target], project, environment())
        result[target] = {"wall": made.wall, "cpu": made.cpu}
        loads.append(_load())
        print(f"  make {target}: {made.wall} s wall, {made.cpu} s CPU", flush=True)
    # The CLI records each stage command's seconds under its arguments ("gate data drift").
    timings = json.loads((project / "reports" / "timings.json").read_text())
    result["stages_wall"] = {
        command: timings[command.removeprefix("modelops ")] for command in _stage_commands(project)
    }

    env = environment(project)
    probes: dict[str, Any] = {}
    for name, probe in PROBES.items():
        done = [run(probe, project, env) for _ in range(runs)]
        probes[name] = _summary(done)
        if name == "noop":
            probes[name]["ran"] = sorted(
                {stage for d in done for stage in re.findall(r"Running stage '(\w+)'", d.output)}
            )
        print(f"  {name}: {probes[name]}", flush=True)
    result["probes"] = probes
    loads.append(_load())

    stages_cpu: dict[str, dict[str, float]] = {}
    for command in _stage_commands(project):
        alone = run(command.split(), project, env)
        stages_cpu[command] = {"wall": alone.wall, "cpu": alone.cpu}
        print(f"  {command}: {stages_cpu[command]}", flush=True)
    result["stages_cpu"] = stages_cpu
    # scikit-learn's OpenMP threads: the figures above use its default (one per core).
    threads: dict[str, dict[str, float]] = {}
    for count in ("1", "2"):
        alone = run(["modelops", "train"], project, {**env, "OMP_NUM_THREADS": count})
        threads[count] = {"wall": alone.wall, "cpu": alone.cpu}
    result["train_threads"] = threads
    print(f"  modelops train by OMP_NUM_THREADS: {threads}", flush=True)
    loads.append(_load())
    result["load"] = loads
    return result, project


def _stage_commands(project: Path) -> list[str]:
    """The stage commands of the clone's dvc.yaml, in pipeline order."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return [str(stage["cmd"]) for stage in stages.values()]


def _summary(done: list[Run]) -> dict[str, Any]:
    return {
        "wall": round(statistics.median(d.wall for d in done), 2),
        "cpu": round(statistics.median(d.cpu for d in done), 2),
        "wall_runs": [d.wall for d in done],
    }


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def outputs(project: Path, commit: str) -> dict[str, Any]:
    """What the pipeline computed, without what differs by design between two revisions.

    The gates' `judged` record names the model's content hash and the training inputs' hashes
    (the code among them), and the champion gate names the commit `main` is (the revision
    itself); the model file is a zip whose member names and dates change with each save, so
    its arrays are compared by CRC. The plots are byte-identical for the same numbers.
    """
    found: dict[str, Any] = {}
    for name in COMPARED:
        text = (project / name).read_text(encoding="utf-8")
        text = text.replace(commit, "<main>").replace(commit[:12], "<main>")
        found[name] = _without(json.loads(text), "judged")
    for plot in sorted((project / "plots").glob("*.png")):
        found[f"plots/{plot.name}"] = hashlib.sha256(plot.read_bytes()).hexdigest()
    with zipfile.ZipFile(project / "models" / "model" / "model.skops") as archive:
        found["models/model/model.skops arrays"] = sorted(
            info.CRC for info in archive.infolist() if info.filename.endswith(".npy")
        )
    return found


def _without(document: Any, key: str) -> Any:
    if isinstance(document, dict):
        return {k: _without(v, key) for k, v in document.items() if k != key}
    if isinstance(document, list):
        return [_without(v, key) for v in document]
    return document


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, bool]:
    """Per compared output: whether both revisions computed the same."""
    return {name: before.get(name) == after.get(name) for name in {**before, **after}}


def markdown(result: dict[str, Any]) -> str:
    """The figures as a table, for people."""
    revisions: dict[str, Any] = result["revisions"]
    columns = list(revisions.values())
    heads = [f"{label} (`{r['rev']}`, {r['commit'][:7]})" for label, r in revisions.items()]

    def row(measure: str, cells: list[str], goal: str = "") -> str:
        return f"| {measure} | {' | '.join(cells)} | {goal} |"

    def pair(figure: dict[str, Any] | None) -> str:
        return "-" if figure is None else f"{figure['wall']} s ({figure['cpu']} s CPU)"

    lines = [
        "# `make demo` benchmark",
        "",
        f"Machine: {result['machine']}. Date: {result['date']}. "
        f"Command: `{result['command']}` (from the repository root).",
        f"PYTHONDONTWRITEBYTECODE {'set' if result['dont_write_bytecode'] else 'unset'} in the "
        "shell; make's tasks unset it, so bytecode is cached as modules are first imported.",
        "",
        "Wall seconds, then CPU seconds (user + system, children included) in brackets. Wall",
        "seconds grow with the load average (last row: at the start, after install, after demo,",
        "after the probes, at the end); CPU seconds much less so. Stages: wall as `make demo`'s",
        "`dvc repro` ran them (reports/timings.json), CPU from each command run again alone, with",
        "scikit-learn's default OpenMP threads (one per core; train with 1 and 2 below).",
        "",
        f"| measure | {' | '.join(heads)} | goal |",
        f"| --- | {' | '.join('---' for _ in columns)} | --- |",
        row("`make install` (fresh clone, uv cache warm)", [pair(r["install"]) for r in columns]),
        row(
            "`make demo` after install",
            [pair(r["demo"]) for r in columns],
            f"< {GOALS['demo']:g} s",
        ),
    ]
    commands = dict.fromkeys(command for r in columns for command in r["stages_cpu"])
    for command in commands:
        cells = [
            f"{r['stages_wall'][command]} s ({r['stages_cpu'][command]['cpu']} s CPU)"
            if command in r["stages_cpu"]
            else "-"
            for r in columns
        ]
        lines.append(row(f"stage `{command}`", cells))
    for name, label in (
        ("help", "`modelops --help`"),
        ("params", "`python -c 'import modelops.params'`"),
        ("champion", "`modelops champion`"),
        ("noop", "no-op `dvc repro`"),
    ):
        goal = f"< {GOALS[name]:g} s" if name in GOALS else ""
        cells = [pair(r["probes"][name]) for r in columns]
        lines.append(row(f"{label}, median of {result['runs']}", cells, goal))
    for count in ("1", "2"):
        cells = [pair(r["train_threads"][count]) if "train_threads" in r else "-" for r in columns]
        lines.append(row(f"`modelops train` alone, OMP_NUM_THREADS={count}", cells))
    ran = [", ".join(r["probes"]["noop"]["ran"]) or "none" for r in columns]
    lines.append(row("stages the no-op `dvc repro` ran", ran, "champion only"))
    lines.append(row("load average (1 min)", [" / ".join(map(str, r["load"])) for r in columns]))
    if "same" in result:
        lines += [
            "",
            "Same results (the gates' `judged` record, which hashes the code, left out; the",
            "model's arrays compared by CRC, as its zip differs by save time):",
            "",
        ]
        lines += [
            f"- `{name}`: {'same' if same else 'DIFFERENT'}"
            for name, same in result["same"].items()
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="HEAD", help="the revision to measure (default HEAD)")
    parser.add_argument("--before", default=BEFORE, help=f"the baseline (default {BEFORE})")
    parser.add_argument("--no-before", action="store_true", help="measure --rev only")
    parser.add_argument("--runs", type=int, default=3, help="runs of each probe (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the clones")
    args = parser.parse_args()
    plan = {"after": args.rev} if args.no_before else {"before": args.before, "after": args.rev}
    revisions: dict[str, Any] = {}
    computed: dict[str, Any] = {}
    for label, rev in plan.items():
        revisions[label], project = measure(rev, label, args.runs)
        computed[label] = outputs(project, revisions[label]["commit"])
        if not args.keep:
            shutil.rmtree(project, ignore_errors=True)
    command = "python -m benchmarks.bench_demo" + "".join(
        f" {flag} {value}"
        for flag, value, default in (("--rev", args.rev, "HEAD"), ("--before", args.before, BEFORE))
        if value != default
    )
    result: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "command": command + (" --no-before" if args.no_before else ""),
        "runs": args.runs,
        "dont_write_bytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "revisions": revisions,
    }
    if len(computed) == 2:
        result["same"] = compare(computed["before"], computed["after"])
    write_results("demo", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark rendering and validating the manifests; write benchmarks/results/render.{json,md}.

Measures, on this machine, with both environments of the template's params.yaml released and
production in a canary (the largest state: two predictors):
- `deploy.workflow.manifests` (render every template, validate every object against its schema
  and Seldon's rules): the first call in a fresh process (imports and schema loading included)
  and warm calls;
- as a command: `modelops render --check` and `modelops release promote`, process start and
  imports included.

Run with `make bench` (or `python -m benchmarks.bench_render --quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_pipeline import (
    environment,
    fresh,
    machine,
    timed,
    write_results,
)
from modelops.deploy.schemas import schema_source
from modelops.deploy.validate import validate
from modelops.deploy.workflow import Plan, manifests, write
from modelops.params import canary_steps, load_params
from modelops.releases import state
from modelops.releases.state import Change, ModelVersion, Release
from tests.support import git, venv_bin

REPO_ROOT = Path(__file__).resolve().parents[1]

GOALS = {"render_validate_all_s": 1.0}
COLD = """
import sys, time
started = time.perf_counter()
from pathlib import Path
from modelops.deploy.workflow import manifests
from modelops.releases.files import load_releases
from modelops.params import load_params
root = Path.cwd()
params = load_params(root / "params.yaml")
manifests(root, params, load_releases(root, params))
print(time.perf_counter() - started)
"""


def _model(name: str) -> ModelVersion:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return ModelVersion(digest[:12], f"s3://models/churn/{digest}", digest, digest, "0" * 40)


def project() -> Path:
    """The template's params and templates, every environment released, a canary running."""
    root = fresh("render")
    shutil.copytree(REPO_ROOT / "manifests" / "templates", root / "manifests" / "templates")
    shutil.copy(REPO_ROOT / "params.yaml", root / "params.yaml")
    params = load_params(root / "params.yaml")
    change = Change(at="2026-01-01T00:00:00Z", by="bench", reason="bench")
    releases = {}
    for name, target in params.deploy.environments.items():
        release = Release(name)
        for model in (_model("v1"), _model("v2")):
            outcome = state.deploy(
                release, model, strategy=target.strategy, steps=canary_steps(target), change=change
            )
            assert isinstance(outcome, Release), outcome
            release = outcome
        releases[name] = release
    write(root, params, Plan(releases, tuple(releases), "bench"))
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "bench")
    return root


def in_process(root: Path, repeats: int) -> dict[str, Any]:
    from modelops.releases.files import load_releases

    params = load_params(root / "params.yaml")
    releases = load_releases(root, params)
    python = str(venv_bin() / "python")
    first = float(timed([python, "-c", COLD], root, environment(root)).output.split()[-1])
    files = manifests(root, params, releases)
    warm = []
    for _ in range(repeats):
        started = time.perf_counter()
        manifests(root, params, releases)
        warm.append(time.perf_counter() - started)
    return {
        "files": len(files),
        "environments": len(releases),
        "crd_schemas_checked": not validate(
            {str(path): text for path, text in files.items()}, schemas=schema_source(root)
        ).skipped,
        "first_s": round(first, 3),
        "warm_s": {"median": round(statistics.median(warm), 4), "max": round(max(warm), 4)},
    }


def commands(root: Path, repeats: int) -> dict[str, Any]:
    env = environment(root)
    modelops = str(venv_bin() / "modelops")
    check = [timed([modelops, "render", "--check"], root, env).seconds for _ in range(repeats)]
    promote = timed(
        [modelops, "release", "promote", "--env", "production", "--reason", "benchmark"], root, env
    ).seconds
    return {
        "render_check_s": {
            "runs": [round(s, 2) for s in check],
            "median": round(statistics.median(check), 2),
        },
        "promote_s": round(promote, 2),
    }


def markdown(result: dict[str, Any]) -> str:
    inner, cli, load = result["in_process"], result["commands"], result["load_average_1m"]
    check = cli["render_check_s"]
    goal = GOALS["render_validate_all_s"]
    schema = "with" if inner["crd_schemas_checked"] else "WITHOUT (schemas absent)"
    return "\n".join(
        [
            "# Render and validation benchmark",
            "",
            f"Machine: {result['machine']}. Command: `make bench`. Date: {result['date']}. "
            f"Load average (1 min) {load['start']:g} at the start, {load['end']:g} at the end "
            f"({os.cpu_count()} cores).",
            "",
            f"Both environments of the template's params.yaml released, production in a canary: "
            f"{inner['files']} files (monitoring objects included: PodMonitor, PrometheusRule, "
            f"dashboards, plain rules), {schema} the strict CRD schema checks (SeldonDeployment, "
            "Argo CD Application, PodMonitor, PrometheusRule).",
            "",
            "| what | time |",
            "| --- | --- |",
            f"| render + validate all environments, first call in a new process (imports, "
            "schema loading) "
            f"| {inner['first_s']:.3f} s |",
            f"| render + validate all environments, warm (median, max) "
            f"| {inner['warm_s']['median']:.4f} s, {inner['warm_s']['max']:.4f} s |",
            f"| `modelops render --check` (process, median of {len(check['runs'])}) "
            f"| {check['median']:.2f} s |",
            f"| `modelops release promote --env production` (process, writes files) "
            f"| {cli['promote_s']:.2f} s |",
            "",
            f"Goal: render plus validation of all environments under {goal:g} s.",
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 20
    # Validate as the project does: the shared schemas beside this checkout, unless set (the
    # benchmark's project lives elsewhere, so its own ../shared does not exist).
    shared = REPO_ROOT.parent / "shared" / "schemas"
    if shared.is_dir():
        os.environ.setdefault("MODELOPS_SCHEMAS", str(shared))
    root = project()
    result: dict[str, Any] = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        # A shared machine's other work inflates every figure: say how busy it was.
        "load_average_1m": {"start": round(os.getloadavg()[0], 2)},
    }
    result["in_process"] = in_process(root, repeats)
    result["commands"] = commands(root, 3 if args.quick else 5)
    result["load_average_1m"]["end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))
    if args.quick:
        print(markdown(result))
        return 0
    write_results("render", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The benchmarks run as modules from the repository root (`python -m benchmarks.bench_x`):
none edits `sys.path`, each imports as Python finds it, and every command that names one says
so. Running them is `make bench`'s job (minutes each); importing them is cheap."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from modelops_serving.v2 import outputs_of, parse

from benchmarks.bench_capacity import POINTS, PROTOCOLS, SERVERS, comparisons
from benchmarks.bench_peers import (
    MLSERVER_PACKAGES,
    MLSERVER_VENV_ENV,
    mlserver_venv_problem,
    seldon_body,
    v2_body,
)
from tests.support import REPO_ROOT

BENCHMARKS = sorted((REPO_ROOT / "benchmarks").glob("bench_*.py"))
MODULES = [f"benchmarks.{path.stem}" for path in BENCHMARKS]
# Text files that may state how to run a benchmark (results, docs, the Makefile, docstrings).
STATED_IN = [
    REPO_ROOT / "Makefile",
    *REPO_ROOT.glob("*.md"),
    *(REPO_ROOT / "runbooks").rglob("*.md"),
    *(REPO_ROOT / "serving").glob("*.md"),
    *(REPO_ROOT / "benchmarks").rglob("*.md"),
    *(REPO_ROOT / "benchmarks").glob("*.py"),
    *(REPO_ROOT / "src").rglob("*.py"),
]


def _edits_sys_path(path: Path) -> list[str]:
    """`sys.path` used anywhere in the file (insert, append, assignment), with its line."""
    return [
        f"{path.relative_to(REPO_ROOT)}:{node.lineno}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    ]


def test_there_are_benchmarks_to_check() -> None:
    assert len(MODULES) >= 9, f"benchmarks/ lost its benchmarks: {MODULES}"


def test_no_benchmark_edits_sys_path_or_needs_an_import_exemption() -> None:
    # Given every Python file in benchmarks/, then none touches sys.path, and so none needs
    # ruff's E402 exemption for imports placed after such an edit.
    files = sorted((REPO_ROOT / "benchmarks").rglob("*.py"))
    edits = [where for path in files for where in _edits_sys_path(path)]
    assert edits == [], f"run as `python -m benchmarks.x` instead of editing sys.path: {edits}"
    exempt = [p.name for p in files if "noqa: E402" in p.read_text(encoding="utf-8")]
    assert exempt == [], f"imports out of place: {exempt}"


def test_each_benchmark_imports_as_a_module_from_the_repository_root() -> None:
    # Given a fresh interpreter in the repository root (what `python -m` gives: the root on
    # the path, nothing more), when each benchmark module is imported, then it imports.
    probe = (
        "import importlib, sys, traceback\n"
        "failed = 0\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed += 1\n"
        "        print(f'{name}:', traceback.format_exc(limit=2))\n"
        "sys.exit(failed)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *MODULES],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, f"{done.returncode} benchmark(s) do not import:\n{done.stdout}"


def test_every_stated_benchmark_command_runs_it_as_a_module() -> None:
    # Given the Makefile, the docs, the results and the docstrings, then a benchmark command is
    # `python -m benchmarks.bench_x` (a script path would need the sys.path edit back), and it
    # names a benchmark that exists.
    as_script = [
        f"{path.relative_to(REPO_ROOT)}: {found}"
        for path in STATED_IN
        for found in re.findall(r"python3? benchmarks/\S+", path.read_text(encoding="utf-8"))
    ]
    assert as_script == [], f"run benchmarks as modules: {as_script}"
    named = {
        found
        for path in STATED_IN
        for found in re.findall(r"python3? -m (benchmarks\.\w+)", path.read_text(encoding="utf-8"))
    }
    unknown = sorted(named - set(MODULES))
    assert unknown == [], f"no such benchmark: {unknown}"
    make_bench = re.findall(r"python -m (benchmarks\.\w+)", (REPO_ROOT / "Makefile").read_text())
    assert make_bench, "`make bench` runs the benchmarks as modules"


def test_every_capacity_point_names_a_server_and_a_protocol_it_can_reach() -> None:
    # Given bench_capacity's points, then each names a known server and protocol, and a
    # protocol's path needs nothing but the server's model name.
    unknown = [(s, p) for s, p in POINTS if s not in SERVERS or p not in PROTOCOLS]
    assert unknown == [], f"points naming no server or protocol: {unknown}"
    paths = {name: protocol.path.format(model="m") for name, protocol in PROTOCOLS.items()}
    assert paths == {"seldon": "/api/v1.0/predictions", "v2": "/v2/models/m/infer"}


def test_both_protocols_carry_the_same_rows() -> None:
    # Given rows of both kinds of column, when they become a V2 body (sent to our server and
    # MLServer alike) and our server's V2 parser reads it back, then it is the Seldon body's
    # request: the protocols are compared on the same rows.
    frame = pd.DataFrame({"plan": ["basic", "premium"], "age": [31.0, 62.5]})
    body = json.loads(v2_body(frame))
    assert body["parameters"] == {"content_type": "pd"}, "MLServer decodes it as a DataFrame"
    kinds = {"plan": "string", "age": "number"}
    parsed = parse(body, kinds=kinds, available=outputs_of(experiment=False), max_rows=10)
    assert parsed.request == json.loads(seldon_body(frame))


def test_capacity_verdicts_need_the_whole_bracket() -> None:
    # Given knees bracketed by the next failing rate, then a goal is met only when every
    # capacity the brackets allow reaches it, not met when none does, else inconclusive;
    # a point without a knee or not measured is said so.
    def point(
        server: str, protocol: str, knee: float | None, upper: float | None
    ) -> dict[str, Any]:
        return {
            "server": server,
            "protocol": protocol,
            "rows": 1,
            "knee_rps": knee,
            "upper_rps": upper,
            "steps": [],
        }

    def verdicts(*points: dict[str, Any]) -> tuple[str, str]:
        row = comparisons(list(points))[0]
        return row["v2_within_10_percent"], row["ahead_of_mlserver"]

    seldon = point("modelops", "seldon", 146, 159)
    assert verdicts(seldon, point("modelops", "v2", 146, 159), point("mlserver", "v2", 36, 40)) == (
        "met",
        "met",
    )
    assert (
        verdicts(seldon, point("modelops", "v2", 103, 115), point("mlserver", "v2", 103, 146))[0]
        == "not met"
    )
    assert verdicts(
        seldon, point("modelops", "v2", 133, 146), point("mlserver", "v2", 120, 160)
    ) == (
        "inconclusive",
        "inconclusive",
    )
    assert verdicts(seldon, point("modelops", "v2", None, 73)) == ("no knee", "not measured")
    assert verdicts(seldon, point("modelops", "v2", 146, None))[0] == "met"


def test_a_missing_mlserver_virtualenv_says_how_to_make_it(tmp_path: Path) -> None:
    assert MLSERVER_VENV_ENV in (mlserver_venv_problem(None) or "")
    said = mlserver_venv_problem(tmp_path) or ""
    assert f"{tmp_path}/bin/mlserver is missing" in said
    assert all(package in said for package in MLSERVER_PACKAGES)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "mlserver").write_text("")
    assert mlserver_venv_problem(tmp_path) is None

"""The benchmarks run as modules from the repository root (`python -m benchmarks.bench_x`):
none edits `sys.path`, each imports as Python finds it, and every command that names one says
so. Running them is `make bench`'s job (minutes each); importing them is cheap."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

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

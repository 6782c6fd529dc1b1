"""The architecture holds: every import runs down the layer table, and no two packages import
each other, however indirectly. The table lives in `modelops.LAYERS`; README.md draws it."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops import LAYERS
from tests.support import REPO_ROOT

SOURCE = REPO_ROOT / "src" / "modelops"
LEVEL = {unit: level for level, (_, units) in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str | None:
    """The package or top-level module of `modelops.x.y` (`x`); None for `modelops` itself."""
    parts = module.split(".")
    return parts[1] if parts[0] == "modelops" and len(parts) > 1 else None


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, modelops module) of every import in a file: top level, in functions, for typing."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "modelops":
                yield from ((node.lineno, f"modelops.{alias.name}") for alias in node.names)
            else:
                yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)


def edges(root: Path = SOURCE) -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) -> where, for every import between two units."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        source = unit_of(".".join(relative.parts).removesuffix(".__init__"))
        if source is None:
            continue
        for line, module in imports(path):
            target = unit_of(module)
            if target is not None and target != source:
                where = f"{relative.with_suffix('.py')}:{line} imports {module}"
                found.setdefault((source, target), []).append(where)
    return found


def upward(found: dict[tuple[str, str], list[str]]) -> list[str]:
    """Imports of a unit in a higher layer than the importer's."""
    return [
        f"{where} ({source} is {LAYERS[LEVEL[source]][0]}, {target} is "
        f"{LAYERS[LEVEL[target]][0]}, above it)"
        for (source, target), places in sorted(found.items())
        if LEVEL[target] < LEVEL[source]
        for where in places
    ]


def cycles(found: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """Every cycle between units (each as the units along it), by depth-first search."""
    graph: dict[str, set[str]] = {}
    for source, target in found:
        graph.setdefault(source, set()).add(target)
    loops: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(unit: str, path: list[str]) -> None:
        state[unit] = "open"
        for nxt in sorted(graph.get(unit, ())):
            if state.get(nxt) == "open":
                loops.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[unit] = "done"

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [unit])
    return loops


def test_every_package_and_module_has_one_layer() -> None:
    on_disk = {
        path.stem if path.is_file() else path.name
        for path in SOURCE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").is_file())
    }
    listed = [unit for _, units in LAYERS for unit in units]
    assert len(listed) == len(set(listed)), f"a unit is in two layers: {listed}"
    assert set(listed) == on_disk, (
        f"modelops.LAYERS lists {sorted(set(listed) - on_disk)} that do not exist and misses "
        f"{sorted(on_disk - set(listed))}: put each new package or module in its layer"
    )


def test_no_import_runs_up_a_layer() -> None:
    problems = upward(edges())
    assert not problems, "imports that run up a layer (move the shared part down):\n" + "\n".join(
        problems
    )


def test_no_two_packages_import_each_other() -> None:
    found = edges()
    loops = cycles(found)
    described = [
        " -> ".join(loop) + ": " + "; ".join(found[(loop[0], loop[1])][:2]) for loop in loops
    ]
    assert not loops, "cycles between packages:\n" + "\n".join(described)


def test_the_checks_catch_an_import_up_and_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "modelops"
    (package / "stages").mkdir(parents=True)
    (package / "gates").mkdir()
    (package / "errors.py").write_text("from modelops.stages import train\n")
    (package / "stages" / "train.py").write_text("from modelops.gates import judges\n")
    (package / "gates" / "judges.py").write_text("import modelops.stages.train\n")
    found = edges(package)
    assert upward(found) == [
        "modelops/errors.py:1 imports modelops.stages (errors is base, stages is jobs, above it)"
    ]
    assert cycles(found) == [["stages", "gates", "stages"]]


def _readme_tree() -> list[list[str]]:
    """The units named on each line of the README's `src/modelops/` tree, line by line."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^src/modelops/.*?\n((?:  .*\n|\s*\n)+)", text, flags=re.MULTILINE)
    assert block, "README.md has no tree of src/modelops/"
    rows = []
    for line in block.group(1).splitlines():
        names = re.match(r"^  ((?:[a-z_]+(?:/|\.py)\s?)+)", line)
        if names:
            rows.append(names.group(1).split())
    return rows


def test_the_readme_names_packages_and_modules_as_they_are() -> None:
    for name in (name for row in _readme_tree() for name in row):
        assert (SOURCE / name).exists(), f"README.md's tree names src/modelops/{name}: no such path"


@pytest.mark.parametrize(("layer", "units"), LAYERS, ids=[name for name, _ in LAYERS])
def test_the_readme_draws_each_layer_in_order(layer: str, units: tuple[str, ...]) -> None:
    drawn = [n.removesuffix("/").removesuffix(".py") for row in _readme_tree() for n in row]
    assert [u for u in drawn if u in units] == list(units), (
        f"README.md's tree of src/modelops/ must name the {layer} layer as modelops.LAYERS "
        f"does, in its order: {' '.join(units)}"
    )
    position = [drawn.index(unit) for unit in units]
    others = [drawn.index(u) for name, us in LAYERS if name != layer for u in us if u in drawn]
    inside = [p for p in others if min(position) < p < max(position)]
    assert not inside, f"README.md interleaves another layer inside the {layer} layer"
    assert sorted(drawn, key=LEVEL.__getitem__) == drawn, "README.md draws the layers in order"


MAX_MODULE_LINES = 600


def test_no_module_is_over_600_lines() -> None:
    """A module past 600 lines holds more than one idea: split it along a seam."""
    roots = [SOURCE, REPO_ROOT / "serving" / "modelops_serving", REPO_ROOT / "serving" / "contract"]
    long = {
        str(path.relative_to(REPO_ROOT)): lines
        for root in roots
        for path in sorted(root.rglob("*.py"))
        if ".venv" not in path.parts
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"

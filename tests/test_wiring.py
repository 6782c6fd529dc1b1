"""The repository's wiring: dvc.yaml, the CLI, params.yaml, the Makefile and the README agree."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.cli import _parser
from modelops.gates.registry import GATE_NAMES, GATES
from modelops.params import Params
from modelops.paths import ProjectPaths
from tests.support import REPO_ROOT, declared_outputs, template_params

STAGES: dict[str, Any] = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
# Modules that move files or talk to services but do not change what a stage computes; a stage
# need not list them in its deps. Every other modelops module a stage imports must be a dep.
INFRASTRUCTURE = {"errors", "gitinfo", "io", "lockfile", "params", "paths", "tracking"}


def _command(stage: str) -> str:
    """The `modelops` subcommand a stage runs; it is also the name of the stage's module."""
    program, command, *_ = STAGES[stage]["cmd"].split()
    assert program == "modelops", f"stage {stage} must run a modelops command"
    return str(command)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """A parser's subcommands by name (argparse keeps them in a private action)."""
    found = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(found.choices)


def _cli_commands() -> set[str]:
    return set(_subcommands(_parser()))


def _imported_modules(source: Path) -> set[str]:
    """`modelops.x` modules imported by a file, as `x` (or `stages.x`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("modelops"):
            if node.module == "modelops":
                found.update(alias.name for alias in node.names)
            else:
                found.add(node.module.removeprefix("modelops."))
    return found


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_stage_has_its_module_command_and_dependency(stage: str) -> None:
    spec = STAGES[stage]
    command = _command(stage)
    module = f"src/modelops/stages/{command}.py"
    assert (REPO_ROOT / module).is_file(), f"stage {stage} has no module {module}"
    assert command in _cli_commands(), f"`modelops {command}` is not a CLI command"
    assert module in spec["deps"], f"stage {stage} must list {module} in deps"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_stage_lists_the_modules_it_computes_with(stage: str) -> None:
    imported = _imported_modules(REPO_ROOT / f"src/modelops/stages/{_command(stage)}.py")
    required = {
        "src/modelops/" + name.replace(".", "/") + ".py"
        for name in imported
        if name not in INFRASTRUCTURE and not name.startswith("stages")
    }
    deps = set(STAGES[stage]["deps"])
    missing = {
        module
        for module in required
        if not any(module == dep or module.startswith(f"{dep}/") for dep in deps)
    }
    assert not missing, f"stage {stage} imports these but does not list them in deps: {missing}"


CONTRACT = "serving/contract/modelops_contract"
"""The telemetry contract's package: a dep of every stage whose modules import it (the profile
names its bins with the contract's labels)."""


def _imports_the_contract(source: Path) -> bool:
    return any(
        (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("modelops_contract"))
        or (
            isinstance(node, ast.Import)
            and any(alias.name.startswith("modelops_contract") for alias in node.names)
        )
        for node in ast.walk(ast.parse(source.read_text()))
    )


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_whose_modules_import_the_contract_lists_it(stage: str) -> None:
    deps = STAGES[stage]["deps"]
    modules = [
        module
        for dep in deps
        if dep.startswith("src/modelops/") and (REPO_ROOT / dep).exists()
        for module in (
            [REPO_ROOT / dep] if dep.endswith(".py") else (REPO_ROOT / dep).rglob("*.py")
        )
    ]
    importing = sorted(str(m.relative_to(REPO_ROOT)) for m in modules if _imports_the_contract(m))
    assert CONTRACT in deps or not importing, (
        f"stage {stage}: {importing} import modelops_contract: list {CONTRACT} in its deps"
    )
    assert CONTRACT not in deps or importing, f"stage {stage} lists {CONTRACT} but uses none of it"


def _serving_modules(source: Path) -> set[str]:
    """The server package's modules a file imports, as paths, and those they import in turn."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        names = (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else []
        )
        for name in names:
            if name.startswith("modelops_serving."):
                module = "serving/" + name.replace(".", "/") + ".py"
                found |= {module} | _serving_modules(REPO_ROOT / module)
    return found


def test_the_stage_that_times_models_lists_the_server_modules_it_scores_with() -> None:
    # The latency gate scores both models with the server's own scoring path: when that code
    # changes, the gate must run again. (No other module the DVC stages run imports the
    # server's; `modelops capacity`, no stage, starts the server with its launcher.)
    staged = ("stages", "gates")
    importing = sorted(
        str(path.relative_to(REPO_ROOT))
        for folder in staged
        for path in (REPO_ROOT / "src" / "modelops" / folder).rglob("*.py")
        if _serving_modules(path)
    )
    assert importing == ["src/modelops/gates/latency.py"], importing
    (stage,) = [
        name
        for name, spec in STAGES.items()
        if spec["cmd"].split()[:2] == ["modelops", "gate"] and "latency" in spec["cmd"].split()
    ]
    needed = _serving_modules(REPO_ROOT / importing[0])
    assert needed == {
        "serving/modelops_serving/scoring.py",
        "serving/modelops_serving/coded.py",
    }, needed
    missing = sorted(needed - set(STAGES[stage]["deps"]))
    assert not missing, f"stage {stage} must list {missing} in deps"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_stage_dependency_exists_and_each_param_section_is_real(stage: str) -> None:
    spec = STAGES[stage]
    produced = set(declared_outputs())
    for dep in spec["deps"]:
        assert (REPO_ROOT / dep).exists() or dep in produced, f"{stage}: dep {dep} does not exist"
    for key in spec.get("params", []):
        node: Any = template_params()
        model: Any = Params
        for part in key.split("."):
            assert part in node, f"{stage}: params key {key} is not in params.yaml"
            assert part in model.model_fields, f"{stage}: params key {key} is not in the schema"
            node, model = node[part], model.model_fields[part].annotation


def test_dvc_outputs_match_the_paths_the_code_writes() -> None:
    paths = ProjectPaths(root=REPO_ROOT)
    written = {
        paths.prepared_dir,
        paths.model_dir,
        paths.data_metrics,
        paths.model_metrics,
        paths.importance_file,
        paths.mlflow_run_file,
        paths.gates_file,
        paths.champion_file,
        *(paths.gate_dir / f"{gate}.json" for gate in GATE_NAMES),
    }
    declared = {REPO_ROOT / out for out in declared_outputs()}
    plots = {out for out in declared if out.parent == paths.plots_dir}
    assert declared - plots == written
    assert plots, "evaluate declares its plots"


@pytest.mark.parametrize("gate", GATES, ids=GATE_NAMES)
def test_each_gate_runs_in_one_stage_with_its_params_its_result_and_its_model(gate: Any) -> None:
    runs = [
        stage
        for stage, spec in STAGES.items()
        if spec["cmd"].split()[:2] == ["modelops", "gate"] and gate.name in spec["cmd"].split()[2:]
    ]
    assert len(runs) == 1, f"gate {gate.name} must run in exactly one stage, runs in {runs}"
    spec = STAGES[runs[0]]
    assert f"gates.{gate.name}" in spec["params"], f"{runs[0]} must list params gates.{gate.name}"
    result = f"reports/gates/{gate.name}.json"
    assert result in _outs(spec), f"{runs[0]} must declare its output {result}"
    assert result in STAGES["gates"]["deps"], f"stage gates must collect {result}"
    if gate.needs_model:
        assert "models/model" in spec["deps"], f"{runs[0]} judges the model: it depends on it"


def test_every_output_persists_so_a_failed_stage_keeps_the_old_one() -> None:
    for stage, spec in STAGES.items():
        for kind in ("outs", "metrics", "plots"):
            for entry in spec.get(kind, []):
                ((path, options),) = entry.items()
                assert options.get("persist") is True, f"{stage}: {path} must persist"


def test_every_make_target_the_readme_names_exists() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE))
    named = set(re.findall(r"\bmake ([a-z][a-z-]*)", readme))
    assert {"demo", "test"} <= named, "the README shows the two commands"
    assert named <= targets, f"README names missing targets: {named - targets}"


def test_the_readme_starts_with_the_two_commands() -> None:
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)
    commands = [line for block in blocks for line in block.splitlines() if line.startswith("make")]
    assert commands[:2] == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()


DOCS = sorted(
    [
        REPO_ROOT / "README.md",
        REPO_ROOT / "serving" / "README.md",
        REPO_ROOT / "manifests" / "README.md",
        *(REPO_ROOT / "runbooks").glob("*.md"),
    ]
)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_in_the_docs_resolves(doc: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        linked = (doc.parent / path).resolve() if path else doc
        assert linked.exists(), f"{doc.name}: {target} does not exist"
        if anchor and linked.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.MULTILINE)
            assert anchor in {_anchor(h) for h in headings}, f"{doc.name}: no #{anchor}"


def test_every_modelops_command_in_the_docs_exists() -> None:
    commands = _cli_commands()
    release = _subcommands(_subcommands(_parser())["release"])
    for doc in DOCS:
        for command, action in re.findall(
            r"\bmodelops ([a-z]+)(?: ([a-z][a-z-]*[a-z]))?", doc.read_text()
        ):
            if command in {"serving"}:
                continue  # modelops_serving, the server package
            assert command in commands, f"{doc.name}: modelops {command} does not exist"
            if command == "release" and action:
                assert action in release, f"{doc.name}: release {action} does not exist"


def test_the_model_gates_rerun_whenever_a_training_input_changes() -> None:
    # The model gates record the training inputs of the model they judged (dvc.lock's
    # fingerprint of prepare and train); a deploy compares them, so they must never be stale.
    produced = {out for spec in STAGES.values() for out in _outs(spec)}
    inputs = {
        dep
        for stage in ("prepare", "train")
        for dep in STAGES[stage]["deps"]
        if dep not in produced
    }
    gate = STAGES["gate_model"]
    assert inputs <= set(gate["deps"]), f"gate_model misses {inputs - set(gate['deps'])}"
    sections = {p for stage in ("prepare", "train") for p in STAGES[stage].get("params", [])}
    assert sections <= set(gate["params"]), f"gate_model misses params {sections}"


def _outs(spec: dict[str, Any]) -> list[str]:
    return [
        next(iter(entry)) for kind in ("outs", "metrics", "plots") for entry in spec.get(kind, [])
    ]


_PROJECT_PATH = re.compile(r"^(data|models|metrics|plots|reports|manifests)(/\S*)?$|^\.rehearsal$")
# Literals that look like project paths but are not: (file under src/modelops, literal) -> why.
NOT_PROJECT_PATHS = {
    ("deploy/schemas.py", "manifests/crds/application-crd.yaml"): "a file in argo-cd's repository",
}


def _path_literals(source: Path) -> list[str]:
    """String literals of `source` that name a project path: a whole path (`reports/x.json`),
    a first part joined or made a Path (`root / "models"`, `Path("reports")`), or an f-string's
    fixed head (`f"manifests/releases/{env}.yaml"`)."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    nodes = list(ast.walk(tree))
    parts = {id(v) for node in nodes if isinstance(node, ast.JoinedStr) for v in node.values}
    joined = {id(node.right) for node in nodes if isinstance(node, ast.BinOp)}
    joined |= {
        id(arg)
        for node in nodes
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Path"
        for arg in node.args
    }
    found = []
    for node in nodes:
        if isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            text = head.value if isinstance(head, ast.Constant) else ""
            if isinstance(text, str) and "/" in text and _PROJECT_PATH.match(text.split()[0]):
                found.append(text)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            whole = "/" in text or text.startswith(".") or id(node) in joined
            if id(node) not in parts and whole and _PROJECT_PATH.match(text):
                found.append(text)
    return found


def test_every_project_path_is_spelled_in_paths_py_only() -> None:
    source = REPO_ROOT / "src" / "modelops"
    found = {
        (str(path.relative_to(source)), literal)
        for path in sorted(source.rglob("*.py"))
        if path.name != "paths.py" or path.parent != source
        for literal in _path_literals(path)
    }
    stray = sorted(found - set(NOT_PROJECT_PATHS))
    assert not stray, (
        "project paths spelled outside src/modelops/paths.py (add a constant or a ProjectPaths "
        f"property there and use it): {stray}"
    )


def test_the_path_literal_check_finds_a_path_spelled_elsewhere(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        'A = "reports/gates.json"\nB = root / "models"\nC = f"manifests/releases/{env}.yaml"\n'
        'D = "a sentence about reports/gates.json"\nE = ".rehearsal"\nF = Path("plots")\n'
        'G = {"data": 1}\n'
    )
    assert sorted(_path_literals(module)) == [
        ".rehearsal",
        "manifests/releases/",
        "models",
        "plots",
        "reports/gates.json",
    ]

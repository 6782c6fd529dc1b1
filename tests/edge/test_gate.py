"""The pull-request gate `edge`: `modelops export`'s own parity on the candidate, per format an edge
environment uses, with the real exporter (edge/.venv), and what it records without one.

One run of the gate on the shared trained project (the default model: HistGradientBoosting with
native categorical splits) with two edge environments: `tills` runs native bundles (exact),
`devices` ONNX ones (refused: skl2onnx ignores those splits).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.cli import main
from modelops.gates.edge import NOT_APPLICABLE
from tests.shared import copy_project


def _gate(root: Path) -> dict[str, Any]:
    """Run `modelops gate edge` in `root`; its record, reports/gates/edge.json."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), contextlib.chdir(root):
        code = main(["gate", "edge"])
    assert code == 0, err.getvalue() + out.getvalue()
    record: dict[str, Any] = json.loads((root / "reports" / "gates" / "edge.json").read_text())
    return record


def _with_edge_environments(root: Path, formats: dict[str, str]) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for name, fmt in formats.items():
        params["deploy"]["environments"][name] = {
            "strategy": "edge",
            "format": fmt,
            "bundle_base_url": "https://models.example.com/churn/bundles",
            "public_key": "https://keys.example.com/churn-edge.pub",
        }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def gated(edge_project: Path) -> dict[str, Any]:
    """The gate's record with an onnx environment and a native one."""
    _with_edge_environments(edge_project, {"devices": "onnx", "tills": "native"})
    return _gate(edge_project)


def test_native_passes_with_its_parity_figures(gated: dict[str, Any]) -> None:
    checks = {check["check"]: check for check in gated["checks"]}
    native = checks["native"]
    assert native["status"] == "pass", native
    assert native["title"] == "Edge bundle parity (native)"
    assert native["dataset"].startswith("600 test rows + "), native
    assert native["condition"] == (
        "max |Δp| ≤ 1e-05 and the same class at evaluate.threshold 0.5 on every row"
    )
    assert re.search(
        r", 0 of 6\d\d rows classed differently; archive \d+(\.\d)? KB$", native["value"]
    )
    assert float(native["value"].split("max |Δp| ")[1].split(" ")[0]) < 1e-12, native
    assert native["tuned_by"] == (
        "gates.edge.tolerance = 1e-05; deploy.environments.tills.format = native"
    )
    assert "native for tills" in gated["context"]["edge"]
    assert gated["judged"]["model_hash"], "the gate records the model it judged"


def test_onnx_of_native_categorical_splits_fails_naming_the_cause_and_the_fix(
    gated: dict[str, Any],
) -> None:
    onnx = next(check for check in gated["checks"] if check["check"] == "onnx")
    assert onnx["status"] == "fail"
    assert onnx["value"] == "refused before any row was scored"
    assert "onnx/sklearn-onnx#1051" in onnx["reason"], onnx
    assert "--format native" in onnx["reason"]
    assert "train.model.native_categorical: false" in onnx["reason"]
    assert onnx["tuned_by"] == "deploy.environments.devices.format = onnx"
    assert gated["status"] == "fail"
    assert gated["mode"] == "enforce", "a bundle that fails parity cannot be published"


def test_the_gate_publishes_nothing(gated: dict[str, Any], edge_project: Path) -> None:
    assert not (edge_project / "bundles").exists()
    assert not list(edge_project.glob("**/*.tar.gz"))


def test_the_record_repeats_exactly_on_the_same_inputs(
    gated: dict[str, Any], edge_project: Path
) -> None:
    # A DVC output, like every gate's record but latency's: no timings, no temporary paths.
    assert _gate(edge_project) == gated


def test_without_an_edge_environment_it_does_not_apply(trained_project: Path) -> None:
    # The shared project's own `dvc repro` ran the gate in gate_model, with no edge environment.
    record = json.loads((trained_project / "reports" / "gates" / "edge.json").read_text())
    assert record["status"] == "skipped", "not a pass"
    assert record["checks"] == []
    assert record["notes"] == [NOT_APPLICABLE]
    gates = json.loads((trained_project / "reports" / "gates.json").read_text())
    assert [gate["name"] for gate in gates["gates"]][-1] == "edge"
    assert gates["verdict"]["status"] == "pass"


def test_without_edge_venv_the_gate_fails_saying_to_run_make_install_edge(
    trained_project: Path, tmp_path: Path
) -> None:
    root = copy_project(trained_project, tmp_path / "project")
    _with_edge_environments(root, {"tills": "native"})
    record = _gate(root)
    (check,) = record["checks"]
    assert check["status"] == "error"
    assert check["value"] == "edge/.venv/bin/modelops-edge is missing: run `make install-edge`"
    assert record["status"] == "fail"


def test_export_takes_its_default_tolerance_from_the_gates_params(
    edge_project: Path, gated: dict[str, Any]
) -> None:
    # One home for the tolerance: `modelops export` without --tolerance applies gates.edge's.
    params = yaml.safe_load((edge_project / "params.yaml").read_text())
    params["gates"]["edge"]["tolerance"] = 2e-5
    (edge_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = edge_project.parent / "tolerance"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.chdir(edge_project):
        code = main(["export", "--format", "native", "--unsigned", "--out", str(out)])
    assert code == 0
    (bundle,) = [path for path in out.iterdir() if path.is_dir()]
    assert json.loads((bundle / "parity.json").read_text())["tolerance"] == 2e-5

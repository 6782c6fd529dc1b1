"""Gate `edge`, decided from the exporter's answers (pure): which formats it exports, what it
records for a bundle within parity, outside it, refused, or when the exporter cannot run.

The real exporter runs in tests/edge/test_gate.py; here its answers are `Outcome`s as it
returns them, so every branch of the judgment is covered in milliseconds.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelops.edge.export import Outcome
from modelops.errors import ExportError
from modelops.gates.edge import NOT_APPLICABLE, edge_formats, edge_gate
from modelops.params import EdgeFormat, Params, parse_params

EDGE = {
    "strategy": "edge",
    "bundle_base_url": "https://models.example.com/churn/bundles",
    "public_key": "churn-edge.pub",
}


def _params(formats: dict[str, str], **edge_gate: Any) -> Params:
    raw: dict[str, Any] = {
        "prepare": {"columns": {"label": "y"}},
        "train": {"model": {"kind": "logistic_regression"}},
        "gates": {"edge": edge_gate, "champion": {"environment": None}},
    }
    if formats:  # otherwise the defaults: staging and production, no edge environment
        edges = {name: {**EDGE, "format": fmt} for name, fmt in formats.items()}
        raw["deploy"] = {"environments": edges}
    return parse_params(raw)


def _parity(**changed: Any) -> dict[str, Any]:
    parity = {
        "rows": 691,
        "test_rows": 600,
        "edge_rows": 91,
        "max_abs_diff": 2.2e-16,
        "mean_abs_diff": 3.4e-17,
        "worst_row": 12,
        "disagreements": 0,
        "disagreeing_rows": [],
        "tolerance": 1e-5,
        "threshold": 0.5,
        "passed": True,
    }
    return {**parity, **changed}


def _published(parity: dict[str, Any]) -> Outcome:
    return Outcome({"archive_bytes": 41_400, "parity": parity}, parity=parity)


def test_formats_are_those_of_the_edge_environments_with_their_environments() -> None:
    params = _params({"tills": "native", "devices": "onnx", "phones": "onnx"})
    assert edge_formats(params.deploy) == {"native": ["tills"], "onnx": ["devices", "phones"]}
    assert edge_formats(_params({}).deploy) == {}, "staging and production are not edge"


def test_without_an_edge_environment_it_does_not_apply_and_exports_nothing() -> None:
    def never(fmt: EdgeFormat) -> Outcome:
        raise AssertionError("nothing to export")

    result = edge_gate(_params({}), never)
    assert (result.status, result.checks, result.notes) == ("skipped", (), (NOT_APPLICABLE,))


def test_a_bundle_within_parity_passes_with_its_figures() -> None:
    result = edge_gate(_params({"tills": "native"}), lambda fmt: _published(_parity()))
    (check,) = result.checks
    assert result.status == check.status == "pass"
    assert check.dataset == "600 test rows + 91 edge cases"
    assert check.value == (
        "max |Δp| 2.2e-16 (mean 3.4e-17), 0 of 691 rows classed differently; archive 41.4 KB"
    )
    assert check.condition == (
        "max |Δp| ≤ 1e-05 and the same class at evaluate.threshold 0.5 on every row"
    )
    assert result.context == {"edge": "native for tills"}


def test_parity_outside_tolerance_fails_with_the_figures_and_the_exporters_fix() -> None:
    refusal = "parity FAIL: 691 rows ... try the other --format (runbooks/edge.md)"
    parity = _parity(max_abs_diff=0.46, disagreements=28, passed=False)
    result = edge_gate(
        _params({"devices": "onnx"}),
        lambda fmt: Outcome(None, refusal=refusal, parity=parity),
    )
    (check,) = result.checks
    assert result.status == check.status == "fail"
    assert check.value == "max |Δp| 0.46 (mean 3.4e-17), 28 of 691 rows classed differently"
    assert check.reason == refusal
    assert (
        check.tuned_by == "gates.edge.tolerance = 1e-05; deploy.environments.devices.format = onnx"
    )


def test_a_refused_format_fails_with_the_exporters_cause_and_fix() -> None:
    refusal = "--format onnx cannot hold this model: ... Use --format native"
    result = edge_gate(_params({"devices": "onnx"}), lambda fmt: Outcome(None, refusal=refusal))
    (check,) = result.checks
    assert (check.status, check.value, check.reason) == (
        "fail",
        "refused before any row was scored",
        refusal,
    )


@pytest.mark.parametrize("mode", ["enforce", "warn"])
def test_an_exporter_that_cannot_run_fails_the_gate_closed(mode: str) -> None:
    def missing(fmt: EdgeFormat) -> Outcome:
        raise ExportError("edge/.venv/bin/modelops-edge is missing: run `make install-edge`")

    result = edge_gate(_params({"tills": "native"}, mode=mode), missing)
    (check,) = result.checks
    assert (result.status, result.mode, check.status) == ("fail", mode, "error")
    assert "run `make install-edge`" in check.value
    assert result.blocking is (mode == "enforce")


def test_a_skipped_format_is_left_out_and_the_others_still_run() -> None:
    asked: list[str] = []

    def export(fmt: EdgeFormat) -> Outcome:
        asked.append(fmt)
        return _published(_parity())

    params = _params({"tills": "native", "devices": "onnx"}, skip=["onnx"])
    result = edge_gate(params, export)
    assert asked == ["native"]
    assert [(c.check, c.status) for c in result.checks] == [("native", "pass"), ("onnx", "off")]
    assert result.status == "pass"

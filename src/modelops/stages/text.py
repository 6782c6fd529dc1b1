"""What the stage commands print (pure): one line or a few per stage, from its result.

DVC shows these lines in its log, so each says what the stage did and where it wrote
(`out`, `metrics_file`: paths as shown to the user, relative to the project root).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # each stage's result; importing them would import the stages' libraries
    from modelops.gates.results import GateResult, Verdict
    from modelops.prepared import PrepareResult
    from modelops.stages.evaluate import EvaluateResult
    from modelops.stages.train import TrainResult

_SHOWN = ("fail", "error", "timeout", "inconclusive")
"""Check statuses listed under a gate's line (passes are only counted)."""


def prepared(result: PrepareResult, *, out: str) -> str:
    """The data's notes, then where it went and what it holds."""
    lines = [f"prepare: {note}" for note in result.notes]
    lines.append(
        f"prepare: {result.source} -> {out}/ "
        f"(train {result.train_rows} rows, test {result.test_rows} rows, "
        f"positive rate {result.train_positive_rate:.3f}, data hash {result.data_hash[:12]})"
    )
    return "\n".join(lines)


def trained(result: TrainResult, *, out: str) -> str:
    """Training's warnings, then what was fitted, on what, in how long."""
    lines = [f"train: warning: {warning}" for warning in result.warnings]
    rounds = f", {result.iterations} iterations" if result.iterations is not None else ""
    lines.append(
        f"train: {result.model_kind} on {result.train_rows} rows x {result.features} features "
        f"in {result.fit_seconds:.2f} s{rounds} -> {out}/"
    )
    return "\n".join(lines)


def evaluated(result: EvaluateResult, *, metrics_file: str) -> str:
    """The test-set metrics beside the baseline's, and the MLflow run they went to."""
    metrics = result.metrics
    return (
        f"evaluate: roc_auc {metrics.roc_auc:.4f} (baseline {metrics.baseline.roc_auc}), "
        f"accuracy {metrics.accuracy:.4f} (baseline {metrics.baseline.accuracy:.4f}), "
        f"recall {metrics.recall:.4f}, precision {metrics.precision:.4f}, "
        f"log_loss {metrics.log_loss:.4f} -> {metrics_file}\n"
        f"evaluate: MLflow run {result.run.run_id} in experiment '{result.run.experiment}'"
    )


def champion(identity: Mapping[str, str], *, out: str) -> str:
    """The champion's identity, key by key."""
    described = ", ".join(f"{key} {value}" for key, value in sorted(identity.items()))
    return f"champion: {described} -> {out}"


def gate_lines(results: Iterable[GateResult]) -> str:
    """One line per gate, each with the checks that did not pass under it."""
    return "\n".join(gate_line(result) for result in results)


def gate_line(result: GateResult) -> str:
    """A gate's status and mode; the checks that did not pass, with why when undecided."""
    line = f"gate {result.name} ({result.mode}): {result.status}"
    if result.status in ("skipped", "off"):
        return f"{line}: {'; '.join(result.notes)}"
    passed = sum(c.status == "pass" for c in result.checks)
    line += f", {passed} condition(s) passed"
    for check in (c for c in result.checks if c.status in _SHOWN):
        line += f"\n  {check.status}: {check.title} [{check.dataset}] {check.value}"
        if check.status == "inconclusive":
            line += f"\n    {check.reason}"
    return line


def collected(verdict: Verdict, results: Iterable[GateResult], *, out: str) -> str:
    """Every gate's line, then the verdict and where the record went."""
    return f"{gate_lines(results)}\nverdict: {verdict.headline} -> {out}"

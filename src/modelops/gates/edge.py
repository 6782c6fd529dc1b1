"""Gate `edge`: would the candidate make an edge bundle that scores as the trained pipeline does?

It applies only when `deploy.environments` has an edge environment (strategy edge): those
environments release bundles, and a bundle that fails parity cannot be published. For each
format they use, the stage hands this gate `modelops export`'s own code (`modelops.edge.export`,
a package the gates cannot import), run on the candidate unsigned and into a temporary folder:
a pull request holds no signing key and publishes nothing. The exporter scores the test set and
the edge cases with the bundle (through the device's code) and with the trained pipeline; this
gate turns its answer into one check per format: the rows compared, the largest |Δp| against
`gates.edge.tolerance`, the rows classed differently at `evaluate.threshold` (none may be), or
the exporter's refusal, whose message names the cause and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from modelops.errors import ModelopsError
from modelops.gates.results import CheckRecord, GateResult, gate_status
from modelops.params import EdgeEnvironmentParams

if TYPE_CHECKING:
    from modelops.params import DeployParams, EdgeFormat, EdgeGateParams, Params

TITLE = "Edge bundle parity"
NOT_APPLICABLE = (
    "does not apply: no environment in deploy.environments has strategy edge, so no bundle is "
    "exported"
)


class Answer(Protocol):
    """The exporter's answer for one format (`modelops.edge.export.Outcome`)."""

    @property
    def published(self) -> Mapping[str, Any] | None: ...
    @property
    def refusal(self) -> str: ...
    @property
    def parity(self) -> Mapping[str, Any] | None: ...


Exporter: TypeAlias = Callable[["EdgeFormat"], Answer]
"""Runs `modelops export` for a format on the candidate, unsigned, publishing nothing.
Raises ModelopsError when it cannot run at all (no edge/.venv, a crash)."""


def edge_formats(deploy: DeployParams) -> dict[EdgeFormat, list[str]]:
    """The formats the edge environments use, each with its environments, in a stable order."""
    formats: dict[EdgeFormat, list[str]] = {}
    for name, environment in sorted(deploy.environments.items()):
        if isinstance(environment, EdgeEnvironmentParams):
            formats.setdefault(environment.format, []).append(name)
    return dict(sorted(formats.items()))


def edge_gate(params: Params, export: Exporter) -> GateResult:
    """Export the candidate in every format an edge environment uses; one check per format."""
    section = params.gates.edge
    formats = edge_formats(params.deploy)
    if not formats:
        return GateResult("edge", section.mode, "skipped", notes=(NOT_APPLICABLE,))
    records = []
    for fmt, environments in formats.items():
        if fmt in section.skip:
            records.append(_left_out(fmt))
            continue
        try:
            answer = export(fmt)
        except ModelopsError as exc:
            records.append(_could_not_run(fmt, str(exc)))
            continue
        records.append(judge(fmt, answer, section, environments=environments))
    # No timings: the record repeats exactly on the same inputs, as the gates' records do.
    described = "; ".join(f"{fmt} for {', '.join(envs)}" for fmt, envs in formats.items())
    context = {"edge": described}
    return GateResult(
        "edge", section.mode, gate_status(records), checks=tuple(records), context=context
    )


def judge(
    fmt: EdgeFormat, answer: Answer, section: EdgeGateParams, *, environments: list[str]
) -> CheckRecord:
    """One format's check from the exporter's answer (pure)."""
    parity = answer.parity
    formats = "; ".join(f"deploy.environments.{env}.format = {fmt}" for env in environments)
    if parity is None:
        return CheckRecord(
            fmt,
            f"{TITLE} ({fmt})",
            "test set + edge cases",
            f"`modelops export --format {fmt}` converts the model",
            "refused before any row was scored",
            "fail",
            answer.refusal,
            tuned_by=formats,
        )
    condition = (
        f"max |Δp| ≤ {parity['tolerance']:g} and the same class at evaluate.threshold "
        f"{parity['threshold']:g} on every row"
    )
    value = (
        f"max |Δp| {parity['max_abs_diff']:.3g} (mean {parity['mean_abs_diff']:.3g}), "
        f"{parity['disagreements']} of {parity['rows']} rows classed differently"
    )
    if answer.published is not None:
        value += f"; archive {_size(int(answer.published['archive_bytes']))}"
    passed = answer.published is not None and bool(parity["passed"])
    return CheckRecord(
        fmt,
        f"{TITLE} ({fmt})",
        f"{parity['test_rows']} test rows + {parity['edge_rows']} edge cases",
        condition,
        value,
        "pass" if passed else "fail",
        "" if passed else answer.refusal,
        tuned_by=f"gates.edge.tolerance = {section.tolerance:g}; {formats}",
    )


def _could_not_run(fmt: EdgeFormat, problem: str) -> CheckRecord:
    return CheckRecord(
        fmt,
        f"{TITLE} ({fmt})",
        "test set + edge cases",
        f"`modelops export --format {fmt}` runs",
        problem,
        "error",
        "the export could not run, so the gate fails closed",
    )


def _left_out(fmt: EdgeFormat) -> CheckRecord:
    return CheckRecord(
        fmt, f"{TITLE} ({fmt})", "-", "", "", "off", "left out in params.yaml (gates.edge.skip)"
    )


def _size(size: int) -> str:
    """'118 KB' or '1.4 MB'."""
    return f"{size / 1e6:.2g} MB" if size >= 1e6 else f"{size / 1e3:.3g} KB"

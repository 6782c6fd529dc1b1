"""Gate results and the verdict: pure data, no Deepchecks (the report and verdict read these).

A gate is a list of checks. A check whose condition is not met, or that errors or times out,
fails its gate (fail closed); only checks that genuinely do not apply are skipped, with the
reason. Thresholds are the user's, so severity comes from the gate's mode: a failed gate blocks
the merge when its mode is `enforce`, and is a warning when it is `warn`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Self, TypeAlias

CheckStatus: TypeAlias = Literal["pass", "fail", "error", "timeout", "not_applicable", "off"]
GateStatus: TypeAlias = Literal["pass", "fail", "skipped", "off"]
VerdictStatus: TypeAlias = Literal["pass", "warn", "fail"]
GATE_ORDER = ("data", "drift", "model", "champion")
FAILING: frozenset[str] = frozenset({"fail", "error", "timeout"})


@dataclass(frozen=True)
class CheckRecord:
    """One condition of one check on one dataset, as a reviewer reads it."""

    check: str
    title: str
    dataset: str
    condition: str
    value: str
    status: CheckStatus
    reason: str = ""


@dataclass(frozen=True)
class GateResult:
    """A gate's checks, its status, and what a reviewer should know about how it ran."""

    name: str
    mode: Literal["enforce", "warn", "off"]
    status: GateStatus
    checks: tuple[CheckRecord, ...] = ()
    notes: tuple[str, ...] = ()
    html: str | None = None
    context: dict[str, str] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        """Whether this gate stops the merge."""
        return self.mode == "enforce" and self.status == "fail"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        """Inverse of `to_dict`."""
        checks = tuple(CheckRecord(**check) for check in raw.get("checks", ()))
        return cls(
            name=raw["name"],
            mode=raw["mode"],
            status=raw["status"],
            checks=checks,
            notes=tuple(raw.get("notes", ())),
            html=raw.get("html"),
            context=dict(raw.get("context", {})),
        )


@dataclass(frozen=True)
class Verdict:
    """The answer to "is it safe to merge?", and the gates behind it."""

    status: VerdictStatus
    headline: str
    blocking: tuple[str, ...]
    warnings: tuple[str, ...]


def gate_status(checks: Sequence[CheckRecord]) -> GateStatus:
    """Fail if any check failed, errored or timed out; skipped if none ran; else pass."""
    statuses = {check.status for check in checks}
    if statuses & FAILING:
        return "fail"
    return "pass" if "pass" in statuses else "skipped"


def verdict(gates: Iterable[GateResult]) -> Verdict:
    """Blocked by any failed enforced gate; a warning for each failed warn-mode gate."""
    ordered = sorted(gates, key=lambda gate: _order(gate.name))
    blocking = tuple(gate.name for gate in ordered if gate.blocking)
    warnings = tuple(gate.name for gate in ordered if gate.status == "fail" and gate.mode == "warn")
    if blocking:
        return Verdict(
            status="fail",
            headline=f"Blocked: enforced gate(s) failed: {', '.join(blocking)}",
            blocking=blocking,
            warnings=warnings,
        )
    if warnings:
        return Verdict(
            status="warn",
            headline=f"Safe to merge, with warnings from: {', '.join(warnings)}",
            blocking=(),
            warnings=warnings,
        )
    return Verdict(
        status="pass", headline="Safe to merge: every gate passed", blocking=(), warnings=()
    )


def gates_document(gates: Iterable[GateResult]) -> dict[str, Any]:
    """The content of `reports/gates.json`: the verdict, then every gate in a fixed order."""
    ordered = sorted(gates, key=lambda gate: _order(gate.name))
    outcome = verdict(ordered)
    return {
        "verdict": {
            "status": outcome.status,
            "headline": outcome.headline,
            "blocking": list(outcome.blocking),
            "warnings": list(outcome.warnings),
        },
        "gates": [gate.to_dict() for gate in ordered],
    }


def read_gates(document: dict[str, Any]) -> tuple[GateResult, ...]:
    """Gates from the content of `reports/gates.json`."""
    return tuple(GateResult.from_dict(raw) for raw in document["gates"])


def _order(name: str) -> int:
    return GATE_ORDER.index(name) if name in GATE_ORDER else len(GATE_ORDER)

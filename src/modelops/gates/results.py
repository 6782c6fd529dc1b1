"""Gate results and the verdict: pure data, no Deepchecks (the report and verdict read these).

A gate is a list of checks. A check whose condition is not met, or that errors or times out,
fails its gate (fail closed); only checks that genuinely do not apply are skipped, with the
reason. Thresholds are the user's, so severity comes from the gate's mode: a failed gate blocks
the merge when its mode is `enforce`, and is a warning when it is `warn`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NotRequired, Self, TypeAlias, TypedDict

from modelops.errors import ModelopsError
from modelops.gates.registry import UNREPEATABLE, position
from modelops.identity import IdentityDocument, ModelIdentity

if TYPE_CHECKING:
    from modelops.params.gates import GateMode

CheckStatus: TypeAlias = Literal[
    "pass", "fail", "inconclusive", "error", "timeout", "not_applicable", "off"
]
GateStatus: TypeAlias = Literal["pass", "fail", "inconclusive", "skipped", "off"]
VerdictStatus: TypeAlias = Literal["pass", "warn", "fail"]
FAILING: frozenset[str] = frozenset({"fail", "error", "timeout"})


class CheckDocument(TypedDict):
    """A `CheckRecord` in JSON."""

    check: str
    title: str
    dataset: str
    condition: str
    value: str
    status: CheckStatus
    reason: str
    tuned_by: str
    leans_fail: NotRequired[bool]


class GateDocument(TypedDict):
    """A `GateResult` in JSON: `reports/gates/<gate>.json`, and each gate of `gates.json`."""

    name: str
    mode: GateMode
    status: GateStatus
    checks: list[CheckDocument]
    notes: list[str]
    html: str | None
    context: dict[str, str]
    judged: IdentityDocument | None


class VerdictDocument(TypedDict):
    status: VerdictStatus
    headline: str
    blocking: list[str]
    warnings: list[str]


class GatesDocument(TypedDict):
    """`reports/gates.json`: the model judged, the verdict, every gate in order."""

    judged: IdentityDocument | None
    verdict: VerdictDocument
    gates: list[GateDocument]


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
    tuned_by: str = ""
    """The params.yaml key(s) that tune this condition, with their current values."""
    leans_fail: bool = False
    """Inconclusive with its estimate already beyond the limit: more data would most likely
    fail it, so the verdict asks for a review instead of reading it as passed."""


@dataclass(frozen=True)
class GateResult:
    """A gate's checks, its status, and what a reviewer should know about how it ran."""

    name: str
    mode: GateMode
    status: GateStatus
    checks: tuple[CheckRecord, ...] = ()
    notes: tuple[str, ...] = ()
    html: str | None = None
    context: dict[str, str] = field(default_factory=dict)
    judged: ModelIdentity | None = None
    """The model the gate looked at (model and champion gates): what a deploy must match."""

    @property
    def blocking(self) -> bool:
        """Whether this gate stops the merge."""
        return self.mode == "enforce" and self.status == "fail"

    def to_dict(self) -> GateDocument:
        """JSON-ready form."""
        return {
            "name": self.name,
            "mode": self.mode,
            "status": self.status,
            "checks": [
                {
                    "check": check.check,
                    "title": check.title,
                    "dataset": check.dataset,
                    "condition": check.condition,
                    "value": check.value,
                    "status": check.status,
                    "reason": check.reason,
                    "tuned_by": check.tuned_by,
                    "leans_fail": check.leans_fail,
                }
                for check in self.checks
            ],
            "notes": list(self.notes),
            "html": self.html,
            "context": dict(self.context),
            "judged": self.judged.to_dict() if self.judged else None,
        }

    @classmethod
    def from_dict(cls, raw: GateDocument) -> Self:
        """Inverse of `to_dict`."""
        checks = tuple(CheckRecord(**check) for check in raw.get("checks", ()))
        judged = raw.get("judged")
        return cls(
            name=raw["name"],
            mode=raw["mode"],
            status=raw["status"],
            checks=checks,
            notes=tuple(raw.get("notes", ())),
            html=raw.get("html"),
            context=dict(raw.get("context", {})),
            judged=ModelIdentity.from_dict(judged) if judged else None,
        )


@dataclass(frozen=True)
class Verdict:
    """The answer to "is it safe to merge?", and the gates behind it."""

    status: VerdictStatus
    headline: str
    blocking: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class GatesRecord:
    """What `reports/gates.json` says: the model the gates judged, and their verdict."""

    judged: ModelIdentity | None
    verdict: Verdict
    repeatable: Verdict
    """The verdict a rerun on the same inputs repeats (`repeatable_verdict`): what a committed
    record is held to."""


def gate_status(checks: Sequence[CheckRecord]) -> GateStatus:
    """Fail if any check failed, errored or timed out; pass if any passed; inconclusive if the
    checks that ran could only say that the data is too small; skipped if none ran."""
    statuses = {check.status for check in checks}
    if statuses & FAILING:
        return "fail"
    if "pass" in statuses:
        return "pass"
    return "inconclusive" if "inconclusive" in statuses else "skipped"


def verdict(gates: Iterable[GateResult]) -> Verdict:
    """Is it safe to merge? The headline counts what was decided and what was not.

    Blocked by any failed enforced gate. "Needs review" when an inconclusive check leans toward
    failing (its estimate is beyond the limit; the data is too small to be sure). Otherwise safe
    to merge, with a warning for each failed warn-mode gate and each gate whose checks were all
    inconclusive, and the count of checks passed and inconclusive: too little data never reads
    as "every gate passed".
    """
    ordered = sorted(gates, key=lambda gate: position(gate.name))
    blocking = tuple(gate.name for gate in ordered if gate.blocking)
    counted = [
        (gate.name, check) for gate in ordered if gate.mode != "off" for check in gate.checks
    ]
    leaning = [(name, c) for name, c in counted if c.status == "inconclusive" and c.leans_fail]
    warned = [
        gate
        for gate in ordered
        if (gate.status == "fail" and gate.mode == "warn")
        or (gate.status == "inconclusive" and gate.mode != "off")
    ]
    warnings = tuple(
        dict.fromkeys([*(gate.name for gate in warned), *(name for name, _ in leaning)])
    )
    tally = _tally(
        passed=sum(check.status == "pass" for _, check in counted),
        inconclusive=sum(check.status == "inconclusive" for _, check in counted),
    )
    if blocking:
        return Verdict(
            status="fail",
            headline=f"Blocked: enforced gate(s) failed: {', '.join(blocking)}",
            blocking=blocking,
            warnings=warnings,
        )
    if leaning:
        named = ", ".join(dict.fromkeys(f"{check.title} ({name})" for name, check in leaning))
        return Verdict(
            status="warn",
            headline=f"Needs review: {len(leaning)} inconclusive check(s) lean toward failing: "
            f"{named}; {tally}",
            blocking=(),
            warnings=warnings,
        )
    if warned:
        described = ", ".join(
            f"{gate.name} ({'inconclusive' if gate.status == 'inconclusive' else 'failed'})"
            for gate in warned
        )
        return Verdict(
            status="warn",
            headline=f"Safe to merge, with warnings from: {described}; {tally}",
            blocking=(),
            warnings=warnings,
        )
    return Verdict(status="pass", headline=f"Safe to merge: {tally}", blocking=(), warnings=())


def repeatable_verdict(gates: Iterable[GateResult]) -> Verdict:
    """The verdict without what a rerun may not repeat: a gate that measures time (the latency
    gate, `registry.Gate.repeatable`) counts only when it blocks.

    Its pass, warning or inconclusive depend on the machine and its load, so a record committed
    from a laptop and a CI run can differ there without either being stale; a block never
    goes unnoticed.
    """
    return verdict(gate for gate in gates if gate.name not in UNREPEATABLE or gate.blocking)


def _tally(*, passed: int, inconclusive: int) -> str:
    """'12 checks passed, 3 inconclusive (too little data)'."""
    text = f"{passed} check{'' if passed == 1 else 's'} passed"
    return f"{text}, {inconclusive} inconclusive (too little data)" if inconclusive else text


def gates_document(gates: Iterable[GateResult]) -> GatesDocument:
    """The content of `reports/gates.json`: the verdict, the model judged, every gate in order.

    Raises:
        ModelopsError: the model gates judged different models (run them together again).
    """
    ordered = sorted(gates, key=lambda gate: position(gate.name))
    outcome = verdict(ordered)
    judged = {gate.judged for gate in ordered if gate.judged is not None}
    if len(judged) > 1:
        seen = ", ".join(sorted(identity.describe() for identity in judged))
        raise ModelopsError(
            f"the model gates judged different models ({seen}): run `dvc repro` so that every "
            "gate judges the current model"
        )
    return {
        "judged": judged.pop().to_dict() if judged else None,
        "verdict": {
            "status": outcome.status,
            "headline": outcome.headline,
            "blocking": list(outcome.blocking),
            "warnings": list(outcome.warnings),
        },
        "gates": [gate.to_dict() for gate in ordered],
    }


def read_gates(document: GatesDocument) -> tuple[GateResult, ...]:
    """Gates from the content of `reports/gates.json`."""
    return tuple(GateResult.from_dict(raw) for raw in document["gates"])


def read_record(document: GatesDocument) -> GatesRecord:
    """The judged model and the verdict (recomputed from the gates) of `reports/gates.json`."""
    judged = document.get("judged")
    gates = read_gates(document)
    return GatesRecord(
        judged=ModelIdentity.from_dict(judged) if judged else None,
        verdict=verdict(gates),
        repeatable=repeatable_verdict(gates),
    )

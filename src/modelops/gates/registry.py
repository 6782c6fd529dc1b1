"""The pull-request gates, declared once: name, params section, whether it judges a model, checks.

Everything that lists gates reads `GATES`: the choices of `modelops gate NAME`, the stage that
runs them, the order of `reports/gates.json` and of the verdict (so the report's), the stage that
collects them. `dvc.yaml` cannot import it; `tests/test_wiring.py` holds its stages to it. Adding
a gate is one entry here, its section in `params/gates.py` and its checks in `catalog.py` (or,
for a gate that compares the candidate with the champion, its comparison function; for the gate
of the edge exporter's answers, its judgment).

Importing this module imports no Deepchecks: a gate's checks are read from `catalog` only when it
runs, so the command line offers the names at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from modelops.errors import ModelopsError

if TYPE_CHECKING:
    from modelops.gates.catalog import CheckSpec
    from modelops.gates.champion import Matchup
    from modelops.gates.edge import Exporter
    from modelops.gates.results import GateResult
    from modelops.params import (
        ChampionGateParams,
        DataGateParams,
        DriftGateParams,
        EdgeGateParams,
        GatesParams,
        LatencyGateParams,
        ModelGateParams,
        Params,
    )

# Strings, so that naming the gates (the command line does) imports no pydantic.
GateParams: TypeAlias = (
    "DataGateParams | DriftGateParams | ModelGateParams | ChampionGateParams | LatencyGateParams"
    " | EdgeGateParams"
)
Comparison: TypeAlias = "Callable[[GatesParams, Matchup], GateResult]"
"""A gate that judges the candidate against the champion (found once for all such gates)."""
ExportJudgment: TypeAlias = "Callable[[Params, Exporter], GateResult]"
"""A gate that judges the edge exporter's answers on the candidate; the stage gives it the
exporter (`modelops.edge`, which the gates cannot import: it imports what imports them)."""


@dataclass(frozen=True)
class Gate:
    """One gate."""

    name: str
    """`modelops gate NAME`, its result `reports/gates/NAME.json`, its section `gates.NAME`."""
    section: Callable[[GatesParams], GateParams]
    """Its section of `params.gates` (mode, skipped checks, limits)."""
    needs_model: bool
    """It judges the trained model: loads it, and records which model it judged."""
    # Each gate's checks read its own section (CheckSpec[DataGateParams]...): Any stands for
    # "the type `section` returns", which a tuple of different gates cannot say.
    checks: Callable[[], tuple[CheckSpec[Any], ...]] | None
    """Its Deepchecks checks (`catalog`); None for the gates that have none."""
    against_champion: Callable[[], Comparison] | None = None
    """Its comparison with the champion (`champion.py`, `latency.py`); None for Deepchecks."""
    judge_export: Callable[[], ExportJudgment] | None = None
    """Its judgment of the edge exporter's answers (`edge.py`); None for the others."""
    repeatable: bool = True
    """A rerun on the same inputs gives the same result. A measurement of time does not (the
    machine and its load differ): a committed record is held to a run's without it, unless it
    blocks (`results.repeatable_verdict`)."""


def _data_checks() -> tuple[CheckSpec[DataGateParams], ...]:
    from modelops.gates import catalog

    return catalog.DATA


def _drift_checks() -> tuple[CheckSpec[DriftGateParams], ...]:
    from modelops.gates import catalog

    return catalog.DRIFT


def _model_checks() -> tuple[CheckSpec[ModelGateParams], ...]:
    from modelops.gates import catalog

    return catalog.MODEL


def _champion_comparison() -> Comparison:
    from modelops.gates.champion import champion_gate

    return champion_gate


def _latency_comparison() -> Comparison:
    from modelops.gates.latency import latency_gate

    return latency_gate


def _edge_judgment() -> ExportJudgment:
    from modelops.gates.edge import edge_gate

    return edge_gate


GATES: tuple[Gate, ...] = (
    Gate("data", lambda gates: gates.data, needs_model=False, checks=_data_checks),
    Gate("drift", lambda gates: gates.drift, needs_model=False, checks=_drift_checks),
    Gate("model", lambda gates: gates.model, needs_model=True, checks=_model_checks),
    Gate(
        "champion",
        lambda gates: gates.champion,
        needs_model=True,
        checks=None,
        against_champion=_champion_comparison,
    ),
    Gate(
        "latency",
        lambda gates: gates.latency,
        needs_model=True,
        checks=None,
        against_champion=_latency_comparison,
        repeatable=False,
    ),
    Gate(
        "edge",
        lambda gates: gates.edge,
        needs_model=True,
        checks=None,
        judge_export=_edge_judgment,
    ),
)
"""In the order they run and are shown."""
GATE_NAMES: tuple[str, ...] = tuple(gate.name for gate in GATES)
UNREPEATABLE: frozenset[str] = frozenset(gate.name for gate in GATES if not gate.repeatable)
"""Gates whose results a rerun on the same inputs need not repeat (`Gate.repeatable`)."""


def gate(name: str) -> Gate:
    """The gate called `name`.

    Raises:
        ModelopsError: no gate has that name; the message lists the gates.
    """
    for candidate in GATES:
        if candidate.name == name:
            return candidate
    raise ModelopsError(f"no gate '{name}': the gates are {', '.join(GATE_NAMES)}")


def position(name: str) -> int:
    """Where the gate shows in `reports/gates.json` and the verdict (unknown names last)."""
    return GATE_NAMES.index(name) if name in GATE_NAMES else len(GATE_NAMES)

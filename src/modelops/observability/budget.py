"""The error-budget policy: no new canary while an objective of the environment has spent its
budget (runbooks/slo.md), unless a person overrides it with a reason.

The remaining budget is the recording rule `modelops:slo_error_budget_remaining:ratio` that
the rendered rules keep per objective (`slo` label) and namespace: 1 is untouched, 0 spent.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelops_contract import records

from modelops.errors import PrometheusError
from modelops.telemetry.prometheus import Prometheus
from modelops.telemetry.promql import Sample

REMAINING = records.SLO_ERROR_BUDGET_REMAINING


@dataclass(frozen=True)
class BudgetCheck:
    """What the budget says about starting a canary in one namespace."""

    spent: tuple[str, ...] = ()
    """Objectives whose budget is spent, each with what is left (e.g. 'availability -35%')."""
    note: str = ""
    """Why the budget could not be checked, when it could not."""

    @property
    def allows(self) -> bool:
        return not self.spent


def budget_query(namespace: str) -> str:
    return f'{REMAINING}{{namespace="{namespace}"}}'


def check_budget(prometheus: Prometheus | None, namespace: str) -> BudgetCheck:
    """The budget of every objective in `namespace`; a note (never a refusal) when it is unknown."""
    if prometheus is None:
        return BudgetCheck(
            note="error budget not checked: no Prometheus (monitoring.prometheus_url or "
            "$MODELOPS_PROMETHEUS_URL)"
        )
    try:
        vector = prometheus.query(budget_query(namespace))
    except PrometheusError as exc:
        return BudgetCheck(note=f"error budget not checked: {exc}")
    if not vector:
        return BudgetCheck(note=f"error budget not checked: no {REMAINING} for {namespace} yet")
    spent = []
    for sample in vector:
        remaining = _remaining(sample)
        if remaining is not None and remaining <= 0:
            objective = sample.get("metric", {}).get("slo", "objective")
            spent.append(f"{objective} {remaining:.0%}")
    return BudgetCheck(spent=tuple(sorted(spent)))


def _remaining(sample: Sample) -> float | None:
    try:
        return float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None

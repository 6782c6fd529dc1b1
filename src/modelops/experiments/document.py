"""An experiment's verdict and plan as documents (pure): Markdown for the reviewer, JSON for
`release experiment conclude` and machines, text for a terminal."""

from __future__ import annotations

import json
import math
from typing import Any

from modelops.experiments.analysis import Analysis, ExperimentPlan
from modelops.experiments.evidence import interval_text
from modelops.params import CONTROL
from modelops.telemetry.promql import increase_note

TITLES = {
    "winner": "Winner",
    "no-difference": "No difference",
    "keep-running": "Keep running",
    "stop": "Stop",
}
_MARK = {"pass": "✅ pass", "breached": "❌ breached", "inconclusive": "⏳ inconclusive"}


def headline(analysis: Analysis) -> str:
    """One line: the verdict and what it says to do."""
    verdict = analysis.judgement.verdict
    name = f"{analysis.evidence.environment} {analysis.evidence.experiment}"
    if verdict.kind == "winner":
        return f"{name}: {verdict.winner} wins (conclude it: the winner takes all traffic)"
    if verdict.kind == "no-difference":
        return f"{name}: no difference worth switching for (conclude it: {CONTROL} stays)"
    if verdict.kind == "stop":
        return f"{name}: stop the experiment ({verdict.reasons[0]})"
    more = verdict.more_units_total
    wanted = "" if more is None else f": about {more:,.0f} more KPI rows would decide"
    return f"{name}: keep running{wanted}"


def to_json(analysis: Analysis) -> str:
    """The verdict as JSON (NaN and infinities as null)."""
    judgement, evidence = analysis.judgement, analysis.evidence
    srm = judgement.srm
    document: dict[str, Any] = {
        "environment": evidence.environment,
        "experiment": evidence.experiment,
        "kind": judgement.verdict.kind,
        "winner": judgement.verdict.winner,
        "exit_code": judgement.verdict.exit_code,
        "summary": headline(analysis),
        "reasons": list(judgement.verdict.reasons),
        "more_units": judgement.verdict.more_units,
        "more_units_total": judgement.verdict.more_units_total,
        "judged_at": analysis.judged_at,
        "started_at": evidence.started_at,
        "seconds": evidence.seconds,
        "prometheus": analysis.prometheus,
        "primary": analysis.settings.primary,
        "minimum_effect": analysis.settings.minimum_effect,
        "alpha": analysis.settings.alpha,
        "sample_ratio": {
            "units": dict(srm.counts),
            "planned": dict(srm.planned),
            "observed": dict(srm.observed),
            "processes": evidence.processes,
            "p_value": srm.p_value,
            "mismatch": srm.mismatch,
        },
        "variants": {
            name: {
                "model_version": counts.version,
                "units": counts.units,
                "rows": counts.rows,
                "rows_without_unit": counts.unassigned,
                "kpi_rows": judgement.kpi[name].n,
                "kpi": judgement.kpi[name].mean,
                "kpi_adjusted": judgement.cuped.samples[name].mean,
            }
            for name, counts in evidence.variants.items()
        },
        "cuped": {
            "applied": judgement.cuped.applied,
            "reason": judgement.cuped.reason,
            "variance_reduction": judgement.cuped.reduction,
        },
        "comparisons": [
            {
                "candidate": p.candidate,
                "difference": _interval(p.interval),
                "samples": p.samples,
                "alpha": p.alpha,
            }
            for p in judgement.primaries
        ],
        "guardrails": [
            {
                "candidate": g.candidate,
                "name": g.name,
                "difference": _interval(g.interval),
                "margin": g.margin,
                "outcome": g.outcome,
            }
            for g in judgement.guardrails
        ],
        "guardrails_skipped": dict(judgement.skipped),
        "plan": {
            "kpi_rows": judgement.plan.units_total,
            "fixed_horizon_kpi_rows": judgement.plan.fixed_horizon_total,
        },
        "queries": dict(evidence.queries),
    }
    return json.dumps(_finite(document), indent=2, ensure_ascii=False) + "\n"


def to_markdown(analysis: Analysis) -> str:
    """The verdict for a reviewer: the decision, the split, the KPI, the guardrails."""
    judgement, evidence, settings = analysis.judgement, analysis.evidence, analysis.settings
    verdict, srm = judgement.verdict, judgement.srm
    days = evidence.seconds / 86_400
    lines = [
        f"# Experiment verdict: {TITLES[verdict.kind]}",
        "",
        f"**{headline(analysis)}**",
        "",
        *(f"- {reason}" for reason in verdict.reasons),
        "",
        f"Experiment `{evidence.experiment}` in {evidence.environment}, running {days:.1f} days "
        f"(since {evidence.started_at}); judged {analysis.judged_at} on {analysis.prometheus}. "
        f"Primary KPI: {settings.primary}, minimum effect {settings.minimum_effect:g}, alpha "
        f"{settings.alpha:g} at every look (always-valid intervals: looking daily is safe).",
        "",
        "## 1. Sample ratio",
        "",
        "| variant | planned | units | observed share |",
        "| --- | --- | --- | --- |",
        *(
            f"| {name} | {srm.planned.get(name, 0):.1%} | {srm.counts.get(name, 0):,.0f} | "
            f"{_share(srm.observed.get(name, math.nan))} |"
            for name in evidence.variants
        ),
        "",
        f"Anytime-valid p-value {srm.p_value:.3g} "
        f"({'**mismatch**' if srm.mismatch else 'no mismatch'} at alpha {srm.alpha:g}); units "
        f"are counted once per server process, and {evidence.processes:.0f} processes ran it, "
        "so the counts are divided by that before testing (a unit may be counted by each).",
        "",
        f"## 2. Primary KPI: {settings.primary}",
        "",
        "| variant | KPI rows | value | adjusted (CUPED) |",
        "| --- | --- | --- | --- |",
        *(
            f"| {name} | {judgement.kpi[name].n:,.0f} | {_number(judgement.kpi[name].mean)} | "
            f"{_number(judgement.cuped.samples[name].mean)} |"
            for name in evidence.variants
        ),
        "",
        *(
            f"- {p.candidate} - {CONTROL}: {interval_text(p.interval)} "
            f"(effective rows {p.samples:,.0f}, alpha {p.alpha:.3g})"
            for p in judgement.primaries
        ),
        "",
        f"CUPED: {'applied, ' if judgement.cuped.applied else 'not applied: '}"
        f"{judgement.cuped.reason}"
        + (
            f", variance reduced by {judgement.cuped.reduction:.0%}"
            if judgement.cuped.applied
            else ""
        )
        + f". Planned: {judgement.plan.units_total:,.0f} KPI rows in all "
        f"({judgement.plan.fixed_horizon_total:,.0f} for a single look at the end).",
        "",
        "## 3. Guardrails (non-inferiority)",
        "",
        "| candidate | guardrail | difference | margin | outcome |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {g.candidate} | {g.name} | {interval_text(g.interval)} | {g.margin:g} | "
            f"{_MARK[g.outcome]} |"
            for g in judgement.guardrails
        ),
        *(f"\nSkipped: {name} ({why})" for name, why in judgement.skipped.items()),
        "",
        f"Counts are {increase_note('experiment')}. Rows without a unit "
        f"({sum(c.unassigned for c in evidence.variants.values()):,.0f}) are served by "
        f"{CONTROL} and left out of the comparison; stable's requests, errors and latency "
        "include them.",
        "",
    ]
    return "\n".join(lines)


def to_text(analysis: Analysis) -> str:
    """The verdict for a terminal."""
    verdict = analysis.judgement.verdict
    lines = [headline(analysis), *(f"  {reason}" for reason in verdict.reasons[1:])]
    for g in analysis.judgement.guardrails:
        lines.append(f"  {g.outcome:<12} {g.candidate} {g.name}: {interval_text(g.interval)}")
    return "\n".join(lines)


def plan_text(planned: ExperimentPlan) -> str:
    """What the experiment needs, and whether it fits in max_days."""
    settings, plan = planned.settings, planned.plan
    split = ", ".join(f"{name} {share}%" for name, share in settings.split.items())
    rows = {
        "business_value": "labelled predictions",
        "recall": "actual positives",
        "precision": "predicted positives",
    }[settings.primary]
    per_day = planned.labels_per_day * planned.rows_per_label
    days = planned.days
    lines = [
        f"experiment plan: {planned.environment} {settings.name} ({split}), primary "
        f"{settings.primary}, minimum effect {settings.minimum_effect:g}, alpha "
        f"{settings.alpha:g}, power {settings.power:g}",
        f"  needs {plan.units_total:,.0f} {rows} in all ("
        + ", ".join(f"{name} {units:,.0f}" for name, units in plan.units.items())
        + f"); one look at the end would need {plan.fixed_horizon_total:,.0f} (looking every "
        f"day costs {plan.price:.2f}x)",
        f"  traffic over the last {planned.window}: {per_day:,.0f} {rows} a day"
        + (
            f" (of {planned.labels_per_day:,.0f} labelled predictions)"
            if settings.primary != "business_value"
            else ""
        ),
    ]
    if math.isinf(days):
        lines.append(
            f"  no labelled predictions in the last {planned.window}: the experiment could not "
            "decide (send truth through /api/v1.0/feedback, or plan from a longer --window)"
        )
    else:
        lines.append(
            f"  about {days:.1f} days (truth arrives {planned.delay_days:g} d late): "
            + (
                f"fits experiments.{planned.environment}.max_days ({settings.max_days})"
                if planned.fits
                else f"longer than experiments.{planned.environment}.max_days "
                f"({settings.max_days}): raise minimum_effect, alpha or the candidates' share"
            )
        )
    return "\n".join(lines)


def _interval(interval: Any) -> dict[str, float]:
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high}


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2%}"


def _number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4g}"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value

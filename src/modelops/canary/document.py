"""A verdict as documents (pure): Markdown for people, JSON for machines, text for a terminal."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from modelops.canary.criteria import Finding
from modelops.canary.judge import Verdict
from modelops.telemetry.promql import increase_note

_MARK = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "inconclusive": "⏳ inconclusive",
    "skipped": "⏭️ skipped",
}
_TERMINAL = {"pass": "ok  ", "fail": "FAIL", "inconclusive": "wait", "skipped": "skip"}


@dataclass(frozen=True)
class Step:
    """Which step of which release was judged, when, and against which Prometheus."""

    environment: str
    canary_version: str
    stable_version: str
    weight: int
    started: str
    judged_at: str
    prometheus: str


def to_json(verdict: Verdict, step: Step) -> str:
    """The verdict as JSON (NaN and infinities as null, so any parser reads it)."""
    document: dict[str, object] = {
        "decision": verdict.decision,
        "summary": verdict.summary,
        "exit_code": verdict.exit_code,
        "step": asdict(step),
        "canary_requests": verdict.canary_requests,
        "stable_requests": verdict.stable_requests,
        "step_seconds": verdict.step_seconds,
        "alpha": verdict.alpha,
        "method": verdict.method,
        "more_needed": verdict.more_needed,
        "findings": [_finite(asdict(finding)) for finding in verdict.findings],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


COUNTS = increase_note("step")


def to_markdown(verdict: Verdict, step: Step) -> str:
    """The verdict for a person: the decision first, then one row per criterion."""
    title = {"promote": "Promote", "hold": "Hold", "rollback": "Roll back"}[verdict.decision]
    lines = [
        f"# Canary verdict: {title}",
        "",
        f"**{verdict.summary}**",
        "",
        f"- Environment `{step.environment}`: canary `{step.canary_version}` at {step.weight}% "
        f"beside stable `{step.stable_version}`",
        f"- Step started {step.started}, judged {step.judged_at} "
        f"({verdict.step_seconds / 60:.1f} min in), Prometheus {step.prometheus}",
        f"- Requests in this step: canary {verdict.canary_requests:.0f}, stable "
        f"{verdict.stable_requests:.0f} ({COUNTS})",
        f"- Method: {verdict.method}; alpha {verdict.alpha:g} for the whole step",
        "",
        "| Criterion | Result | Statistic | Samples (canary / stable) | Estimate [interval] "
        "| Bound | Alpha | Why |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(finding) for finding in verdict.findings]
    queries = sorted({f.query for f in verdict.findings if f.query})
    if queries:
        lines += ["", "<details><summary>PromQL</summary>", ""]
        lines += [f"- `{query}`" for query in queries]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def to_text(verdict: Verdict) -> str:
    """The verdict as `canary analyze` and `canary auto` print it: the summary, one line per
    criterion with its interval, bound and samples, and how the judge looked."""
    lines = [verdict.summary]
    for f in verdict.findings:
        mark = _TERMINAL[f.status]
        if f.status == "skipped" and math.isnan(f.estimate):
            lines.append(f"  {mark} {f.criterion}: {f.reason}")
            continue
        lines.append(
            f"  {mark} {f.criterion}: {f.statistic} {_plain(f.estimate)} "
            f"[{_plain(f.low)}, {_plain(f.high)}], bound {f.threshold} (n canary "
            f"{f.canary_samples:.0f}, stable {f.stable_samples:.0f}); {f.reason}"
        )
    lines.append(
        f"  ({verdict.method}; alpha {verdict.alpha:g} per step over every look, "
        f"{verdict.step_seconds / 60:.1f} min into the step; {COUNTS})"
    )
    return "\n".join(lines)


def findings_text(verdict: Verdict) -> str:
    """One line per criterion and its reason (the release commit lists them)."""
    return "\n".join(f"  {_TERMINAL[f.status]} {f.criterion}: {f.reason}" for f in verdict.findings)


def _plain(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _row(finding: Finding) -> str:
    if finding.status == "skipped" and math.isnan(finding.estimate):
        return f"| {finding.criterion} | {_MARK['skipped']} | | | | | | {_cell(finding.reason)} |"
    estimate = f"{_number(finding.estimate)} [{_number(finding.low)}, {_number(finding.high)}]"
    samples = f"{finding.canary_samples:.0f} / {finding.stable_samples:.0f}"
    return (
        f"| {finding.criterion} | {_MARK[finding.status]} | {finding.statistic} | {samples} "
        f"| {estimate} | {finding.threshold} | {finding.alpha:.2g} | {_cell(finding.reason)} |"
    )


def _number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.4g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _finite(record: dict[str, object]) -> dict[str, object]:
    return {
        key: None if isinstance(value, float) and not math.isfinite(value) else value
        for key, value in record.items()
    }

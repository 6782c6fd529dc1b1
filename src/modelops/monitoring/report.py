"""The monitor's report (pure): Markdown with plots for people, JSON for the workflow, a few
lines for a terminal, and the decision log's commit message."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import TypedDict

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from modelops_contract import bin_labels

from modelops.monitoring.decide import Decision
from modelops.monitoring.drift import CRITERIA, Finding, Status
from modelops.monitoring.monitor import JudgedWindow, Look, devices, silent, unjudged
from modelops.statistics import Interval
from modelops.telemetry.profile import ReferenceProfile
from modelops.telemetry.promql import increase_note

_MARK = {"breach": "BREACH", "ok": "ok", "inconclusive": "n/a", "dismissed": "dismissed"}
_LEVEL = {"ok": 0, "dismissed": 1, "inconclusive": 2, "breach": 3}
_TERMINAL = {"breach": "X", "ok": ".", "dismissed": "d"}
PLOTS = ("criteria.png", "drift.png", "scores.png")


class IntervalDocument(TypedDict):
    estimate: float
    low: float
    high: float


class FindingDocument(TypedDict):
    criterion: str
    subject: str
    status: Status
    statistic: str
    value: IntervalDocument | None
    limit: float | None
    rows: int
    reference_rows: int
    reason: str


class EstimateDocument(TypedDict):
    method: str
    rows: int
    recall: IntervalDocument
    precision: IntervalDocument
    positive_share: IntervalDocument


class DevicesDocument(TypedDict):
    """Edge: the devices that reported rows in a window, and those rows."""

    reported: int
    rows: int


class WindowDocument(TypedDict):
    end: str
    findings: list[FindingDocument]
    estimate: EstimateDocument | None
    devices: DevicesDocument | None


class CauseDocument(TypedDict):
    criterion: str
    statuses: list[Status]
    breaches: int
    active: bool
    triggered: bool
    subjects: list[str]


class DecisionDocument(TypedDict):
    """What the workflow and `modelops retrain` read: whether to retrain, and why."""

    retrain: bool
    reasons: list[str]
    rule: str
    age_days: float | None
    causes: list[CauseDocument]


class ReportDocument(TypedDict):
    """`reports/monitor/<env>/report.json`: the whole look, for machines."""

    environment: str
    kind: str
    """How the environment's telemetry reaches Prometheus: pods, batch or edge."""
    telemetry: str
    model_version: str
    profile: str
    at: str
    window: str
    label_delay: str | None
    prometheus: str
    warning: str | None
    not_judged: str | None
    decision: DecisionDocument
    windows: list[WindowDocument]
    queries: dict[str, str]


def stamp(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(look: Look) -> str:
    """The whole look, for machines (the workflow reads `decision`)."""
    decision = look.decision
    document: ReportDocument = {
        "environment": look.environment,
        "kind": look.selector.kind,
        "telemetry": look.selector.describe(),
        "model_version": look.model.version,
        "profile": look.profile_source,
        "at": stamp(look.at),
        "window": look.window,
        "label_delay": look.label_delay,
        "prometheus": look.prometheus,
        "warning": silent(look),
        "not_judged": unjudged(look),
        "decision": {
            "retrain": decision.retrain,
            "reasons": list(decision.reasons),
            "rule": decision.rule,
            "age_days": None if decision.age_days is None else round(decision.age_days, 2),
            "causes": [
                {
                    "criterion": c.criterion,
                    "statuses": list(c.statuses),
                    "breaches": c.breaches,
                    "active": c.active,
                    "triggered": c.triggered,
                    "subjects": list(c.subjects),
                }
                for c in decision.causes
            ],
        },
        "windows": [_window_document(j) for j in look.judged],
        "queries": look.queries,
    }
    return json.dumps(document, indent=1, sort_keys=True, allow_nan=False) + "\n"


def to_markdown(look: Look) -> str:
    """The report a person reads (and the GitHub issue shows)."""
    decision = look.decision
    latest = look.judged[-1]
    verdict = "**retrain**" if decision.retrain else "no retraining"
    lines = [
        f"# Drift monitor: {look.environment}, model {look.model.version}",
        "",
        f"{stamp(look.at)}: {verdict}. Rule: {decision.rule}.",
        *(f"- {reason}" for reason in decision.reasons),
        *([f"\n**Warning**: {warning}"] if (warning := silent(look)) else []),
        "",
        f"Windows of {look.window}, the latest ending {stamp(latest.window.end)}; reference "
        f"profile from {look.profile_source}; counts from {look.prometheus}, "
        f"{look.selector.describe()} ({_counted(look)}; rows below are rounded). A criterion "
        "is a breach only "
        "when its interval is beyond the limit (the pull-request drift gate's statistics and "
        "limits); too few rows is n/a, never a breach. Each interval is of the statistic "
        "named before it.",
        "",
        "## Criteria per window (oldest first)",
        "",
        "| criterion | " + " | ".join(f"w{i + 1}" for i in range(len(look.judged))) + " |",
        "|---|" + "---|" * len(look.judged),
    ]
    for cause in decision.causes:
        marks = " | ".join(_MARK[s] for s in cause.statuses)
        lines.append(f"| {cause.criterion} | {marks} |")
    reported = [devices(j.window) for j in look.judged]
    if all(r is not None for r in reported):
        shown = " | ".join(f"{r[0]} ({r[1]:.0f} rows)" for r in reported if r is not None)
        lines.append(f"| devices reporting | {shown} |")
        lines += [
            "",
            "A device counts in a window when it pushed rows in it; one that has not reported "
            "within the window adds nothing. Devices running a candidate bundle are not "
            "counted here (the stable bundle's drift is judged).",
        ]
    age = "unknown" if decision.age_days is None else f"{decision.age_days:.1f} days"
    lines += [
        "",
        f"Model age: {age} (retrain on schedule past {decision.max_age_days}, "
        "monitoring.retrain.max_age_days).",
        "",
        "## Latest window",
        "",
        "| criterion | subject | status | statistic | limit | rows | note |",
        "|---|---|---|---|---|---|---|",
    ]
    ordered = sorted(
        latest.findings, key=lambda f: (-_LEVEL[f.status], CRITERIA.index(f.criterion), f.subject)
    )
    for f in ordered:
        value = f"{f.statistic} {f.value.text()}" if f.value else f.statistic
        limit = "" if f.limit is None else f"{f.limit:.3g}"
        cells = (f.criterion, f.subject, _MARK[f.status], value, limit, str(f.rows), f.reason)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines += ["", "## Quality", ""]
    if (cannot := unjudged(look)) is not None:
        lines.append(f"Not judged here: {cannot}.")
    elif look.label_delay is None:
        lines.append("No labels are expected (monitoring.labels.expected: false).")
    else:
        lines.append(
            f"Labels arrive about {look.label_delay} after the prediction "
            "(monitoring.labels.delay): a window's feedback is about predictions made that much "
            f"earlier, and the last {look.label_delay} of predictions have no labels yet; for "
            "them the estimate below is all there is."
        )
    estimate = latest.estimate
    if estimate is not None:
        lines += [
            "",
            f"Estimated from {estimate.rows} scores ({estimate.method}): recall "
            f"{estimate.recall.text()}, precision {estimate.precision.text()}, positive share "
            f"{estimate.positive_share.text()}. Where realized quality (from labels) differs "
            "from this estimate, the relation between inputs and label changed (concept drift): "
            "see concept_drift.",
        ]
    lines += [
        "",
        "## Plots",
        "",
        *(f"![{name}]({name})" for name in PLOTS),
        "",
        "<details><summary>PromQL</summary>",
        "",
        *(f"- {name}: `{query}`" for name, query in sorted(look.queries.items())),
        "",
        "</details>",
        "",
        "What each cause means and what to do: runbooks/drift-and-retraining.md.",
        "",
    ]
    return "\n".join(lines)


def to_text(look: Look, seconds: float) -> str:
    """The look for a terminal: the decision and its reasons, each criterion window by window
    (`seconds`: how long judging took)."""
    decision = look.decision
    verdict = "retrain" if decision.retrain else "no retraining"
    lines = [
        f"{look.environment}: model {look.model.version}, {len(look.judged)} windows of "
        f"{look.window} judged in {seconds:.1f} s: {verdict}",
        *(f"  - {reason}" for reason in decision.reasons),
    ]
    for cause in decision.causes:
        marks = " ".join(_TERMINAL.get(status, "?") for status in cause.statuses)
        subjects = f" ({', '.join(cause.subjects)})" if cause.subjects else ""
        lines.append(f"  {cause.criterion:<18} {marks}{subjects}")
    reported = [devices(j.window) for j in look.judged]
    if all(r is not None for r in reported):
        counts = " ".join(f"{r[0]}/{r[1]:.0f}" for r in reported if r is not None)
        lines.append(f"  {'devices/rows':<18} {counts}")
    lines.append("  (X breach, . ok, ? too little data, d dismissed; oldest window first)")
    if (cannot := unjudged(look)) is not None:
        lines.append(f"  not judged: {cannot}")
    warning = silent(look)
    if warning:
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)


def commit_message(decision: Decision, environment: str, version: str) -> str:
    """The decision log's commit message: the decision, its reasons and the rule."""
    verdict = "retrain" if decision.retrain else "no retraining"
    body = "\n".join(f"- {r}" for r in decision.reasons) or "- no criterion triggered"
    return (
        f"monitor {environment}: {verdict} (model {version})\n\n{body}\n\nRule: {decision.rule}\n"
    )


def plots(look: Look, profile: ReferenceProfile) -> dict[str, bytes]:
    """The report's PNGs by file name."""
    return {
        "criteria.png": _criteria_png(look),
        "drift.png": _drift_png(look.judged[-1].findings),
        "scores.png": _scores_png(look, profile),
    }


def _window_document(judged: JudgedWindow) -> WindowDocument:
    estimate = judged.estimate
    return {
        "end": stamp(judged.window.end),
        "findings": [_finding_document(f) for f in judged.findings],
        "devices": None
        if (reported := devices(judged.window)) is None
        else {"reported": reported[0], "rows": round(reported[1])},
        "estimate": None
        if estimate is None
        else {
            "method": estimate.method,
            "rows": estimate.rows,
            "recall": _interval(estimate.recall),
            "precision": _interval(estimate.precision),
            "positive_share": _interval(estimate.positive_share),
        },
    }


def _counted(look: Look) -> str:
    """How the window's counts were read."""
    if look.selector.kind == "batch":
        return "each window is the last successful run before its end"
    return increase_note("window")


def _finding_document(f: Finding) -> FindingDocument:
    return {
        "criterion": f.criterion,
        "subject": f.subject,
        "status": f.status,
        "statistic": f.statistic,
        "value": None if f.value is None else _interval(f.value),
        "limit": f.limit,
        "rows": f.rows,
        "reference_rows": f.reference_rows,
        "reason": f.reason,
    }


def _interval(value: Interval) -> IntervalDocument:
    return {
        "estimate": round(value.estimate, 6),
        "low": round(value.low, 6),
        "high": round(value.high, 6),
    }


def _criteria_png(look: Look) -> bytes:
    causes = look.decision.causes
    grid = np.array([[_LEVEL[s] for s in c.statuses] for c in causes] or [[0]])
    fig = Figure(figsize=(7.0, 0.5 + 0.45 * max(len(causes), 1)), dpi=100)
    ax = fig.subplots()
    colours = ListedColormap(["#2da44e", "#8b949e", "#d0d7de", "#cf222e"])
    ax.imshow(grid, cmap=colours, vmin=0, vmax=3, aspect="auto")
    ax.set_yticks(range(len(causes)), [c.criterion for c in causes])
    ax.set_xticks(range(grid.shape[1]), [f"w{i + 1}" for i in range(grid.shape[1])])
    ax.set_title("green ok, red breach, light n/a, grey dismissed (oldest left)")
    fig.tight_layout()
    return _png(fig)


def _drift_png(findings: tuple[Finding, ...]) -> bytes:
    drift = [f for f in findings if f.criterion in ("feature_drift", "score_drift") and f.value]
    fig = Figure(figsize=(7.0, 0.8 + 0.35 * max(len(drift), 1)), dpi=100)
    ax = fig.subplots()
    for row, f in enumerate(drift):
        assert f.value is not None
        colour = "#cf222e" if f.status == "breach" else "#1f6feb"
        ax.plot([f.value.low, f.value.high], [row, row], color=colour, linewidth=3)
        ax.plot([f.value.estimate], [row], "o", color=colour)
        if f.limit is not None:
            ax.plot([f.limit], [row], "|", color="black", markersize=14)
    ax.set_yticks(range(len(drift)), [f"{f.subject} ({f.statistic})" for f in drift])
    ax.set_xlabel("drift statistic with its interval; | is the limit")
    ax.set_title("Latest window: drift per feature and of the score")
    fig.tight_layout()
    return _png(fig)


def _scores_png(look: Look, profile: ReferenceProfile) -> bytes:
    window = look.judged[-1].window
    labels = bin_labels(len(profile.score.shares))
    counts = np.array([window.scores.get(label, 0.0) for label in labels])
    shares = counts / counts.sum() if counts.sum() > 0 else counts
    fig = Figure(figsize=(7.0, 4.0), dpi=100)
    ax = fig.subplots()
    positions = np.arange(len(labels))
    ax.bar(positions - 0.2, profile.score.shares, width=0.4, label="test set", color="#8b949e")
    ax.bar(positions + 0.2, shares, width=0.4, label="latest window", color="#1f6feb")
    ax.set_xticks(positions, labels, rotation=90)
    ax.set_ylabel("share of rows per score bin (profile deciles)")
    ax.set_title("Score distribution: reference against production")
    ax.legend()
    fig.tight_layout()
    return _png(fig)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()

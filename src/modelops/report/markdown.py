"""The pull-request report as Markdown: verdict first, then what a reviewer needs to decide.

Pure: the same inputs give the same text. It fits GitHub's comment limit by shortening long
tables first and cutting only as a last resort.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence

from modelops.deploy.preview import DeployPreview
from modelops.gates.results import CheckRecord, GateResult, verdict
from modelops.metric_registry import HEADLINE, SUMMARY, better
from modelops.paths import REPORT_FILE
from modelops.report.inputs import BaseRef, Plot, ReportInputs, ValueChange

COMMENT_LIMIT = 65_536
REPORT_DIR = posixpath.dirname(REPORT_FILE)
"""The report's folder in the repository: its image links are relative to it."""
_VERDICT_ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌"}
_GATE_ICON = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "inconclusive": "❔ inconclusive (warns)",
    "skipped": "⏭️ skipped",
    "off": "⏸️ off",
}
_CHECK_ICON = {"fail": "❌ fail", "error": "💥 error", "timeout": "⏱️ timeout"}
_ROW_LIMITS = (None, 40, 10)
_DIFF_LINES = {None: None, 40: 300, 10: 60}
"""Lines of the manifest diff shown at each row limit."""


def render(inputs: ReportInputs, *, images: bool = True, max_chars: int = COMMENT_LIMIT) -> str:
    """The report, within `max_chars`."""
    for limit in _ROW_LIMITS:
        text = _render(inputs, images=images, row_limit=limit)
        if len(text) <= max_chars:
            return text
    note = "\n\n… (report cut to fit GitHub's comment limit; the full text is in the artifact)\n"
    return text[: max_chars - len(note)] + note


def _render(inputs: ReportInputs, *, images: bool, row_limit: int | None) -> str:
    sections = [
        _verdict(inputs),
        _gates(inputs.gates, row_limit),
        _metrics(inputs, row_limit),
        _params(inputs, row_limit),
        _data(inputs),
        _plots(inputs.plots, inputs.base_ref, images=images),
        _deploy(inputs.deploy, row_limit),
        _base_section(inputs.base_ref),
        _artifacts(inputs),
    ]
    return "\n\n".join(section for section in sections if section).rstrip() + "\n"


def _verdict(inputs: ReportInputs) -> str:
    outcome = verdict(inputs.gates)
    lines = [f"## {_VERDICT_ICON[outcome.status]} {outcome.headline}"]
    metrics = {change.name: change for change in inputs.metrics}
    summary = [
        _headline_metric(metrics[name], inputs.base_ref) for name in SUMMARY if name in metrics
    ]
    if summary:
        lines.append(" · ".join(summary))
    undecided = _undecided(inputs.gates)
    if undecided:
        lines.append(undecided)
    if inputs.errors:
        lines.append("\n".join(f"> ⚠️ {error}" for error in inputs.errors))
    return "\n\n".join(lines)


_UNDECIDED_SHOWN = 8


def _undecided(gates: Sequence[GateResult]) -> str:
    """The inconclusive checks under the verdict, with their numbers, the leaning ones first."""
    unsure = sorted(
        (
            (gate.name, check)
            for gate in gates
            if gate.mode != "off"
            for check in gate.checks
            if check.status == "inconclusive"
        ),
        key=lambda pair: not pair[1].leans_fail,
    )
    if not unsure:
        return ""
    lines = [
        f"- {'⚠️ leans toward failing' if check.leans_fail else '❔ inconclusive'}: "
        f"**{check.title}** ({gate}, {check.dataset}): {check.value}"
        + (f" (needs: {check.condition})" if check.condition else "")
        for gate, check in unsure[:_UNDECIDED_SHOWN]
    ]
    if len(unsure) > _UNDECIDED_SHOWN:
        lines.append(f"- … and {len(unsure) - _UNDECIDED_SHOWN} more under Gates below")
    return "**Not decided: too little data**\n\n" + "\n".join(lines)


def _headline_metric(change: ValueChange, base_ref: BaseRef) -> str:
    text = f"**{change.name}** {_number(change.new)}"
    if change.old is None or change.new is None:
        return text
    if change.new == change.old:
        return f"{text} (same as `{base_ref.ref}`)"
    word = _verdict_word(change) or "changed"
    return f"{text} ({word}: {_signed(change.new - change.old)} vs `{base_ref.ref}`)"


def _gates(gates: Sequence[GateResult], row_limit: int | None) -> str:
    rows = [[gate.name, gate.mode, _gate_result(gate), _gate_summary(gate)] for gate in gates]
    lines = ["### Gates", _table(["Gate", "Mode", "Result", "Conditions"], rows)]
    lines.extend(_champion(gate) for gate in gates if gate.name == "champion" and gate.context)
    lines.extend(_latency(gate) for gate in gates if gate.name == "latency" and _timed(gate))
    lines.extend(_edge(gate) for gate in gates if gate.name == "edge" and "edge" in gate.context)
    failing = [
        (gate.name, check) for gate in gates for check in gate.checks if check.status in _CHECK_ICON
    ]
    if failing:
        lines.append("**What failed**")
        lines.append(
            _table(
                [
                    "Gate",
                    "Check",
                    "Dataset",
                    "Condition",
                    "Measured",
                    "Result",
                    "What it means",
                    "Tune with (params.yaml)",
                ],
                [
                    [
                        gate,
                        check.title,
                        check.dataset,
                        check.condition,
                        check.value,
                        _CHECK_ICON[check.status],
                        check.reason,
                        _code(check.tuned_by),
                    ]
                    for gate, check in failing
                ],
                row_limit,
            )
        )
    unsure = [(gate.name, c) for gate in gates for c in gate.checks if c.status == "inconclusive"]
    if unsure:
        table = _table(
            ["Gate", "Check", "Dataset", "What the data can and cannot say", "Tune with"],
            [
                [gate, check.title, check.dataset, check.reason, _code(check.tuned_by)]
                for gate, check in unsure
            ],
            row_limit,
        )
        lines.append(
            _details(
                f"❔ Inconclusive: too little data to tell ({len(unsure)}); neither passed nor "
                "failed",
                table,
            )
        )
    skipped = [
        [gate.name, check.title, check.reason]
        for gate in gates
        for check in gate.checks
        if check.status in ("not_applicable", "off")
    ]
    if skipped:
        table = _table(["Gate", "Check", "Why it did not run"], skipped, row_limit)
        lines.append(_details(f"Checks that did not run ({len(skipped)})", table))
    return "\n\n".join(lines)


def _champion(gate: GateResult) -> str:
    """Which model the candidate was compared with, and where it came from."""
    where = gate.context.get("champion", "unknown")
    source = gate.context.get("source")
    line = f"Champion: {where}" + (f", from {source}." if source else ".")
    numbers = gate.context.get("champion_metrics")
    return f"{line} Its numbers on these test rows: {numbers}." if numbers else line


def _timed(gate: GateResult) -> bool:
    return "latency" in gate.context


def _latency(gate: GateResult) -> str:
    """The candidate's serving time per row against the champion's: each request shape with its
    decision first (an inconclusive one says so), then the numbers and how they were taken."""
    lines = [f"Serving latency against the champion ({gate.context['latency']}):"]
    for check in gate.checks:
        if check.status in ("off", "not_applicable"):
            continue
        lines.append(
            f"- {_decision(gate, check)} ({check.dataset}): {check.value}; needs {check.condition}"
        )
    return "\n".join(lines)


def _edge(gate: GateResult) -> str:
    """Each edge format's bundle, its decision first: parity against the trained pipeline, or
    the exporter's refusal (its cause and fix are under What failed)."""
    lines = [
        "Edge bundles of this model, as `modelops export` builds them (unsigned, nothing "
        f"published): {gate.context['edge']}"
    ]
    for check in gate.checks:
        if check.status in ("off", "not_applicable"):
            lines.append(f"- ⏸️ {check.check}: {check.reason}")
            continue
        then = f"; needs {check.condition}" if check.status == "pass" else " (why: What failed)"
        lines.append(
            f"- {_decision(gate, check)} **{check.check}** ({check.dataset}): {check.value}{then}"
        )
    return "\n".join(lines)


def _decision(gate: GateResult, check: CheckRecord) -> str:
    """A check's outcome as its gate's mode makes it: a failure warns in warn mode."""
    if check.status == "fail" and gate.mode != "enforce":
        return "⚠️ fail (does not block)"
    return {"pass": "✅ pass", "inconclusive": "❔ inconclusive"}.get(
        check.status, _CHECK_ICON.get(check.status, check.status)
    )


def _gate_result(gate: GateResult) -> str:
    if gate.status == "fail" and not gate.blocking:
        return "⚠️ fail (does not block)"
    return _GATE_ICON[gate.status]


def _gate_summary(gate: GateResult) -> str:
    if gate.status in ("skipped", "off") and not gate.checks:
        return "; ".join(gate.notes)
    counts: dict[str, int] = {}
    for check in gate.checks:
        counts[check.status] = counts.get(check.status, 0) + 1
    order = ("pass", "fail", "inconclusive", "error", "timeout", "not_applicable", "off")
    words = {
        "pass": "passed",
        "fail": "failed",
        "inconclusive": "inconclusive",
        "error": "errored",
        "timeout": "timed out",
        "not_applicable": "not applicable",
        "off": "left out",
    }
    return ", ".join(
        f"{counts[status]} {words.get(status, status)}" for status in order if status in counts
    )


def _metrics(inputs: ReportInputs, row_limit: int | None) -> str:
    if not inputs.metrics:
        return "### Metrics\n\nNo metrics: the evaluate stage has not run."
    compared = inputs.base_ref.problem is None and inputs.base_ref.commit is not None
    title = (
        f"### Metrics: this branch against `{inputs.base_ref.ref}`" if compared else "### Metrics"
    )
    by_name = {change.name: change for change in inputs.metrics}
    headline = [by_name[name] for name in HEADLINE if name in by_name]
    others = [change for change in inputs.metrics if change.name not in HEADLINE]
    header = ["Metric", f"`{inputs.base_ref.ref}`", "This branch", "Change", ""]
    lines = [title, _table(header, [_metric_row(change) for change in headline])]
    if others:
        table = _table(header, [_metric_row(change) for change in others], row_limit)
        lines.append(_details(f"All other metrics ({len(others)})", table))
    return "\n\n".join(lines)


def _metric_row(change: ValueChange) -> list[str]:
    if change.old is None or change.new is None or change.old == change.new:
        delta = "" if change.old is None or change.new is None else "0"
        return [change.name, _number(change.old), _number(change.new), delta, ""]
    return [
        change.name,
        _number(change.old),
        _number(change.new),
        _signed(change.new - change.old),
        _verdict_word(change),
    ]


def _verdict_word(change: ValueChange) -> str:
    """'better' or 'worse' in the metric's own direction (a lower log loss is better)."""
    return {"up": "better", "down": "worse", "": ""}[_trend(change)]


def _trend(change: ValueChange) -> str:
    """ "up" when the change is an improvement, "down" when it is worse, "" when neither applies.

    The direction is the registry's (`metric_registry`), by the last part of the name
    (`per_class.yes.recall` is a recall); the naive baseline's figures are not the model's.
    """
    direction = better(change.name.rsplit(".", 1)[-1])
    if change.name.startswith("baseline.") or direction is None:
        return ""
    if not isinstance(change.old, int | float) or not isinstance(change.new, int | float):
        return ""
    if change.new == change.old:
        return ""
    improved = change.new < change.old if direction == "lower" else change.new > change.old
    return "up" if improved else "down"


def _params(inputs: ReportInputs, row_limit: int | None) -> str:
    if inputs.base_ref.commit is None:
        return ""
    if not inputs.params:
        return f"### Params\n\nNo params changed against `{inputs.base_ref.ref}`."
    rows = [[f"`{c.name}`", _value(c.old), _value(c.new)] for c in inputs.params]
    header = ["Param", f"`{inputs.base_ref.ref}`", "This branch"]
    return f"### Params changed ({len(rows)})\n\n" + _table(header, rows, row_limit)


def _data(inputs: ReportInputs) -> str:
    if not inputs.data:
        return ""
    rows = [[c.name, _number(c.old), _number(c.new)] for c in inputs.data]
    lines = ["### Data", _table(["", f"`{inputs.base_ref.ref}`", "This branch"], rows)]
    drift = _drift_summary(inputs.gates)
    if drift:
        lines.append(f"Train/test drift: {drift}")
    return "\n\n".join(lines)


def _drift_summary(gates: Iterable[GateResult]) -> str:
    for gate in gates:
        for check in gate.checks:
            if check.check == "multivariate_drift" and check.value:
                return check.value
    return ""


def _plots(plots: Sequence[Plot], base_ref: BaseRef, *, images: bool) -> str:
    if not plots:
        return ""
    if not images:
        # Links are relative to the report's folder; name the files from the repository root.
        names = ", ".join(
            f"`{posixpath.normpath(posixpath.join(REPORT_DIR, plot.current))}`" for plot in plots
        )
        return f"### Plots\n\nNot embedded in this comment; in the report artifact: {names}."
    lines = ["### Plots"]
    for plot in plots:
        if plot.base_image:
            lines.append(
                _table(
                    [f"{plot.title}: this branch", f"`{base_ref.ref}`"],
                    [[f"![{plot.title}]({plot.current})", f"![{plot.title}]({plot.base_image})"]],
                )
            )
        else:
            lines.append(f"![{plot.title}]({plot.current})")
    return "\n\n".join(lines)


def _deploy(preview: DeployPreview | None, row_limit: int | None) -> str:
    if preview is None:
        return ""
    lines = ["### Deploy on merge"]
    if preview.problem is not None:
        lines.append(f"⚠️ A merge would not deploy: {preview.problem}.")
        return "\n\n".join(lines)
    lines.append(
        "\n".join(
            f"- **{change.environment}**: "
            + (
                "unchanged"
                if change.before == change.after
                else f"{_state(change.before)} → {_state(change.after)}"
            )
            for change in preview.changes
        )
    )
    lines.append(
        "Versions here are content-hash prefixes; with an MLflow registry, `deploy.yml` uses the "
        "registered version number. Each canary step after that is a `modelops release promote`."
    )
    if preview.diff:
        diff = preview.diff.splitlines()
        limit = _DIFF_LINES[row_limit]
        shown = diff if limit is None else diff[:limit]
        more = f"\n… {len(diff) - len(shown)} more lines" if len(shown) < len(diff) else ""
        files = sum(line.startswith("+++ ") for line in diff)
        body = "```diff\n" + "\n".join(shown) + more + "\n```"
        noun = "file" if files == 1 else "files"
        lines.append(_details(f"Manifest changes ({files} {noun})", body))
    return "\n\n".join(lines)


def _state(description: str) -> str:
    return description.split(": ", 1)[1]


def _base_section(base_ref: BaseRef) -> str:
    lines = ["### Baseline"]
    if base_ref.commit is not None:
        data = f", data version `{base_ref.data_version}`" if base_ref.data_version else ""
        lines.append(
            f"`{base_ref.ref}` at `{base_ref.commit[:12]}` ({base_ref.date}): "
            f"{base_ref.subject}{data}."
        )
    if base_ref.problem:
        lines.append(f"No comparison numbers: {base_ref.problem}.")
    return "\n\n".join(lines)


def _artifacts(inputs: ReportInputs) -> str:
    lines = []
    if inputs.html_reports:
        names = ", ".join(f"`{name}`" for name in inputs.html_reports)
        where = (
            f"in the `gate-reports` artifact of [this run]({inputs.artifacts_url})"
            if inputs.artifacts_url
            else "in `reports/deepchecks/`"
        )
        lines.append(f"Full Deepchecks reports ({names}) are {where}.")
    if inputs.timings:
        timings = " · ".join(f"{name} {seconds:.1f} s" for name, seconds in inputs.timings.items())
        lines.append(f"Stage timings: {timings}.")
    return "\n\n".join(lines)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], limit: int | None = None) -> str:
    shown = rows if limit is None else rows[:limit]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in shown]
    if len(shown) < len(rows):
        lines.append(f"| … {len(rows) - len(shown)} more |" + " |" * (len(header) - 1))
    return "\n".join(lines)


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def _code(text: str) -> str:
    return "; ".join(f"`{part.strip()}`" for part in text.split(";") if part.strip())


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _number(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.4f}" if isinstance(value, float) and not value.is_integer() else f"{value:g}"


def _signed(value: float) -> str:
    return f"{value:+d}" if isinstance(value, int) else f"{value:+.4f}"


def _value(value: object) -> str:
    return "—" if value is None else f"`{value}`"

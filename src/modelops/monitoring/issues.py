"""`modelops monitor-issues`: the monitor's report as one GitHub issue per environment and cause.

What each issue says is pure (`issue_texts`, from the report the monitor wrote); `post` opens or
updates the issue of every cause breached in the latest window and closes the ones that cleared
(`modelops.github.sync_issues`: never a duplicate).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from modelops import github
from modelops.monitoring.report import ReportDocument
from modelops.monitoring.watch import read_report
from modelops.paths import ProjectPaths

LABEL = "drift-monitor"
"""The label on every issue the monitor opens (how it finds its own)."""


def issue_texts(
    document: ReportDocument, markdown: str, *, run_url: str | None
) -> dict[str, tuple[str, str]]:
    """(title, body) per open cause key (`<env>/<criterion>`, `<env>/age`) of a report."""
    environment = document["environment"]
    decision = document["decision"]
    found: dict[str, tuple[str, str]] = {}
    where = f"\n\nPlots and the JSON: the workflow run's artifacts ({run_url})." if run_url else ""
    for cause in decision["causes"]:
        if not cause["active"]:
            continue
        subjects = ", ".join(cause["subjects"])
        title = f"Drift monitor: {environment} {cause['criterion']} ({subjects})"
        status = (
            "retraining triggered"
            if cause["triggered"]
            else f"breached in {cause['breaches']} of {len(cause['statuses'])} windows"
        )
        body = (
            f"**{cause['criterion']}** on {subjects} in {environment} (model "
            f"{document['model_version']}): {status}. What it means and what to do: "
            f"runbooks/drift-and-retraining.md#{cause['criterion'].replace('_', '-')}.{where}"
            f"\n\n{markdown}"
        )
        found[f"{environment}/{cause['criterion']}"] = (title, body)
    age = decision.get("age_days")
    if any("days old" in reason for reason in decision["reasons"]):
        found[f"{environment}/age"] = (
            f"Drift monitor: {environment} model older than its schedule",
            f"The served model is {age} days old: retraining on schedule "
            f"(monitoring.retrain.max_age_days).{where}\n\n{markdown}",
        )
    return found


def post(
    paths: ProjectPaths, environment: str, folder: Path | None = None
) -> list[tuple[str, str, int]]:
    """Sync the environment's issues with its latest report (GitHub from the environment):
    (action, cause key, issue number) for each issue touched."""
    document, markdown = read_report(paths, folder, environment)
    causes = issue_texts(document, markdown, run_url=github.run_url())
    return github.sync_issues(
        github.connect(),
        label=LABEL,
        scope=f"{environment}/",
        open_causes=causes,
        cleared_comment=f"Cleared: the latest monitor window ({document['at']}) shows no "
        "breach of this cause.",
    )


def to_text(actions: Sequence[tuple[str, str, int]], environment: str) -> str:
    """One line per issue touched, or that nothing is open."""
    if not actions:
        return f"monitor-issues: {environment}: nothing breached, no issue open"
    return "\n".join(
        f"monitor-issues: {action} #{number} ({key})" for action, key, number in actions
    )

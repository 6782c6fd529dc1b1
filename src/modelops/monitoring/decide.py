"""Retrain or not, like an operator would (pure): N of the last M windows, or the model's age.

A criterion is breached in a window when any of its subjects (a feature, the score, a metric)
is a `breach` there; `inconclusive` windows never count as breaches. A criterion triggers a
retraining when it is breached in at least `breaches` of the last `windows` windows, the latest
among them: one bad hour does not retrain, and a cause that has cleared does not either. A model
older than `max_age_days` is retrained on schedule, drift or not. A dismissal in params (a
reviewed change) turns a subject's breaches into `dismissed` until its date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from modelops.monitoring.drift import CRITERIA, Finding, Status


@dataclass(frozen=True)
class Dismissal:
    """A reviewed false alarm: `criterion` (on `subject`, or all) is not a breach until `until`."""

    criterion: str
    subject: str | None
    until: dt.date
    reason: str

    def covers(self, finding: Finding, today: dt.date) -> bool:
        return (
            today <= self.until
            and finding.criterion == self.criterion
            and self.subject in (None, finding.subject)
        )


@dataclass(frozen=True)
class Cause:
    """One criterion over the judged windows (oldest first)."""

    criterion: str
    statuses: tuple[Status, ...]
    subjects: tuple[str, ...]
    """What breached in the latest window (features, the score, a metric)."""
    triggered: bool

    @property
    def breaches(self) -> int:
        return self.statuses.count("breach")

    @property
    def active(self) -> bool:
        """Breached in the latest window."""
        return bool(self.statuses) and self.statuses[-1] == "breach"


@dataclass(frozen=True)
class Decision:
    """Whether to retrain, and every criterion's record behind it."""

    retrain: bool
    causes: tuple[Cause, ...]
    age_days: float | None
    max_age_days: int
    rule: str

    @property
    def reasons(self) -> tuple[str, ...]:
        found = [
            f"{c.criterion} breached in {c.breaches} of {len(c.statuses)} windows, the latest "
            f"included ({', '.join(c.subjects)})"
            for c in self.causes
            if c.triggered
        ]
        if self.overdue:
            found.append(f"the model is {self.age_days:.0f} days old, over {self.max_age_days}")
        return tuple(found)

    @property
    def overdue(self) -> bool:
        return self.age_days is not None and self.age_days > self.max_age_days


def dismiss(
    findings: Sequence[Finding], dismissals: Sequence[Dismissal], today: dt.date
) -> list[Finding]:
    """The findings with dismissed breaches marked `dismissed`."""
    marked = []
    for finding in findings:
        if finding.status == "breach" and any(d.covers(finding, today) for d in dismissals):
            finding = replace(finding, status="dismissed")
        marked.append(finding)
    return marked


def window_status(findings: Sequence[Finding]) -> dict[str, Status]:
    """Each criterion's status in one window: breach beats inconclusive beats ok."""
    order: dict[Status, int] = {"breach": 3, "inconclusive": 2, "dismissed": 1, "ok": 0}
    statuses: dict[str, Status] = {}
    for finding in findings:
        current = statuses.get(finding.criterion)
        if current is None or order[finding.status] > order[current]:
            statuses[finding.criterion] = finding.status
    return statuses


def decide(
    windows: Sequence[Sequence[Finding]],
    *,
    breaches: int,
    retrain_on: Sequence[str],
    age_days: float | None,
    max_age_days: int,
) -> Decision:
    """The decision over `windows` (oldest first, each a window's findings)."""
    per_window = [window_status(findings) for findings in windows]
    latest = windows[-1] if windows else []
    causes = []
    for criterion in CRITERIA:
        statuses = tuple(w.get(criterion, "inconclusive") for w in per_window)
        if not any(criterion in w for w in per_window):
            continue
        subjects = tuple(
            sorted(f.subject for f in latest if f.criterion == criterion and f.status == "breach")
        )
        count = statuses.count("breach")
        triggered = (
            criterion in retrain_on
            and bool(statuses)
            and statuses[-1] == "breach"
            and count >= breaches
        )
        causes.append(Cause(criterion, statuses, subjects, triggered))
    overdue = age_days is not None and age_days > max_age_days
    return Decision(
        retrain=overdue or any(c.triggered for c in causes),
        causes=tuple(causes),
        age_days=age_days,
        max_age_days=max_age_days,
        rule=f"{breaches} of the last {len(windows)} windows, the latest included; "
        f"or older than {max_age_days} days",
    )


def log_record(
    decision: Decision, *, environment: str, model_version: str, at: float, window: str
) -> dict[str, object]:
    """One line of the decision log (taken or not)."""
    return {
        "at": dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": environment,
        "model_version": model_version,
        "decision": "retrain" if decision.retrain else "none",
        "reasons": list(decision.reasons),
        "rule": decision.rule,
        "window": window,
        "age_days": None if decision.age_days is None else round(decision.age_days, 2),
        "criteria": {c.criterion: list(c.statuses) for c in decision.causes},
    }


def cause_keys(decision: Decision, environment: str) -> Mapping[str, Cause]:
    """The open causes by issue key (`<env>/<criterion>`, `<env>/age`): breached now."""
    keys: dict[str, Cause] = {
        f"{environment}/{c.criterion}": c for c in decision.causes if c.active
    }
    if decision.overdue:
        keys[f"{environment}/age"] = Cause("age", (), (), True)
    return keys

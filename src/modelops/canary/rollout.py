"""`modelops canary auto`: the judge driving a rollout, one step per look.

The policy is pure (`next_move`): a verdict to promote promotes, one to roll back rolls back,
and a hold changes nothing until the step has held longer than `canary.max_step_duration`;
then `canary.on_timeout` decides: `rollback`, or `ask` a person (exit 3). An environment
without a canary is skipped. `look` and `act` are the edges: Prometheus, the verdict files and
the release commit (`deploy.workflow`), with the verdict kept beside the release and linked
from its history.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

from modelops.canary import analysis, document
from modelops.canary.analysis import Analysis
from modelops.canary.judge import Verdict, duration_words
from modelops.deploy import workflow
from modelops.errors import ExitCode
from modelops.params import CanaryParams, Params, duration_seconds
from modelops.releases.state import Change, Release

JUDGE = "canary-judge"
"""Who the release history says took a step the judge decided."""
REASON_LIMIT = 400
"""Characters of the verdict's summary kept as the history's reason (the rest is in the file)."""
Action: TypeAlias = Literal["skip", "hold", "ask", "promote", "rollback"]


@dataclass(frozen=True)
class Move:
    """What `canary auto` does about one look, and why."""

    action: Action
    reason: str
    """Why: the history's reason for a promote or rollback; the note for a hold or an ask."""

    @property
    def exit_code(self) -> ExitCode:
        """0 when the judge acted or held; 3 when a person must decide."""
        return ExitCode.ASK if self.action == "ask" else ExitCode.OK


@dataclass(frozen=True)
class Looked:
    """An environment's release and, when it runs a canary, the analysis of its step."""

    release: Release
    analysis: Analysis | None


@dataclass(frozen=True)
class Outcome:
    """What `act` did: the move, and the commit it wrote (empty when nothing changed)."""

    environment: str
    release: str
    """The release as `Release.describe()` tells it (for a skip)."""
    move: Move
    message: str = ""
    written: tuple[Path, ...] = ()

    @property
    def exit_code(self) -> ExitCode:
        return self.move.exit_code


def next_move(verdict: Verdict | None, params: CanaryParams) -> Move:
    """The rollout policy: what to do about a verdict (None: no canary runs)."""
    if verdict is None:
        return Move("skip", "no canary, nothing to judge")
    if verdict.decision != "hold":
        return Move(verdict.decision, shortened(verdict.summary))
    if verdict.step_seconds <= duration_seconds(params.max_step_duration):
        return Move("hold", "hold, nothing changed")
    timeout = (
        f"the step held for {duration_words(verdict.step_seconds)}, past "
        f"canary.max_step_duration {params.max_step_duration}"
    )
    if params.on_timeout == "ask":
        return Move("ask", timeout)
    return Move("rollback", shortened(f"{timeout} (on_timeout rollback): {verdict.summary}"))


def shortened(text: str, limit: int = REASON_LIMIT) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def commit_message(release_message: str, verdict: Verdict, verdict_file: Path) -> str:
    """The release commit's message with the verdict's file and findings appended."""
    findings = document.findings_text(verdict)
    return release_message + f"\nVerdict: {verdict_file}\n" + findings + "\n"


def to_text(outcome: Outcome) -> str:
    """What `canary auto` prints after the verdict (each line ends with a newline)."""
    move, environment = outcome.move, outcome.environment
    if move.action == "skip":
        return f"auto: {outcome.release}: {move.reason}\n"
    if move.action == "hold":
        return f"auto: {move.reason}\n"
    if move.action == "ask":
        return (
            f"auto: {move.reason}; canary.on_timeout is ask: a person must decide, with the "
            f"verdict above: modelops release promote --env {environment} --reason ... or "
            f"modelops release rollback --env {environment} --reason ...\n"
        )
    written = ", ".join(str(path) for path in outcome.written)
    return f"{outcome.message}auto: {move.action}; wrote {written}\n"


def look(root: Path, params: Params, environment: str, prometheus_url: str | None) -> Looked:
    """The environment's release and, when it runs a canary, its step judged and kept in
    reports/canary/ (Prometheus is not asked when there is no canary)."""
    release = analysis.release_of(root, params, environment)
    if release.canary is None:
        return Looked(release, None)
    looked = analysis.look(root, params, environment, prometheus_url)
    analysis.keep(root, looked)
    return Looked(release, looked)


def act(
    root: Path,
    params: Params,
    looked: Looked,
    *,
    message_file: Path | None = None,
) -> Outcome:
    """Do the move the policy says: for a promote or a rollback, write the release file, the
    manifests and the verdict beside the release, linked from its history (the caller
    commits them); for anything else, nothing."""
    environment, judged = looked.release.environment, looked.analysis
    move = next_move(judged.verdict if judged else None, params.canary)
    outcome = Outcome(environment, looked.release.describe(), move)
    if judged is None or move.action not in ("promote", "rollback"):
        return outcome
    markdown_path, json_path = analysis.verdict_paths(environment, judged.step, move.action)
    change = Change(
        at=judged.step.judged_at, by=JUDGE, reason=move.reason, verdict=str(markdown_path)
    )
    step = workflow.promote if move.action == "promote" else workflow.rollback
    plan = step(root, params, environment, change=change)
    plan = dataclasses.replace(
        plan,
        message=commit_message(plan.message, judged.verdict, markdown_path),
        files={
            str(markdown_path): document.to_markdown(judged.verdict, judged.step),
            str(json_path): document.to_json(judged.verdict, judged.step),
        },
    )
    written = workflow.write(root, params, plan)
    if message_file is not None:
        message_file.write_text(plan.message, encoding="utf-8")
    return dataclasses.replace(outcome, message=plan.message, written=tuple(written))

"""`canary auto`'s policy as a table (pure): a verdict and `canary:` params -> the move, its
exit code and what the command prints. The command end to end is test_auto.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.canary.judge import Decision, Verdict
from modelops.canary.rollout import (
    REASON_LIMIT,
    Move,
    Outcome,
    commit_message,
    next_move,
    to_text,
)
from modelops.errors import ExitCode
from modelops.params import CanaryParams

HOUR = 3600.0


def _verdict(decision: Decision, hours: float, summary: str = "") -> Verdict:
    return Verdict(
        decision=decision,
        summary=summary or f"{decision}: as the findings say",
        findings=(),
        canary_requests=600,
        stable_requests=5400,
        step_seconds=hours * HOUR,
        alpha=0.05,
    )


# (verdict, hours into the step, max_step_duration, on_timeout) -> (action, exit code, reason)
POLICY = [
    ("promote", 1, "24h", "ask", "promote", 0, "promote: as the findings say"),
    ("rollback", 1, "24h", "ask", "rollback", 0, "rollback: as the findings say"),
    ("hold", 1, "24h", "ask", "hold", 0, "hold, nothing changed"),
    ("hold", 24, "24h", "ask", "hold", 0, "hold, nothing changed"),
    (
        "hold",
        25,
        "24h",
        "ask",
        "ask",
        3,
        "the step held for 25.0 h, past canary.max_step_duration 24h",
    ),
    (
        "hold",
        25,
        "24h",
        "rollback",
        "rollback",
        0,
        "the step held for 25.0 h, past canary.max_step_duration 24h (on_timeout rollback): "
        "hold: as the findings say",
    ),
    (
        "hold",
        3,
        "2h",
        "rollback",
        "rollback",
        0,
        "the step held for 3.0 h, past canary.max_step_duration 2h (on_timeout rollback): "
        "hold: as the findings say",
    ),
    ("promote", 100, "24h", "ask", "promote", 0, "promote: as the findings say"),
    ("rollback", 100, "24h", "rollback", "rollback", 0, "rollback: as the findings say"),
]


@pytest.mark.parametrize(
    ("decision", "hours", "limit", "on_timeout", "action", "code", "reason"),
    POLICY,
    ids=[f"{c[0]}-{c[1]}h-max{c[2]}-{c[3]}" for c in POLICY],
)
def test_the_policy_acts_on_a_decided_verdict_and_times_out_a_hold(
    decision: Decision,
    hours: float,
    limit: str,
    on_timeout: str,
    action: str,
    code: int,
    reason: str,
) -> None:
    params = CanaryParams(max_step_duration=limit, on_timeout=on_timeout)
    move = next_move(_verdict(decision, hours), params)
    assert (move.action, move.exit_code, move.reason) == (action, code, reason)


def test_no_canary_is_skipped_and_succeeds() -> None:
    move = next_move(None, CanaryParams())
    assert move == Move("skip", "no canary, nothing to judge")
    assert move.exit_code == ExitCode.OK


def test_a_long_summary_is_cut_for_the_history_with_an_ellipsis() -> None:
    move = next_move(_verdict("rollback", 1, "roll back: " + "x" * 1000), CanaryParams())
    assert len(move.reason) == REASON_LIMIT
    assert move.reason.endswith("x…")


# move -> the lines `canary auto` prints after the verdict
TEXTS = [
    (Move("skip", "no canary, nothing to judge"), "auto: production: v1 (100%): no canary"),
    (Move("hold", "hold, nothing changed"), "auto: hold, nothing changed\n"),
    (
        Move("ask", "the step held for 2.0 d, past canary.max_step_duration 24h"),
        "auto: the step held for 2.0 d, past canary.max_step_duration 24h; canary.on_timeout "
        "is ask: a person must decide, with the verdict above: modelops release promote --env "
        "production --reason ... or modelops release rollback --env production --reason ...\n",
    ),
    (
        Move("promote", "promote: fine"),
        "promote: production canary v2 10% -> 25%\n\nauto: promote; wrote a.yaml, b.md\n",
    ),
]


@pytest.mark.parametrize(("move", "printed"), TEXTS, ids=[m.action for m, _ in TEXTS])
def test_what_auto_prints_for_each_move(move: Move, printed: str) -> None:
    acted = move.action == "promote"
    outcome = Outcome(
        "production",
        "production: v1 (100%)",
        move,
        message="promote: production canary v2 10% -> 25%\n\n" if acted else "",
        written=(Path("a.yaml"), Path("b.md")) if acted else (),
    )
    assert to_text(outcome).startswith(printed)
    assert to_text(outcome).endswith("\n")


def test_the_commit_message_links_the_verdict_file() -> None:
    message = commit_message("promote: x\n", _verdict("promote", 1), Path("v/1-promote.md"))
    assert message == "promote: x\n\nVerdict: v/1-promote.md\n\n"

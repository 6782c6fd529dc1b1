"""Every `--help` of the command line works (argparse %-formats help texts: a stray % crashes)."""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Iterator

import pytest

from modelops.cli import _parser, main


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*prefix, name))


COMMANDS = sorted(_commands(_parser()))


def test_every_command_is_covered() -> None:
    assert ("release", "restore") in COMMANDS
    assert ("release", "sync-registry") in COMMANDS
    assert len(COMMANDS) > 15


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "modelops")
def test_help_prints_and_exits_zero(command: tuple[str, ...]) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: modelops" in out.getvalue()

"""Command handlers only translate: each is at most 15 lines and says its exit code by name.

The rule: a command handler turns argv into one call into the library, prints what it returns
and returns an `ExitCode`; what to do (a rollout's next move, a plan, a monitor's decision) is
a pure function in the library, tested there as a table. So no handler is longer than
`MAX_LINES` lines from its `def` to its end, docstring and comments included, and no command
module returns a bare number. Handlers are found twice: every `handler` the parser of
`modelops.cli._parser()` registers, and every function of a command module shaped like one,
`(args, paths) -> int` (a handler another dispatches to).
"""

from __future__ import annotations

import argparse
import ast
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelops.cli import _parser
from tests.support import REPO_ROOT

MAX_LINES = 15
SOURCE = REPO_ROOT / "src" / "modelops"
COMMAND_MODULES = (
    SOURCE / "cli.py",
    SOURCE / "canary" / "cli.py",
    SOURCE / "capacity" / "cli.py",
    SOURCE / "deploy" / "cli.py",
    SOURCE / "monitoring" / "cli.py",
    SOURCE / "rehearsal" / "cli.py",
)


def registered(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, Callable[..., int]]]:
    """(command, handler) for every command the parser registers a handler for."""
    handler = parser.get_default("handler")
    if handler is not None:
        yield " ".join(prefix), handler
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from registered(sub, (*prefix, name))


HANDLERS = dict(registered(_parser()))


def shaped_like_handlers(source: str) -> Iterator[tuple[str, int]]:
    """(name, lines) of every function `(args, paths) -> int` in a module's source."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            names = [a.arg for a in node.args.args]
            returns = ast.unparse(node.returns) if node.returns else ""
            if names == ["args", "paths"] and returns == "int":
                assert node.end_lineno is not None
                yield node.name, node.end_lineno - node.lineno + 1


def bare_returns(source: str) -> Iterator[tuple[str, int]]:
    """(function, line) of every return of an int literal (`return 1`, `return 1 if x else 0`)
    in a module's source."""

    def literal(value: ast.expr | None) -> bool:
        if isinstance(value, ast.IfExp):
            return literal(value.body) or literal(value.orelse)
        return isinstance(value, ast.Constant) and type(value.value) is int

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and literal(inner.value):
                    yield node.name, inner.lineno


def test_every_command_has_a_handler() -> None:
    assert len(HANDLERS) >= 27
    assert {"prepare", "canary auto", "monitor", "up", "release deploy"} <= set(HANDLERS)


@pytest.mark.parametrize("command", sorted(HANDLERS), ids=lambda c: c or "modelops")
def test_each_registered_handler_is_at_most_15_lines(command: str) -> None:
    handler = HANDLERS[command]
    lines, start = inspect.getsourcelines(handler)
    length = 1 if handler.__name__ == "<lambda>" else len(lines)
    where = f"{inspect.getsourcefile(handler)}:{start}"
    assert length <= MAX_LINES, (
        f"`modelops {command}`'s handler {handler.__qualname__} ({where}) is {length} lines: "
        f"at most {MAX_LINES}. Move what it decides into a pure function of the library and "
        "what it writes or asks into the library's edge; keep argv in, one call, print, exit code"
    )


@pytest.mark.parametrize("module", COMMAND_MODULES, ids=lambda p: str(p.relative_to(SOURCE)))
def test_functions_shaped_like_handlers_are_short_too(module: Path) -> None:
    long = [
        f"{name} ({lines} lines)"
        for name, lines in shaped_like_handlers(module.read_text(encoding="utf-8"))
        if lines > MAX_LINES
    ]
    assert not long, f"{module.relative_to(SOURCE)}: handlers over {MAX_LINES} lines: {long}"


@pytest.mark.parametrize("module", COMMAND_MODULES, ids=lambda p: str(p.relative_to(SOURCE)))
def test_exit_codes_are_named(module: Path) -> None:
    found = list(bare_returns(module.read_text(encoding="utf-8")))
    assert not found, (
        f"{module.relative_to(SOURCE)} returns bare numbers at {found}: return an ExitCode "
        "(modelops.errors draws the table)"
    )


def test_the_checks_catch_a_long_handler_and_a_bare_code() -> None:
    body = "\n".join(f"    print({i})" for i in range(MAX_LINES - 1))
    long = f"def _long(args, paths) -> int:\n{body}\n    return 0\n"
    short = "def _short(args, paths) -> int:\n    return ExitCode.OK if args else 3\n"
    helper = "def _helper(args, paths, plan) -> int:\n" + body + "\n    return ExitCode.OK\n"
    found = dict(shaped_like_handlers(long + short + helper))
    assert found == {"_long": MAX_LINES + 1, "_short": 2}, "a helper with more is no handler"
    assert list(bare_returns(long + short)) == [("_long", MAX_LINES + 1), ("_short", MAX_LINES + 3)]

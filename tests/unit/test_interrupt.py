"""Ctrl-C interrupts a command even when a library swallows the KeyboardInterrupt."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops import interrupt
from modelops.io import bytes_writer, commit


@pytest.fixture
def handler() -> Iterator[None]:
    with interrupt.handled():
        yield


def _press_ctrl_c_inside_a_broad_except() -> None:
    """What Deepchecks does around each check: any exception becomes a check error."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        signal.sigtimedwait([], 0)  # let the handler run here
    except BaseException:  # what the library does, under test
        pass


def test_a_swallowed_interrupt_still_stops_the_write(handler: None, tmp_path: Path) -> None:
    target = tmp_path / "verdict.json"
    target.write_text("previous")
    _press_ctrl_c_inside_a_broad_except()
    assert interrupt.requested()
    with pytest.raises(KeyboardInterrupt):
        commit({target: bytes_writer(b"new")})
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["verdict.json"]
    assert not interrupt.wrote_outputs()


def test_without_ctrl_c_outputs_are_written(handler: None, tmp_path: Path) -> None:
    target = tmp_path / "verdict.json"
    commit({target: bytes_writer(b"new")})
    assert target.read_text() == "new"
    assert interrupt.wrote_outputs()


def test_ctrl_c_while_outputs_move_into_place_waits_for_the_move(
    handler: None, tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"

    def move_into_place() -> None:
        with interrupt.writing_outputs():
            first.write_bytes(b"a")
            os.kill(os.getpid(), signal.SIGINT)
            signal.sigtimedwait([], 0)
            second.write_bytes(b"b")

    with pytest.raises(KeyboardInterrupt):
        move_into_place()
    assert first.read_bytes() == b"a"
    assert second.read_bytes() == b"b"
    assert interrupt.wrote_outputs()


def test_an_error_a_library_raises_after_ctrl_c_exits_as_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """E.g. a pool whose workers Ctrl-C killed raises its own error: the command was stopped."""
    from modelops import cli

    def stopped_pool(args: object, paths: object) -> int:
        _press_ctrl_c_inside_a_broad_except()
        raise RuntimeError("A worker process managed by the executor was unexpectedly terminated")

    parser = cli._parser()
    original = parser.parse_args
    monkeypatch.setattr(cli, "_parser", lambda: parser)
    monkeypatch.setattr(
        parser, "parse_args", lambda argv=None: _with_handler(original(["params"]), stopped_pool)
    )
    assert cli.main(["params"]) == 130
    assert "interrupted: nothing was written" in capsys.readouterr().err


def test_an_error_without_ctrl_c_is_still_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelops import cli

    def broken(args: object, paths: object) -> int:
        raise RuntimeError("a bug")

    parser = cli._parser()
    original = parser.parse_args
    monkeypatch.setattr(cli, "_parser", lambda: parser)
    monkeypatch.setattr(
        parser, "parse_args", lambda argv=None: _with_handler(original(["params"]), broken)
    )
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["params"])


def _with_handler(parsed: object, handler: object) -> object:
    parsed.handler = handler  # type: ignore[attr-defined]
    return parsed

"""A real-time command refuses a batch environment saying what it is, before touching anything:
there is no rollout of traffic to plan. (`monitor` and `up` take batch environments: the monitor
judges the runs' pushed bins, the rehearsal runs them on a schedule.)"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from modelops.cli import main
from tests.support import template_params, write_params


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("canary plan --env nightly", "there is no rollout to plan"),
    ],
)
def test_a_real_time_command_refuses_the_batch_environment(
    command: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the template's params (nightly is its batch environment) and nothing else
    write_params(tmp_path, template_params())
    monkeypatch.chdir(tmp_path)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(command.split())
    # Then the command fails with what the environment is and why it does not apply
    assert code != 0
    assert "nightly is a batch environment" in err.getvalue()
    assert expected in err.getvalue()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"], "nothing was written"

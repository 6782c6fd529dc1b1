"""`modelops canary auto` on a step that holds too long, and on an environment with no canary.

Prometheus is the local stand-in of test_prometheus_client.py (its HTTP API only, on
loopback), answering that the canary got no requests: the verdict holds. The step started two
days ago, past `max_step_duration` 24h, so `on_timeout` decides: `ask` changes nothing and
exits 3, `rollback` rolls back as `canary-judge` with the verdict kept and linked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelops.cli import main
from modelops.deploy.workflow import Plan, write
from modelops.params import canary_steps, load_params
from modelops.releases import state
from modelops.releases.files import load_releases
from tests.canary.test_prometheus_client import server
from tests.support import copy_template, small_params

__all__ = ["server"]
LONG_AGO = "2026-01-01T00:00:00Z"


def _model(name: str, digest: str) -> state.ModelVersion:
    return state.ModelVersion(name, f"model-store/churn/{digest}", digest, "d", "0" * 40)


def _project(tmp_path: Path, on_timeout: str) -> Path:
    params: dict[str, Any] = small_params()
    params["canary"] = {"on_timeout": on_timeout}
    root = copy_template(tmp_path / "project", params)
    loaded = load_params(root / "params.yaml")
    releases = load_releases(root, loaded)
    release = state.Release(environment="production")
    for model in (_model("v1", "a" * 64), _model("v2", "b" * 64)):
        change = state.Change(at=LONG_AGO, by="alice", reason=f"merge {model.version}")
        steps = canary_steps(loaded.deploy.environments["production"])
        result = state.deploy(release, model, strategy="canary", steps=steps, change=change)
        assert isinstance(result, state.Release)
        release = result
    releases["production"] = release
    write(root, loaded, Plan(releases, ("production",), "start"))
    return root


def _auto(root: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.chdir(root)
    return main(["canary", "auto", "--env", "production", "--prometheus", url])


def test_a_hold_past_max_step_duration_asks_a_person_and_changes_nothing(
    tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path, "ask")
    before = (root / "manifests" / "releases" / "production.yaml").read_text(encoding="utf-8")
    assert _auto(root, server, monkeypatch) == 3
    out = capsys.readouterr().out
    assert "hold: canary has 0 of the 500 requests" in out
    assert (
        "past canary.max_step_duration 24h; canary.on_timeout is ask: a person must decide" in out
    )
    after = (root / "manifests" / "releases" / "production.yaml").read_text(encoding="utf-8")
    assert after == before
    assert (root / "reports" / "canary" / "production.json").is_file(), "the verdict is kept"


def test_a_hold_past_max_step_duration_rolls_back_when_params_say_so(
    tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path, "rollback")
    assert _auto(root, server, monkeypatch) == 0
    release = load_releases(root, load_params(root / "params.yaml"))["production"]
    assert release.canary is None
    event = release.history[-1]
    assert (event.action, event.by) == ("rollback", "canary-judge")
    assert "past canary.max_step_duration 24h (on_timeout rollback)" in event.reason
    assert event.verdict is not None
    verdict = json.loads((root / event.verdict).with_suffix(".json").read_text())
    assert verdict["decision"] == "hold", "the verdict itself held; the timeout rolled back"


def test_an_environment_without_a_canary_is_skipped_without_asking_prometheus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_template(tmp_path / "project", small_params())
    monkeypatch.chdir(root)
    monkeypatch.delenv("MODELOPS_PROMETHEUS_URL", raising=False)
    assert main(["canary", "auto", "--env", "production"]) == 0
    assert "no canary, nothing to judge" in capsys.readouterr().out
    assert main(["canary", "analyze", "--env", "production"]) == 2, "1 would mean roll back"

"""`modelops monitor-issues` against the GitHub stand-in, and `modelops monitor`'s refusals.

GitHub cannot exist here (tests/github_fake.py stands in for it); the reports are what
`modelops monitor` writes (its end-to-end run is tests/rehearsal/test_monitor_e2e.py).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from modelops.cli import main
from modelops.errors import RowsError
from modelops.github import marker
from modelops.monitoring.batch import read_sample
from tests.github_fake import TOKEN, serve

ENV = "production"


def _cause(
    criterion: str, statuses: list[str], subjects: list[str], triggered: bool
) -> dict[str, Any]:
    return {
        "criterion": criterion,
        "statuses": statuses,
        "breaches": statuses.count("breach"),
        "active": statuses[-1] == "breach",
        "triggered": triggered,
        "subjects": subjects,
    }


def _write_report(root: Path, causes: list[dict[str, Any]], reasons: list[str]) -> None:
    folder = root / "reports" / "monitor" / ENV
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "environment": ENV,
        "model_version": "v1",
        "at": "2026-12-03T06:17:00Z",
        "decision": {"retrain": bool(reasons), "reasons": reasons, "causes": causes, "age_days": 3},
    }
    (folder / "report.json").write_text(json.dumps(document), encoding="utf-8")
    (folder / "report.md").write_text("# Drift monitor: production\n", encoding="utf-8")


def _issues(root: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(root)
    monkeypatch.setenv("GITHUB_API_URL", url)
    monkeypatch.setenv("GITHUB_REPOSITORY", "octo/repo")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["monitor-issues", "--env", ENV]) == 0
    return printed.getvalue()


def test_one_issue_per_cause_updated_then_closed_when_it_clears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "params.yaml").write_text("{}\n")
    drift = _cause("feature_drift", ["ok", "breach", "breach"], ["tenure_months"], True)
    missing = _cause("missing_values", ["ok", "ok", "breach"], ["age"], False)
    with serve() as github:
        staging = github.add(
            "staging drift", f"body\n\n{marker('staging/feature_drift')}", ("drift-monitor",)
        )
        _write_report(tmp_path, [drift, missing], ["feature_drift breached in 2 of 3 windows"])
        first = _issues(tmp_path, github.url, monkeypatch)
        assert first.count("created") == 2, first
        opened = {n: i for n, i in github.issues.items() if n != staging}
        titles = sorted(i["title"] for i in opened.values())
        assert titles == [
            "Drift monitor: production feature_drift (tenure_months)",
            "Drift monitor: production missing_values (age)",
        ]
        body = next(i["body"] for i in opened.values() if "feature_drift" in i["title"])
        assert "retraining triggered" in body
        assert "runbooks/drift-and-retraining.md#feature-drift" in body
        assert body.rstrip().endswith(marker("production/feature_drift"))

        _write_report(
            tmp_path, [drift, _cause("missing_values", ["ok", "breach", "ok"], [], False)], []
        )
        second = _issues(tmp_path, github.url, monkeypatch)
        assert "updated" in second
        assert "closed" in second, second
        assert len(github.issues) == 3, "no duplicate"
        closed = [i for i in github.issues.values() if i["state"] == "closed"]
        assert [i["title"] for i in closed] == ["Drift monitor: production missing_values (age)"]
        assert github.issues[staging]["state"] == "open", "another environment is left alone"
        comments = [c for cs in github.comments.values() for c in cs]
        assert any(c.startswith("Cleared") for c in comments)


def test_monitor_issues_without_a_report_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "params.yaml").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["monitor-issues", "--env", ENV]) == 1
    assert "run `modelops monitor --env production` first" in capsys.readouterr().err


def test_a_malformed_log_line_is_named_and_nothing_is_kept(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    good = json.dumps({"model_version": "v", "features": {"a": 1, "b": "x"}})
    log.write_text(f"{good}\n{good}\n{{not json\n", encoding="utf-8")
    with pytest.raises(RowsError, match=r"requests.jsonl:3: not a JSON line"):
        read_sample(log, ("a", "b"), size=10)
    log.write_text(f"{good}\n" + json.dumps({"features": {"a": 1}}) + "\n", encoding="utf-8")
    with pytest.raises(RowsError, match=r":2: no value for b: the log is of another model"):
        read_sample(log, ("a", "b"), size=10)
    log.write_text("\n", encoding="utf-8")
    with pytest.raises(RowsError, match="holds no rows"):
        read_sample(log, ("a", "b"), size=10)


def test_the_sample_is_uniform_and_bounded(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    lines = [json.dumps({"model_version": "v", "features": {"a": i}}) for i in range(20_000)]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sample = read_sample(log, ("a",), size=1000)
    assert sample.total == 20_000
    assert len(sample.frame) == 1000
    assert sample.frame["a"].is_unique
    assert 8000 < sample.frame["a"].mean() < 12_000  # not the first 1,000 rows
    assert sample.versions == ("v",)


def test_a_profile_from_another_model_than_the_served_one_is_refused(tmp_path: Path) -> None:
    from modelops.errors import MonitorError
    from modelops.identity import content_hash
    from modelops.monitoring.monitor import load_profile
    from modelops.params import DeployParams
    from modelops.releases.state import ModelVersion

    served, canary = tmp_path / "served", tmp_path / "canary"
    for directory, marker_text in ((served, "stable"), (canary, "canary")):
        directory.mkdir()
        (directory / "MLmodel").write_text(f"flavors: {{}}  # {marker_text}\n")
        (directory / "profile.json").write_text("{}")
    model = ModelVersion("v7", "model-store/v7", content_hash(served), "d", "c")
    with pytest.raises(MonitorError, match="is served: judged against another model's profile"):
        load_profile(tmp_path, model, canary, deploy=DeployParams())
    with pytest.raises(MonitorError, match="not a model directory"):
        load_profile(tmp_path, model, tmp_path / "profile.json", deploy=DeployParams())
    # The served model's own directory gets past the check (to reading its profile).
    with pytest.raises(MonitorError, match="is not a reference profile"):
        load_profile(tmp_path, model, served / "profile.json", deploy=DeployParams())

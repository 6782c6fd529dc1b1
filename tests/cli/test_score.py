"""`modelops score`: the model a release names, fetched and hash-checked, scores a table.

A copy of the shared trained project, released to staging by the real `modelops release
deploy` (its local store stands in for the bucket); the engine is the real `modelops-score` of
this checkout's serving/.venv. The engine's own behaviour is tests/serving/test_batch.py's.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from modelops.cli import main
from modelops.identity import content_hash
from tests.shared import copy_project
from tests.support import REPO_ROOT

TEST_ROWS = "data/prepared/test.parquet"


def _modelops(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, err.getvalue()


@pytest.fixture
def project(trained_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(trained_project, tmp_path / "project")
    (root / "serving" / ".venv").symlink_to(REPO_ROOT / "serving" / ".venv")
    monkeypatch.chdir(root)
    return root


def test_a_released_model_is_fetched_checked_and_scores_the_table(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, err = _modelops("score", "--env", "staging", "--input", TEST_ROWS, "--output", "scores")
    assert code == 1, "nothing released yet"
    assert "nothing is released to staging yet; `modelops release deploy --env staging`" in err

    assert _modelops("release", "deploy")[0] == 0
    released = content_hash(project / "models" / "model")
    shutil.rmtree(project / "models" / "model")  # the workspace model is not what scores
    code, err = _modelops("score", "--env", "staging", "--input", TEST_ROWS, "--output", "scores")
    assert code == 0, err + capfd.readouterr().err
    record = json.loads((project / "scores" / "_run.json").read_text())
    assert record["model"]["hash"] == released
    assert record["model"]["hash_checked"] is True
    fetched = Path(record["model"]["path"])
    assert fetched == project / ".models" / released
    scores = pd.read_parquet(project / "scores")
    rows = pd.read_parquet(project / TEST_ROWS)
    assert scores["customer_id"].tolist() == rows["customer_id"].tolist(), "prepare.columns.id"
    printed = capfd.readouterr().out
    assert "with staging's release" in printed
    assert "drift: 0 breach(es)" in printed, "the test rows are the reference's own population"
    judged = json.loads((project / "scores" / "_drift.json").read_text())
    assert judged["status"] in {"ok", "inconclusive"}
    assert {f["subject"] for f in judged["findings"]} >= {"tenure_months", "plan", "score"}


def test_a_drifted_table_is_scored_and_its_drift_named(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Three copies of the test rows: the 1,000 rows monitoring.objectives asks for a verdict.
    rows = pd.concat([pd.read_parquet(project / TEST_ROWS)] * 3, ignore_index=True)
    rows["tenure_months"] = rows["tenure_months"] * 3 + 40
    rows.to_parquet(project / "drifted.parquet")
    code, err = _modelops("score", "--input", "drifted.parquet", "--output", "scores")
    assert code == 0, err
    printed = capfd.readouterr().out
    assert "drift: breach: feature_drift tenure_months: KS" in printed, printed
    judged = json.loads((project / "scores" / "_drift.json").read_text())
    assert judged["status"] == "breach"
    breached = [f for f in judged["findings"] if f["status"] == "breach"]
    assert [f["subject"] for f in breached if f["criterion"] == "feature_drift"] == [
        "tenure_months"
    ]
    assert breached[0]["value"]["low"] > breached[0]["limit"], "breach: the interval is beyond"


def test_the_workspace_model_scores_without_a_release_and_unknown_envs_are_named(
    project: Path,
) -> None:
    code, _ = _modelops(
        "score", "--input", TEST_ROWS, "--output", "scores", "--id-column", "customer_id"
    )
    assert code == 0
    record = json.loads((project / "scores" / "_run.json").read_text())
    assert record["model"]["hash"] == content_hash(project / "models" / "model")
    assert record["model"]["hash_checked"] is False
    code, err = _modelops("score", "--env", "nightly-typo", "--input", TEST_ROWS, "--output", "s")
    assert code == 1
    assert "no environment 'nightly-typo' in params.yaml (deploy.environments: staging" in err


def _threshold_moved(model: Path, destination: Path, threshold: float) -> Path:
    """A copy of `model` that classifies at another threshold: the same scores, other classes."""
    shutil.copytree(model, destination)
    profile = json.loads((destination / "profile.json").read_text())
    profile["score"]["threshold"] = threshold
    (destination / "profile.json").write_text(json.dumps(profile))
    return destination


def test_a_candidate_is_shadow_scored_and_judged_against_stable(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Ten copies of the test rows, each its own customer: 6,000 rows, enough to decide.
    rows = pd.read_parquet(project / TEST_ROWS)
    batch = pd.concat([rows] * 10, ignore_index=True)
    batch["customer_id"] = range(len(batch))
    batch.to_parquet(project / "batch.parquet")
    model = project / "models" / "model"
    score = ("score", "--input", "batch.parquet", "--output", "scores")

    # The same model as candidate (A/A): every criterion decided within its bound.
    code, err = _modelops(*score, "--candidate", "models/model")
    printed = capfd.readouterr().out
    assert code == 0, err + printed
    assert "shadow: take over: every criterion is within its bound" in printed
    verdict = json.loads((project / "scores.candidate" / "_shadow.json").read_text())
    assert verdict["decision"] == "take over"
    judged = {f["criterion"]: f for f in verdict["findings"]}
    assert judged["rank agreement with stable"]["estimate"] == pytest.approx(1.0)
    assert judged["agreement with stable"]["low"] > 0.99
    assert judged["latency"]["status"] == "skipped"
    assert verdict["stable"]["model_hash"] == verdict["candidate"]["model_hash"]

    # Same scores, but nothing reaches its threshold: the positive rate falls by 10 points.
    strict = _threshold_moved(model, project / "strict", 0.999)
    code, _ = _modelops(*score, "--candidate", str(strict))
    printed = capfd.readouterr().out
    assert code == 1, printed
    assert "shadow: reject: positive rate" in printed
    assert "candidate predicts 0.00% of 6000 positive" in printed
    assert pd.read_parquet(project / "scores")["score"].notna().all(), "stable's scores stand"

    # 600 rows cannot tell a slightly different threshold from the same one: hold, never pass.
    nudged = _threshold_moved(model, project / "nudged", 0.45)
    code, _ = _modelops(
        "score", "--input", TEST_ROWS, "--output", "small", "--candidate", str(nudged)
    )
    printed = capfd.readouterr().out
    assert code == 3, printed
    assert "shadow: hold: not enough rows to decide" in printed
    assert json.loads((project / "small.candidate" / "_shadow.json").read_text())["decision"] == (
        "hold"
    )


def test_with_env_a_run_by_hand_pushes_under_the_group_the_rendered_rules_read() -> None:
    from modelops.batch.score import Model, ScoreRequest, push_flags
    from modelops.params import Params, batch_name
    from tests.support import template_params

    params = Params.model_validate(template_params())
    released = Model(Path("/m"), "ab" * 32, "nightly's release v3", "v3")
    request = ScoreRequest(
        input="in", output=Path("out"), env="nightly", pushgateway="http://p:9091"
    )
    assert push_flags(request, released, params) == [
        *("--pushgateway", "http://p:9091", "--model-version", "v3"),
        *("--push-job", batch_name(params.deploy.name, "nightly")),
        *("--push-label", "namespace=churn-batch"),
    ]
    trained = Model(Path("/m"), "", "the model in models/model")
    by_directory = ScoreRequest(input="in", output=Path("out"), pushgateway="http://p:9091")
    assert push_flags(by_directory, trained, params) == ["--pushgateway", "http://p:9091"]
    assert push_flags(ScoreRequest(input="in", output=Path("out")), trained, params) == []

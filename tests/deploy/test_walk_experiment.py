"""An A/B experiment through the real command line, in a temporary git repository.

A model serves everywhere; a second one reaches staging; production then runs an experiment
between them (`release experiment start`), is refused a deploy while it runs, and is
concluded on a verdict (the candidate wins) or stopped. After each step the rendered files
validate, `render --check` agrees, and the history says what happened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import merge_model, modelops, step, version
from tests.support import git, template_params, write_params


def _declare(repo: Path, candidate_hash: str, **changes: Any) -> None:
    params = template_params()
    params["experiments"] = {
        "production": {
            "name": "offer-v2",
            "unit": "customer_id",
            "variants": {"b": candidate_hash},
            "split": {"stable": 50, "b": 50},
            "minimum_effect": 2.0,
            **changes,
        }
    }
    write_params(repo, params)
    git(repo, "add", "params.yaml")
    git(repo, "commit", "--quiet", "--message", "Declare the offer-v2 experiment")


def _release(repo: Path, environment: str = "production") -> dict[str, Any]:
    path = repo / "manifests" / "releases" / f"{environment}.yaml"
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


@pytest.fixture
def candidate(repo: Path, trained_models: list[Path]) -> tuple[str, str]:
    """(stable version, candidate hash): the first model everywhere, the second in staging."""
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    merge_model(repo, trained_models[1])
    step(repo, "deploy", "--env", "staging")
    return version(repo, "production"), str(_release(repo, "staging")["stable"]["model_hash"])


def test_an_experiment_starts_blocks_deploys_and_concludes_on_its_verdict(
    repo: Path, candidate: tuple[str, str], trained_models: list[Path]
) -> None:
    v1, b_hash = candidate
    _declare(repo, b_hash)
    title = step(repo, "experiment", "start", "--env", "production")
    assert title.startswith(f"experiment start: production experiment offer-v2 (stable {v1} 50%")
    document = _release(repo)
    assert document["traffic"] == {"stable": 50, "b": 50}
    assert [v["name"] for v in document["experiment"]["variants"]] == ["stable", "b"]
    status = modelops("release", "status", "--env", "production")[1]
    assert "experiment offer-v2: units by customer_id" in status
    assert f"  b {document['experiment']['variants'][1]['version']}: " in status
    assert "start-experiment" in status
    deployment = yaml.safe_load(
        (repo / "manifests" / "rendered" / "production" / "seldondeployment.yaml").read_text()
    )
    pod = deployment["spec"]["predictors"][0]["componentSpecs"][0]["spec"]
    assert [c["args"][1] for c in pod["initContainers"]] == ["/mnt/models/stable", "/mnt/models/b"]

    # While it runs, a merge cannot deploy to production.
    merge_model(repo, trained_models[2])
    code, _out, err = modelops("release", "deploy", "--env", "production")
    assert code == 1
    assert "running experiment offer-v2" in err
    assert "Conclude it" in err

    # A verdict that says keep running cannot conclude it.
    verdict = repo / "reports" / "experiments" / "production.json"
    verdict.parent.mkdir(parents=True, exist_ok=True)
    base = {"environment": "production", "experiment": "offer-v2", "winner": None}
    verdict.write_text(json.dumps({**base, "kind": "keep-running"}))
    code, _out, err = modelops(
        "release", "experiment", "conclude", "--env", "production", "--verdict", str(verdict),
        "--reason", "too early",
    )  # fmt: skip
    assert code == 1
    assert "Keep it running" in err

    # A verdict naming b as the winner concludes it: b serves everything, the verdict is kept.
    verdict.write_text(json.dumps({**base, "kind": "winner", "winner": "b"}))
    verdict.with_suffix(".md").write_text("# Experiment verdict: Winner\n")
    title = step(
        repo, "experiment", "conclude", "--env", "production", "--verdict", str(verdict),
        "--reason", "b earns more",
    )  # fmt: skip
    assert title.startswith("experiment conclude: production offer-v2, b wins")
    document = _release(repo)
    assert document["stable"]["model_hash"] == b_hash
    assert document["traffic"] == {"stable": 100}
    assert "experiment" not in document
    event = document["history"][-1]
    assert event["action"] == "conclude-experiment"
    kept = repo / event["verdict"]
    assert kept.read_text() == "# Experiment verdict: Winner\n"
    assert kept.with_suffix(".json").is_file()
    assert f"Verdict: {event['verdict']}" in git(repo, "log", "-1", "--format=%b")


def test_an_experiment_is_stopped_with_a_reason_and_stable_takes_everything(
    repo: Path, candidate: tuple[str, str]
) -> None:
    v1, b_hash = candidate
    _declare(repo, b_hash)
    step(repo, "experiment", "start", "--env", "production")
    title = step(
        repo, "experiment", "stop", "--env", "production", "--reason", "SRM: a client drops the id"
    )
    assert title == f"experiment stop: production offer-v2 ended, {v1} takes 100%"
    assert _release(repo)["traffic"] == {"stable": 100}
    assert _release(repo)["history"][-1]["reason"] == "SRM: a client drops the id"


def test_an_unknown_candidate_or_a_unit_requests_lack_is_refused(
    repo: Path, candidate: tuple[str, str]
) -> None:
    for changes, expected in (
        ({"variants": {"b": "e" * 64}}, "no released model has content hash eeeeeeeeeeee"),
        ({"unit": "account_ref"}, "'account_ref' is neither prepare.columns.id"),
    ):
        _declare(repo, candidate[1], **changes)
        before = _release(repo)
        code, _out, err = modelops("release", "experiment", "start", "--env", "production")
        assert code == 1
        assert expected in err
        assert _release(repo) == before, "nothing written"


def test_an_experiment_beside_a_running_canary_is_refused(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    merge_model(repo, trained_models[1])
    step(repo, "deploy")  # production: a canary at 10%
    candidate = str(_release(repo, "staging")["stable"]["model_hash"])
    _declare(repo, candidate)
    code, _out, err = modelops("release", "experiment", "start", "--env", "production")
    assert code == 1
    assert "is running a canary" in err
    assert "Promote or roll it back first" in err


def test_the_experiment_commands_exit_2_with_the_fix_when_they_cannot_judge(
    repo: Path, candidate: tuple[str, str]
) -> None:
    code, _out, err = modelops("experiment", "plan", "--env", "production")
    assert code == 2
    assert "declares no experiment for production" in err
    _declare(repo, candidate[1])
    code, _out, err = modelops("experiment", "analyze", "--env", "production")
    assert code == 2
    assert "no experiment runs" in err
    assert "modelops release experiment start --env production" in err
    step(repo, "experiment", "start", "--env", "production")
    unreachable = ("--prometheus", "http://127.0.0.1:9")
    code, _out, err = modelops("experiment", "analyze", "--env", "production", *unreachable)
    assert code == 2
    assert "cannot reach Prometheus at http://127.0.0.1:9" in err
    assert not (repo / "reports" / "experiments").exists(), "no verdict without a judgement"
    # Params edited after the start no longer describe what the servers do: refused.
    _declare(repo, candidate[1], split={"stable": 80, "b": 20})
    code, _out, err = modelops("experiment", "analyze", "--env", "production")
    assert code == 2
    assert "judge it with the params it was started with" in err

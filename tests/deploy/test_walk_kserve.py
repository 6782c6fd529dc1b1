"""The release commands on KServe (`target: kserve`), through the real command line.

The same state machine as on Seldon (tests/deploy/test_walk.py): a first deploy, a canary
promoted to the end, a third model rolled back then retried, a restore, an A/B experiment. After
each step the rendered InferenceService validates (strict KServe v0.20 schema and its admission
rules) and `render --check` agrees. A shadow cannot run on KServe: params refuse
`shadow_first`, and a shadow left running when an environment moves to KServe is refused at
render with the way out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import merge_model, modelops, step, version
from tests.support import git, write_params


def _on(root: Path, target: str, **production: Any) -> None:
    """params.yaml with staging and production on `target`, committed as a user would."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    for name in ("staging", "production"):
        params["deploy"]["environments"][name]["target"] = target
    params["deploy"]["environments"]["production"].update(production)
    write_params(root, params)
    git(root, "commit", "--quiet", "--all", "--message", f"Serve on {target}")


def _traffic(root: Path, environment: str) -> dict[str, int]:
    """Stable's share (what the canaries leave) and each canary's, from the InferenceService."""
    path = root / "manifests" / "rendered" / environment / "inferenceservice.yaml"
    spec = yaml.safe_load(path.read_text())["spec"]
    canaries = {c["predictor"]["name"]: c["trafficPercent"] for c in spec.get("canary", [])}
    return {"stable": 100 - sum(canaries.values()), **canaries}


def _served(root: Path, environment: str) -> list[str]:
    """Each predictor's model hash, stable first (the annotation KServe puts on its pods)."""
    path = root / "manifests" / "rendered" / environment / "inferenceservice.yaml"
    spec = yaml.safe_load(path.read_text())["spec"]
    predictors = [spec["predictor"], *(c["predictor"] for c in spec.get("canary", []))]
    return [p["annotations"]["modelops.io/model-version"] for p in predictors]


def test_the_release_commands_drive_kserve_as_they_drive_seldon(
    repo: Path, trained_models: list[Path]
) -> None:
    first, second, third = trained_models
    _on(repo, "kserve")
    merge_model(repo, first)
    step(repo, "deploy")
    v1 = version(repo, "production")
    rendered = sorted(p.name for p in (repo / "manifests/rendered/production").iterdir())
    assert "inferenceservice.yaml" in rendered
    assert "seldondeployment.yaml" not in rendered
    assert _traffic(repo, "production") == {"stable": 100}
    status = modelops("release", "status", "--env", "production")[1]
    assert "[canary on KServe, namespace churn-production]" in status

    # A second model: staging takes it, production runs it as a spec.canary entry at 10%.
    merge_model(repo, second)
    step(repo, "deploy")
    v2 = version(repo, "staging")
    assert _traffic(repo, "production") == {"stable": 90, "canary": 10}
    assert _served(repo, "production") == [v1, v2]
    for reason in ("ok at 10%", "ok at 25%"):
        step(repo, "promote", "--env", "production", "--reason", reason)
    assert _traffic(repo, "production") == {"stable": 50, "canary": 50}
    assert step(repo, "promote", "--env", "production", "--reason", "ok at 50%") == (
        f"complete: production runs {v2} (100%)"
    )
    assert _traffic(repo, "production") == {"stable": 100}
    assert _served(repo, "production") == [v2], "the canary's model, in the stable predictor"

    # A third model goes bad: rolled back, the entry is gone; retried, then restored away from.
    merge_model(repo, third)
    v3 = step(repo, "deploy").split()[1]
    assert step(repo, "rollback", "--env", "production", "--reason", "errors up") == (
        f"rollback: production canary {v3} removed, {v2} takes 100%"
    )
    assert _served(repo, "production") == [v2]
    step(repo, "deploy", "--retry")
    for _ in range(3):
        step(repo, "promote", "--env", "production", "--reason", "healthy")
    assert _served(repo, "production") == [v3]
    step(repo, "restore", "--env", "production", "--version", v2, "--reason", "drift")
    assert _served(repo, "production") == [v2]


def test_an_experiment_runs_on_kserve(repo: Path, trained_models: list[Path]) -> None:
    _on(repo, "kserve")
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    merge_model(repo, trained_models[1])
    step(repo, "deploy", "--env", "staging")
    candidate = yaml.safe_load((repo / "manifests/releases/staging.yaml").read_text())["stable"]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["experiments"] = {
        "production": {
            "name": "offer-v2",
            "unit": "customer_id",
            "variants": {"b": candidate["model_hash"]},
            "split": {"stable": 50, "b": 50},
            "minimum_effect": 2.0,
        }
    }
    write_params(repo, params)
    git(repo, "commit", "--quiet", "--all", "--message", "Declare the offer-v2 experiment")
    step(repo, "experiment", "start", "--env", "production")
    path = repo / "manifests" / "rendered" / "production" / "inferenceservice.yaml"
    predictor = yaml.safe_load(path.read_text())["spec"]["predictor"]
    assert [c["args"][1] for c in predictor["initContainers"]] == [
        "/mnt/models/stable",
        "/mnt/models/b",
    ]
    step(repo, "experiment", "stop", "--env", "production", "--reason", "the offer was withdrawn")
    assert _traffic(repo, "production") == {"stable": 100}


def test_shadow_first_on_kserve_is_refused_before_anything_runs(repo: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["deploy"]["environments"]["production"].update(target="kserve", shadow_first=True)
    write_params(repo, params)
    code, _, err = modelops("render", "--check")
    assert code == 1
    assert "deploy.environments.production.shadow_first: target kserve cannot run a shadow" in err
    assert "Set shadow_first: false" in err


@pytest.mark.parametrize("way_out", ["promote", "rollback"])
def test_a_shadow_running_when_production_moves_to_kserve_must_end_first(
    repo: Path, trained_models: list[Path], way_out: str
) -> None:
    # Given a shadow running on Seldon, when production moves to KServe, then rendering is
    # refused (nothing written) until the shadow is promoted to a canary or rolled back.
    _on(repo, "seldon", shadow_first=True)
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    merge_model(repo, trained_models[1])
    step(repo, "deploy")
    _on(repo, "kserve", shadow_first=False)
    before = git(repo, "status", "--porcelain")
    code, _, err = modelops("render")
    assert code == 1
    assert "deploy.environments.production.target is kserve" in err
    assert "no way to mirror requests" in err
    assert f"modelops release {way_out} --env production" in err
    assert git(repo, "status", "--porcelain") == before, "nothing written"
    step(repo, way_out, "--env", "production", "--reason", "moving to KServe")
    expected = {"stable": 90, "canary": 10} if way_out == "promote" else {"stable": 100}
    assert _traffic(repo, "production") == expected

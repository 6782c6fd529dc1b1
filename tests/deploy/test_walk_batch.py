"""A batch environment through the real command line: deploy pins the model in the CronJob,
a second merge replaces it, promote is refused, rollback goes back to the previous model and a
second rollback never brings back the one the first left. After each step the rendered files
validate and `render --check` agrees (`step`)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.deploy.support import merge_model, modelops, step, version
from tests.support import git

NIGHTLY = "nightly"


def _pinned(repo: Path) -> str:
    """The model hash the nightly CronJob's scorer is pinned to."""
    cronjob = yaml.safe_load((repo / "manifests/rendered/nightly/cronjob.yaml").read_text())
    (score,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    arguments: list[str] = score["args"]
    return arguments[arguments.index("--model-hash") + 1]


def _hash(repo: Path) -> str:
    release = yaml.safe_load((repo / "manifests/releases/nightly.yaml").read_text())
    return str(release["stable"]["model_hash"])


def test_a_batch_environment_is_released_rolled_back_and_never_promoted(
    repo: Path, trained_models: list[Path]
) -> None:
    first, second, _ = trained_models
    # Given the template's nightly batch environment, when a model is deployed there alone,
    # then its CronJob runs that model, pinned by content hash, and nothing else is released.
    merge_model(repo, first)
    title = step(repo, "deploy", "--env", NIGHTLY)
    v1 = version(repo, NIGHTLY)
    assert title == f"deploy: {v1} to nightly (100%)"
    assert _pinned(repo) == _hash(repo)
    assert sorted(p.name for p in (repo / "manifests/rendered").iterdir()) == [NIGHTLY]
    assert sorted(p.name for p in (repo / "manifests/rendered/nightly").iterdir()) == [
        "cronjob.yaml",
        "networkpolicy.yaml",
        "prometheusrule.yaml",
    ]
    assert (repo / "manifests/argocd/nightly.yaml").is_file(), "Argo CD syncs it like the others"

    # When a second model is merged, it replaces the first at once (no canary for batch).
    merge_model(repo, second)
    assert (
        step(repo, "deploy", "--env", NIGHTLY)
        == f"deploy: {version(repo, NIGHTLY)} to nightly (100%)"
    )
    v2 = version(repo, NIGHTLY)
    assert v2 != v1
    assert _pinned(repo) == _hash(repo)

    # Promote has no meaning here: refused, saying why and how to go back, nothing written.
    code, _, err = modelops("release", "promote", "--env", NIGHTLY, "--reason", "go")
    assert code == 1
    assert "nightly is a batch environment" in err
    assert "modelops release rollback --env nightly" in err
    assert git(repo, "status", "--porcelain", "manifests") == ""

    # Rollback goes back to the previous model; the CronJob is pinned to it again.
    assert step(repo, "rollback", "--env", NIGHTLY, "--reason", "scores shifted") == (
        f"rollback: nightly back to {v1}, replacing {v2} (the next scheduled run scores with it)"
    )
    assert version(repo, NIGHTLY) == v1
    assert _pinned(repo) == _hash(repo)
    status = modelops("release", "status", "--env", NIGHTLY)[1]
    assert "[batch, local engine, schedule '0 2 * * *' Etc/UTC, namespace churn-batch]" in status
    assert f"taken out: {v2}" in status

    # The merged model is not brought back by the next deploy, nor by a second rollback.
    code, out, _ = modelops("release", "deploy", "--env", NIGHTLY)
    assert code == 0
    assert f"{v2} was taken out of nightly" in out
    code, _, err = modelops("release", "rollback", "--env", NIGHTLY, "--reason", "again")
    assert code == 1
    assert "no previous model to go back to that was not taken out" in err
    history = yaml.safe_load((repo / "manifests/releases/nightly.yaml").read_text())["history"]
    assert [(e["action"], e["version"]) for e in history] == [
        ("deploy", v1),
        ("deploy", v2),
        ("restore", v1),
    ]
    assert history[-1]["reason"] == "scores shifted"

"""The whole GitOps loop through the real command line, in a temporary git repository.

First deploy, a second model merged (a canary), promoted through every step, a third model
rolled back, promoted after a new deploy, and restored; after each step the rendered files
validate, `render --check` agrees, and the commit message and history say what happened.
Without MLFLOW_TRACKING_URI (the default) versions are content-hash prefixes.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelops.cli import main
from tests.deploy.support import merge_model, modelops, record_gates, step, traffic, version
from tests.support import git, write_params


def test_the_whole_loop(repo: Path, trained_models: list[Path]) -> None:
    first, second, third = trained_models

    # Given a new repository, when the first model is merged, every environment serves it.
    merge_model(repo, first)
    assert modelops("render", "--check")[0] == 0, "no release: nothing rendered is current"
    title = step(repo, "deploy")
    v1 = version(repo, "production")
    assert title == f"deploy: {v1} to staging (100%), production (100%), nightly (100%)"
    assert traffic(repo, "staging") == traffic(repo, "production") == {"stable": 100}
    assert sorted(p.name for p in (repo / "manifests" / "argocd").iterdir()) == [
        "nightly.yaml",
        "production.yaml",
        "staging.yaml",
    ]
    assert (
        repo
        / "model-store"
        / "churn"
        / yaml.safe_load((repo / "manifests" / "releases" / "production.yaml").read_text())[
            "stable"
        ]["model_hash"]
        / "MLmodel"
    ).is_file(), "published before it is referenced"

    # When a second model is merged, staging takes it and production starts a canary at 10%.
    merge_model(repo, second)
    title = step(repo, "deploy")
    v2 = version(repo, "staging")
    assert title == f"deploy: {v2} to staging (100%), production (canary 10%), nightly (100%)"
    assert traffic(repo, "production") == {"stable": 90, "canary": 10}
    body = git(repo, "log", "-1", "--format=%b")
    assert f"production: stable {v1} (90%), canary {v2} (10%)" in body
    assert "By deploy-bot: merge of" in body

    # Promote through every step; the last makes it stable.
    assert step(repo, "promote", "--env", "production", "--reason", "ok at 10%") == (
        f"promote: production canary {v2} 10% -> 25%"
    )
    assert traffic(repo, "production") == {"stable": 75, "canary": 25}
    assert step(repo, "promote", "--env", "production", "--reason", "ok at 25%") == (
        f"promote: production canary {v2} 25% -> 50%"
    )
    assert step(repo, "promote", "--env", "production", "--reason", "ok at 50%") == (
        f"complete: production runs {v2} (100%)"
    )
    assert traffic(repo, "production") == {"stable": 100}
    assert version(repo, "production") == v2

    # A third model goes bad at 25%: roll back; the canary predictor is gone.
    merge_model(repo, third)
    v3 = step(repo, "deploy").split()[1]
    step(repo, "promote", "--env", "production", "--reason", "ok at 10%")
    assert step(repo, "rollback", "--env", "production", "--reason", "errors up") == (
        f"rollback: production canary {v3} removed, {v2} takes 100%"
    )
    assert traffic(repo, "production") == {"stable": 100}

    # Promote now is illegal: it fails, says why, and changes nothing.
    code, _, err = modelops("release", "promote", "--env", "production", "--reason", "again")
    assert code == 1
    assert "no canary to promote" in err
    assert git(repo, "status", "--porcelain", "manifests") == ""

    # A later merge that does not change the model does not bring it back by itself.
    code, out, _ = modelops("release", "deploy")
    assert code == 0
    assert f"{v3} was taken out of production (rolled back" in out
    assert "nothing to change" in out

    # Retried on purpose (staging has it already), then promoted to the end.
    assert step(repo, "deploy", "--retry") == f"deploy: {v3} to production (canary 10%)"
    for _ in range(3):
        step(repo, "promote", "--env", "production", "--reason", "healthy")
    assert version(repo, "production") == v3
    assert traffic(repo, "production") == {"stable": 100}

    # And go back to the previous model after all.
    assert step(repo, "restore", "--env", "production", "--version", v2, "--reason", "drift") == (
        f"restore: production back to {v2} (100%), replacing {v3}"
    )

    status = modelops("release", "status", "--env", "production")[1]
    assert f"can restore: {v3}, {v1}" in status
    assert f"taken out: {v3} (rolled back or restored away from" in status

    # The next merge (main still records v3's model) does not bring v3 back as a canary.
    code, out, _ = modelops("release", "deploy")
    assert code == 0
    assert f"{v3} was taken out of production (rolled back, or restored away from)" in out
    assert version(repo, "production") == v2

    history = yaml.safe_load((repo / "manifests" / "releases" / "production.yaml").read_text())
    assert [event["action"] for event in history["history"]] == [
        "deploy",
        "start-canary",
        "promote",
        "promote",
        "complete",
        "start-canary",
        "promote",
        "rollback",
        "start-canary",
        "promote",
        "promote",
        "complete",
        "restore",
    ]
    assert history["history"][7]["reason"] == "errors up"
    assert {event["by"] for event in history["history"]} == {"deploy-bot"}
    subjects = git(repo, "log", "--format=%s").splitlines()
    releases = [s for s in subjects if not s.startswith(("Merge", "Start"))]
    assert len(releases) == len(history["history"]), "one commit per production step"
    assert [s.split(":")[0] for s in reversed(releases)][:5] == [
        "deploy",
        "deploy",
        "promote",
        "promote",
        "complete",
    ]


def test_an_illegal_deploy_publishes_and_writes_nothing(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    merge_model(repo, trained_models[1])
    step(repo, "deploy")
    published = sorted((repo / "model-store" / "churn").iterdir())

    merge_model(repo, trained_models[2])
    code, _, err = modelops("release", "deploy")
    assert code == 1
    assert "production is running a canary" in err
    assert "promote or roll it back first" in err
    assert git(repo, "status", "--porcelain") == ""
    assert sorted((repo / "model-store" / "churn").iterdir()) == published


def test_deploying_the_same_model_twice_changes_nothing(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    code, out, _ = modelops("release", "deploy")
    assert code == 0
    assert "nothing to change; no file written" in out
    assert "already the stable model in staging" in out


def test_a_dry_run_prints_the_commit_message_and_touches_nothing(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    code, out, _ = modelops("release", "deploy", "--dry-run")
    assert code == 0
    assert "deploy: " in out
    assert "to staging (100%), production (100%)" in out
    assert not (repo / "model-store").exists()
    assert not (repo / "manifests" / "releases").exists()


def test_render_check_catches_hand_edits_and_render_repairs_them(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    rendered = repo / "manifests" / "rendered" / "production" / "seldondeployment.yaml"
    rendered.write_text(rendered.read_text().replace("traffic: 100", "traffic: 50"))
    (repo / "manifests" / "rendered" / "production" / "extra.yaml").write_text("kind: x\n")
    code, out, err = modelops("render", "--check")
    assert code == 1
    assert "run `make render`" in err
    assert "manifests/rendered/production/seldondeployment.yaml: out of date" in out
    assert "manifests/rendered/production/extra.yaml: not produced by any release" in out
    assert modelops("render")[0] == 0
    assert git(repo, "status", "--porcelain") == "", "back to exactly what was committed"
    # A deploy killed mid-write leaves its staging and parked copies (PIDs long gone): git does
    # not see them, `render --check` names them, and the next command removes them.
    dead = int(subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout)
    (repo / "manifests" / f".rendered.old-{dead}" / "production").mkdir(parents=True)
    (repo / "manifests" / f".argocd.tmp-{dead}").mkdir()
    assert git(repo, "status", "--porcelain") == "", "git ignores them"
    code, out, _ = modelops("render", "--check")
    assert code == 1
    assert f"manifests/.rendered.old-{dead}: left by an interrupted command" in out
    assert f"manifests/.argocd.tmp-{dead}: left by an interrupted command" in out
    assert modelops("render")[0] == 0
    assert modelops("render", "--check")[0] == 0, "render removed them"


def test_a_template_that_renders_an_invalid_manifest_writes_nothing(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    template = repo / "manifests" / "templates" / "seldondeployment.yaml.j2"
    template.write_text(template.read_text().replace("traffic: {{", "traffic: 1{{", 1))
    code, _, err = modelops("release", "deploy")
    assert code == 1
    assert "the manifests do not validate" in err
    assert "traffic" in err
    assert not (repo / "manifests" / "releases").exists()
    assert not (repo / "manifests" / "rendered").exists()


def test_status_shows_models_next_step_and_history(repo: Path, trained_models: list[Path]) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    merge_model(repo, trained_models[1])
    step(repo, "deploy")
    code, out, _ = modelops("release", "status", "--env", "production")
    assert code == 0
    assert "[canary, namespace churn-production]" in out
    assert "next promote: canary to 25%" in out
    assert "start-canary" in out
    assert "by deploy-bot: merge of" in out
    assert out.rstrip().endswith("manifests: current")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("release", "promote", "--env", "prod"), "unknown environment 'prod'"),
        (("release", "deploy", "--env", "qa"), "unknown environment(s) ['qa']"),
        (("release", "deploy", "--object-store-only"), "is the local folder 'model-store'"),
        (("release", "deploy", "--model-dir", "nowhere"), "no trained model"),
        (
            ("release", "restore", "--env", "staging", "--version", "x", "--reason", "r"),
            "has no previous model x",
        ),
    ],
)
def test_bad_requests_fail_with_what_to_do(repo: Path, args: tuple[str, ...], message: str) -> None:
    code, _, err = modelops(*args)
    assert code == 1
    assert message in err
    assert git(repo, "status", "--porcelain") == ""


def test_rollback_needs_a_reason(repo: Path) -> None:
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()) as err:
        main(["release", "rollback", "--env", "production"])
    assert "--reason" in err.getvalue()


def test_a_hand_edited_release_file_is_refused(repo: Path, trained_models: list[Path]) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    path = repo / "manifests" / "releases" / "production.yaml"
    path.write_text(path.read_text().replace("stable: 100", "stable: 90"))
    code, _, err = modelops("release", "status")
    assert code == 1
    assert "release files are written by `modelops release`" in err


def test_a_push_that_retrains_the_same_model_deploys_nothing(
    repo: Path, trained_models: list[Path]
) -> None:
    # Given dvc.lock records the train stage's inputs (as after `dvc repro` on main)...
    lock = {"stages": {"train": {"cmd": "modelops train", "deps": [], "params": {"p": 1}}}}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    # ...when an unrelated push retrains from the same inputs, the new bytes deploy nothing.
    merge_model(repo, trained_models[1])
    code, out, _ = modelops("release", "deploy")
    assert code == 0
    assert "was trained from the same inputs (dvc.lock)" in out
    assert "nothing to change; no file written" in out
    # A real change of inputs is a new model, once the gates judged it.
    lock["stages"]["train"]["params"] = {"p": 2}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    code, _, err = modelops("release", "deploy")
    assert code == 1
    assert "dvc.lock changed since the gates judged" in err, "not gated with these inputs"
    record_gates(repo)
    git(repo, "commit", "--quiet", "--all", "--message", "Gate the new inputs")
    assert step(repo, "deploy").endswith("production (canary 10%), nightly (100%)")


# Only what the gates passed is ever published -------------------------------------------------


def _published(repo: Path) -> list[str]:
    store = repo / "model-store" / "churn"
    return sorted(p.name for p in store.iterdir()) if store.is_dir() else []


def test_a_model_whose_gates_failed_is_never_published(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0], passed=False)
    for args in (("deploy",), ("deploy", "--exact"), ("deploy", "--dry-run")):
        code, _, err = modelops("release", *args)
        assert code == 1, args
        assert "the gates blocked model" in err, err
        assert "is never deployed" in err, err
    assert _published(repo) == []
    assert not (repo / "manifests" / "releases").exists()


def test_a_model_the_gates_did_not_judge_is_refused(repo: Path, trained_models: list[Path]) -> None:
    merge_model(repo, trained_models[0])
    # Another model lands in models/model without the gates running on it.
    shutil.rmtree(repo / "models" / "model")
    shutil.copytree(trained_models[1] / "models" / "model", repo / "models" / "model")
    code, _, err = modelops("release", "deploy")
    assert code == 1
    assert "judged model" in err
    assert "run `dvc repro` so that the gates judge" in err
    # --model-dir does not get around it either.
    code, _, err = modelops(
        "release", "deploy", "--model-dir", str(trained_models[2] / "models" / "model")
    )
    assert code == 1
    assert "judged model" in err
    assert _published(repo) == []


def test_gates_that_ran_here_but_were_never_committed_do_not_count(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    git(repo, "rm", "--quiet", "--cached", "reports/gates.json")
    git(repo, "commit", "--quiet", "--message", "Forget the gates record")
    code, _, err = modelops("release", "deploy")
    assert code == 1
    assert "of the commit being deployed does not exist" in err
    assert _published(repo) == []


def test_a_retrain_of_the_merged_inputs_deploys_only_after_its_own_gates_passed(
    repo: Path, trained_models: list[Path]
) -> None:
    # Given the merged commit's gates judged model A trained from inputs I...
    lock = {"stages": {"train": {"cmd": "modelops train", "deps": [], "params": {"p": 1}}}}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    merge_model(repo, trained_models[0])
    # ...when the deploy retrains from I (no DVC remote) and gets model B with other bytes:
    shutil.rmtree(repo / "models" / "model")
    shutil.copytree(trained_models[1] / "models" / "model", repo / "models" / "model")
    record_gates(repo, passed=False)
    code, _, err = modelops("release", "deploy")
    assert (code, "the gates blocked model" in err) == (1, True), "its own gates failed"
    record_gates(repo)
    code, _, err = modelops("release", "deploy", "--exact")
    assert code == 1, "with a DVC remote only the very model the merged gates passed"
    assert "not the model the merged commit's gates passed" in err
    assert _published(repo) == []
    code, out, err = modelops("release", "deploy")
    assert code == 0, err
    assert "was retrained from the inputs the merged commit's gates passed" in out
    assert len(_published(repo)) == 1


def test_a_retrain_from_other_inputs_than_the_merged_gates_judged_is_refused(
    repo: Path, trained_models: list[Path]
) -> None:
    lock = {"stages": {"train": {"cmd": "modelops train", "deps": [], "params": {"p": 1}}}}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    merge_model(repo, trained_models[0])
    lock["stages"]["train"]["params"] = {"p": 2}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    shutil.rmtree(repo / "models" / "model")
    shutil.copytree(trained_models[1] / "models" / "model", repo / "models" / "model")
    record_gates(repo)  # its own gates passed, but on other inputs than were merged
    code, _, err = modelops("release", "deploy")
    assert code == 1
    assert "is neither the model the merged commit's gates passed" in err
    assert "nor a retrain of its inputs" in err


def test_a_retried_model_keeps_the_commit_that_trained_it(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    merge_model(repo, trained_models[1])
    step(repo, "deploy")
    trained_at = yaml.safe_load((repo / "manifests/releases/production.yaml").read_text())[
        "canary"
    ]["git_commit"]
    step(repo, "rollback", "--env", "production", "--reason", "errors")
    (repo / "README.md").write_text("an unrelated change\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "--quiet", "--message", "Docs")
    step(repo, "deploy", "--env", "production", "--retry", "--reason", "flaky alert")
    canary = yaml.safe_load((repo / "manifests/releases/production.yaml").read_text())["canary"]
    assert canary["git_commit"] == trained_at != git(repo, "rev-parse", "HEAD").strip()
    assert canary["mlflow_run_id"], "the run that evaluated it"


def test_promote_without_a_reason_is_refused_in_ci_and_asked_for_at_a_terminal(
    repo: Path, trained_models: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    merge_model(repo, trained_models[1])
    step(repo, "deploy")
    monkeypatch.setenv("CI", "true")
    code, _, err = modelops("release", "promote", "--env", "production")
    assert code == 1
    assert "say why with --reason" in err
    assert traffic(repo, "production") == {"stable": 90, "canary": 10}

    monkeypatch.delenv("CI")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "latency flat for 2 h")
    assert modelops("release", "promote", "--env", "production")[0] == 0
    history = yaml.safe_load((repo / "manifests/releases/production.yaml").read_text())["history"]
    assert history[-1]["reason"] == "latency flat for 2 h"


def test_restoring_the_stable_model_says_so_and_succeeds(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    v1 = step(repo, "deploy").split()[1]
    code, out, err = modelops(
        "release", "restore", "--env", "production", "--version", v1, "--reason", "x"
    )
    assert code == 0, err
    assert f"{v1} is already the stable model in production" in out
    assert git(repo, "status", "--porcelain", "manifests") == ""


def test_a_hand_edited_canary_weight_is_refused_with_the_fix(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    merge_model(repo, trained_models[1])
    step(repo, "deploy")
    # Skip ahead by hand: the weight and the traffic agree, the history does not.
    path = repo / "manifests" / "releases" / "production.yaml"
    document = yaml.safe_load(path.read_text())
    document["canary"]["weight"] = 50
    document["traffic"] = {"stable": 50, "canary": 50}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    code, _, err = modelops("release", "promote", "--env", "production", "--reason", "skip ahead")
    assert code == 1
    assert "does not follow from its history" in err or "history entry" in err, err
    assert "git checkout <commit> -- manifests/releases/production.yaml" in err


def _shadow_first(root: Path) -> None:
    """params.yaml with production's shadow stage on, committed as a user would."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["deploy"]["environments"]["production"]["shadow_first"] = True
    write_params(root, params)
    git(root, "commit", "--quiet", "--all", "--message", "Shadow first in production")


def test_with_shadow_first_a_model_is_mirrored_then_promoted_or_rolled_back(
    repo: Path, trained_models: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third = trained_models
    _shadow_first(repo)
    merge_model(repo, first)
    v1 = step(repo, "deploy").split()[1]

    # Given shadow_first, when a second model is merged, production runs it as a shadow.
    merge_model(repo, second)
    title = step(repo, "deploy")
    v2 = version(repo, "staging")
    assert title == (
        f"deploy: {v2} to staging (100%), production (shadow, mirrored), nightly (100%)"
    )
    assert traffic(repo, "production") == {"stable": 100, "shadow": 0}
    body = git(repo, "log", "-1", "--format=%b")
    assert f"production: stable {v1} (100%), shadow {v2} (mirrored, 0%)" in body
    out = modelops("release", "status", "--env", "production")[1]
    assert "[canary, shadow first, namespace churn-production]" in out
    assert "next promote: shadow to a canary at 10%" in out
    assert f"  shadow {v2}: model-store/churn/" in out
    assert "start-shadow" in out

    # A promote needs a reason that names the shadow, then makes it a canary at the first step.
    monkeypatch.setenv("CI", "true")
    code, _, err = modelops("release", "promote", "--env", "production")
    assert code == 1
    assert "to promote the shadow of production, say why with --reason" in err
    assert step(repo, "promote", "--env", "production", "--reason", "agrees with stable") == (
        f"promote: production shadow {v2} -> canary at 10%"
    )
    assert traffic(repo, "production") == {"stable": 90, "canary": 10}
    for reason in ("ok at 10%", "ok at 25%", "ok at 50%"):
        step(repo, "promote", "--env", "production", "--reason", reason)
    assert version(repo, "production") == v2

    # A third model disagrees with stable while mirrored: rolled back before any user saw it.
    merge_model(repo, third)
    v3 = step(repo, "deploy").split()[1]
    assert traffic(repo, "production") == {"stable": 100, "shadow": 0}
    assert step(repo, "rollback", "--env", "production", "--reason", "disagrees") == (
        f"rollback: production shadow {v3} removed, {v2} takes 100%"
    )
    assert traffic(repo, "production") == {"stable": 100}
    history = yaml.safe_load((repo / "manifests" / "releases" / "production.yaml").read_text())
    assert [event["action"] for event in history["history"]] == [
        "deploy",
        "start-shadow",
        "promote",
        "promote",
        "promote",
        "complete",
        "start-shadow",
        "rollback",
    ]

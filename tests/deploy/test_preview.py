"""The preview of a merge: what deploy.yml would change, shown in the PR report."""

from __future__ import annotations

from pathlib import Path

from modelops.deploy.preview import diff_stat, preview
from modelops.params import load_params
from tests.deploy.support import merge_model, modelops, step

# Per real-time environment: the Argo CD Application, the SeldonDeployment,
# PodDisruptionBudget, NetworkPolicy, PodMonitor, PrometheusRule, dashboards, and the plain rules
# file; for the batch one (nightly): the Application, the CronJob, its NetworkPolicy, and its
# rules (the PrometheusRule and the plain file).
FIRST_MERGE_FILES = 2 * 8 + 5


def _preview(repo: Path):
    return preview(
        repo, load_params(repo / "params.yaml"), model_dir=repo / "models" / "model", trained_at="c"
    )


def test_a_first_merge_shows_every_environment_and_every_new_file(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    planned = _preview(repo)
    assert planned.problem is None
    assert [(c.environment, c.before) for c in planned.changes] == [
        ("nightly", "nightly: no release yet"),
        ("production", "production: no release yet"),
        ("staging", "staging: no release yet"),
    ]
    assert planned.changes[0].after.endswith("(100%)")
    assert planned.diff.count("+++ b/manifests/") == FIRST_MERGE_FILES
    assert not (repo / "model-store").exists(), "a preview publishes nothing"


def test_a_later_merge_shows_the_canary_and_only_the_lines_that_change(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    merge_model(repo, trained_models[1])
    planned = _preview(repo)
    production = next(c for c in planned.changes if c.environment == "production")
    assert "canary" in production.after
    assert "+  - name: canary" in planned.diff
    assert "argocd" not in planned.diff, "the Applications do not change"


def test_a_merge_that_would_be_refused_says_why(repo: Path, trained_models: list[Path]) -> None:
    merge_model(repo, trained_models[0])
    step(repo, "deploy")
    merge_model(repo, trained_models[1])
    step(repo, "deploy")
    merge_model(repo, trained_models[2])
    planned = _preview(repo)
    assert planned.problem is not None
    assert "production is running a canary" in planned.problem


def test_the_command_writes_the_manifests_a_merge_would_commit(
    repo: Path, trained_models: list[Path]
) -> None:
    merge_model(repo, trained_models[0])
    code, out, _ = modelops("release", "preview")
    assert code == 0
    assert "preview: staging: no release yet -> stable" in out
    assert "preview: manifests/rendered/staging/seldondeployment.yaml: +" in out
    assert "+++ b/" not in out, "the whole diff only with --diff"
    preview_dir = repo / "reports" / "deploy-preview"
    assert (preview_dir / "rendered" / "staging" / "seldondeployment.yaml").is_file()
    assert (preview_dir / "changes.diff").read_text().count("+++ b/manifests/") == FIRST_MERGE_FILES
    assert "+++ b/manifests/" in modelops("release", "preview", "--diff")[1]
    assert not (repo / "manifests" / "rendered").exists(), "manifests/ is untouched"


def test_diff_stat_counts_lines_per_file_including_new_and_removed_files() -> None:
    diff = (
        "--- /dev/null\n+++ b/manifests/argocd/staging.yaml\n@@ -0,0 +1,2 @@\n+a\n+b\n"
        "--- a/manifests/rendered/x.yaml\n+++ b/manifests/rendered/x.yaml\n@@ -1,2 +1,2 @@\n"
        "-old\n+new\n same\n"
        "--- a/manifests/rendered/gone.yaml\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    )
    assert diff_stat(diff) == [
        ("manifests/argocd/staging.yaml", 2, 0),
        ("manifests/rendered/x.yaml", 1, 1),
        ("manifests/rendered/gone.yaml", 0, 1),
    ]

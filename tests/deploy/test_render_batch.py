"""Rendering batch environments: a CronJob (engine local) or a ScheduledSparkApplication (engine
spark) pinned to the released model, hardened like the model pods, valid against the pinned
schemas (Kubernetes' CronJob, spark-operator's CRD), and golden files.

Regenerate the golden files after an intended template change with
`UPDATE_GOLDEN=1 pytest tests/deploy/test_render_batch.py` and review the diff.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelops_serving.score_cli import parse

from modelops.deploy.render import render
from modelops.deploy.schemas import schema_source
from modelops.deploy.validate import validate
from modelops.deploy.workflow import PLAIN, templated_files
from modelops.params import BatchEnvironmentParams, DeployParams, parse_params
from modelops.releases import state
from modelops.releases.state import Release
from tests.deploy.support import HARDENED, change, changed, model_version
from tests.support import REPO_ROOT, template_params

TEMPLATES = REPO_ROOT / "manifests" / "templates"
GOLDEN = Path(__file__).parent / "golden" / "batch"
V1, V2 = model_version("v1"), model_version("v2")
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
NIGHTLY: dict[str, Any] = {
    "namespace": "churn-batch",
    "strategy": "batch",
    "schedule": "0 2 * * *",
    "input": {"url": "s3://data/churn/scoring"},
    "output": {"claim": "churn-scores", "path": "nightly"},
    "id_columns": ["customer_id"],
}
WEEKLY: dict[str, Any] = {
    "namespace": "churn-batch",
    "strategy": "batch",
    "schedule": "0 3 * * sun",
    "time_zone": "Europe/Paris",
    "engine": "spark",
    "spark": {"image": "registry.example/modelops-spark:1", "executor": {"instances": 3}},
    "input": {"claim": "churn-data", "path": "weekly"},
    "output": {"claim": "churn-scores", "path": "weekly"},
    "concurrency_policy": "Replace",
}


def _deploy(**environments: dict[str, Any]) -> DeployParams:
    return DeployParams.model_validate(
        {"environments": environments or {"nightly": NIGHTLY, "weekly": WEEKLY}}
    )


def _released(deploy: DeployParams, *models: Any) -> dict[str, Release]:
    """Each environment with `models` deployed in turn (the last one stable)."""
    releases = {}
    for name in deploy.environments:
        release = Release(name)
        for model in models or (V1,):
            release = changed(
                state.deploy(release, model, strategy="batch", steps=(), change=change())
            )
        releases[name] = release
    return releases


def _render(deploy: DeployParams | None = None, *models: Any) -> dict[str, str]:
    deploy = deploy or _deploy()
    return render(TEMPLATES, deploy, _released(deploy, *models), threshold=0.5)


def _object(files: dict[str, str], path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(files[path])
    return loaded


def _cronjob(files: dict[str, str] | None = None) -> dict[str, Any]:
    return _object(files or _render(), "rendered/nightly/cronjob.yaml")


def _spark(files: dict[str, str] | None = None) -> dict[str, Any]:
    return _object(files or _render(), "rendered/weekly/scheduledsparkapplication.yaml")


def _pod(cronjob: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    return pod


def test_batch_environments_render_their_golden_files() -> None:
    files = _render()
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for path, text in files.items():
            (GOLDEN / path).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / path).write_text(text)
    expected = {
        str(p.relative_to(GOLDEN)): p.read_text() for p in sorted(GOLDEN.rglob("*")) if p.is_file()
    }
    assert sorted(files) == sorted(expected), "run with UPDATE_GOLDEN=1 after an intended change"
    for path, text in files.items():
        assert text == expected[path], f"{path} differs; UPDATE_GOLDEN=1 after an intended change"


def test_a_batch_environment_renders_its_run_its_policy_its_rules_but_no_dashboards() -> None:
    # The dashboards watch requests; a batch run serves none. Its rules read what runs push.
    assert sorted(_render()) == [
        "argocd/nightly.yaml",
        "argocd/weekly.yaml",
        "prometheus/nightly.rules.yaml",
        "prometheus/weekly.rules.yaml",
        "rendered/nightly/cronjob.yaml",
        "rendered/nightly/networkpolicy.yaml",
        "rendered/nightly/prometheusrule.yaml",
        "rendered/weekly/networkpolicy.yaml",
        "rendered/weekly/prometheusrule.yaml",
        "rendered/weekly/scheduledsparkapplication.yaml",
    ]
    application = _object(_render(), "argocd/nightly.yaml")
    assert application["spec"]["source"]["path"] == "manifests/rendered/nightly"
    assert application["spec"]["destination"]["namespace"] == "churn-batch"


def test_every_rendered_batch_object_validates_strictly(shared_schemas: Path) -> None:
    files = {p: t for p, t in _render().items() if not p.startswith(PLAIN)}
    checked = validate(files, schemas=schema_source(REPO_ROOT), templated=templated_files(files))
    assert checked.problems == ()
    assert checked.skipped == (), "the spark-operator schema was found, not skipped"


@pytest.mark.parametrize(
    ("path", "field", "misspelt"),
    [
        ("rendered/weekly/scheduledsparkapplication.yaml", "coreLimit:", "coreLimt:"),
        ("rendered/weekly/scheduledsparkapplication.yaml", "concurrencyPolicy:", "concurrency:"),
        ("rendered/nightly/cronjob.yaml", "concurrencyPolicy:", "concurrency:"),
        ("rendered/nightly/cronjob.yaml", "readOnlyRootFilesystem:", "readOnlyRootFS:"),
    ],
)
def test_a_misspelt_field_is_refused_by_the_strict_schemas(
    path: str, field: str, misspelt: str, shared_schemas: Path
) -> None:
    text = _render()[path]
    assert field in text
    checked = validate({path: text.replace(field, misspelt)}, schemas=schema_source(REPO_ROOT))
    assert any(misspelt.rstrip(":") in problem for problem in checked.problems), checked.problems


def test_the_cronjob_runs_modelops_score_pinned_to_the_released_model() -> None:
    pod = _pod(_cronjob())["spec"]
    (score,) = pod["containers"]
    assert (score["image"], score["command"]) == (DeployParams().image, ["modelops-score"])
    # The serving image's own parser reads the flags as the released model's run.
    job = parse(score["args"])
    assert job.expected_hash == V1.model_hash, "a model directory with other content is refused"
    assert (str(job.model_dir), job.input, str(job.output)) == (
        "/mnt/models",
        "/mnt/input",
        "/mnt/output/nightly",
    )
    assert (job.id_columns, job.max_refused, job.batch_rows) == (("customer_id",), 1000, 100_000)
    assert job.run_id == "$(RUN_ID)", "Kubernetes expands it from the env below"
    (run_id,) = score["env"]
    assert run_id["name"] == "RUN_ID"
    assert run_id["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['batch.kubernetes.io/job-name']"
    )
    model, fetched = pod["initContainers"]
    assert model["args"] == [V1.model_uri, "/mnt/models"], "the immutable URI, as Seldon pods"
    assert fetched["args"] == ["s3://data/churn/scoring", "/mnt/input"], "the input URL too"
    annotations = _pod(_cronjob())["metadata"]["annotations"]
    assert annotations["modelops.io/model-hash"] == V1.model_hash


def test_a_new_model_or_a_rollback_changes_the_pinned_hash() -> None:
    deploy = _deploy(nightly=NIGHTLY)
    replaced = _released(deploy, V1, V2)
    args = _pod(_cronjob(render(TEMPLATES, deploy, replaced, threshold=0.5)))["spec"]
    assert parse(args["containers"][0]["args"]).expected_hash == V2.model_hash
    back = {"nightly": changed(state.restore(replaced["nightly"], V1.version, change=change()))}
    pod = _pod(_cronjob(render(TEMPLATES, deploy, back, threshold=0.5)))["spec"]
    assert parse(pod["containers"][0]["args"]).expected_hash == V1.model_hash
    assert pod["initContainers"][0]["args"][0] == V1.model_uri


def test_runs_never_overlap_and_follow_the_schedule_of_params() -> None:
    spec = _cronjob()["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["suspend"]) == ("0 2 * * *", "Etc/UTC", False)
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 3600
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)
    job = spec["jobTemplate"]["spec"]
    assert (job["backoffLimit"], job["activeDeadlineSeconds"]) == (2, 6 * 3600)
    spark = _spark()["spec"]
    assert (spark["schedule"], spark["timeZone"]) == ("0 3 * * sun", "Europe/Paris")
    assert spark["concurrencyPolicy"] == "Replace"


def test_a_refusal_fails_the_run_at_once_and_a_drain_does_not_count_as_a_failure() -> None:
    job = _cronjob()["spec"]["jobTemplate"]["spec"]
    refused, drained = job["podFailurePolicy"]["rules"]
    assert refused["action"] == "FailJob"
    assert refused["onExitCodes"] == {"containerName": "score", "operator": "In", "values": [1, 2]}
    assert drained == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert job["template"]["spec"]["restartPolicy"] == "Never", "podFailurePolicy needs it"


def test_every_batch_container_is_hardened_like_the_model_pods() -> None:
    pod = _pod(_cronjob())["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == POD_SECURITY
    for container in pod["initContainers"] + pod["containers"]:
        assert container["securityContext"] == HARDENED, container["name"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/tmp"] == "tmp", f"{container['name']} has scratch space"
        assert set(container["resources"]) == {"requests", "limits"}
    score = pod["containers"][0]
    assert score["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    read_only = {m["name"] for m in score["volumeMounts"] if m.get("readOnly")}
    assert read_only == {"model", "input"}, "only the output is written"
    for role in ("driver", "executor"):
        spark_pod = _spark()["spec"]["template"][role]
        assert spark_pod["podSecurityContext"] == POD_SECURITY
        assert spark_pod["securityContext"] == HARDENED
        (initializer,) = spark_pod["initContainers"]
        assert initializer["securityContext"] == HARDENED
        assert spark_pod["coreLimit"] == str(spark_pod["cores"]), "no more CPU than scheduled"


def test_the_spark_application_pins_the_model_on_the_driver_and_every_executor() -> None:
    template = _spark()["spec"]["template"]
    assert (template["type"], template["mode"], template["image"]) == (
        "Python",
        "cluster",
        "registry.example/modelops-spark:1",
    )
    arguments = template["arguments"]
    assert arguments[arguments.index("--model-hash") + 1] == V1.model_hash
    assert arguments[arguments.index("--engine") + 1] == "spark"
    assert arguments[arguments.index("--input") + 1] == "/mnt/input/weekly", "the mounted claim"
    assert arguments[arguments.index("--output") + 1] == "/mnt/output/weekly"
    for role in ("driver", "executor"):
        pod = template[role]
        assert pod["initContainers"][0]["args"] == [V1.model_uri, "/mnt/models"]
        assert {m["name"] for m in pod["volumeMounts"]} == {"model", "input", "output", "tmp"}
    assert template["executor"]["instances"] == 3
    assert template["executor"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert template["driver"]["serviceAccount"] == "spark-operator-spark", "creates executors"
    claims = {
        v["name"]: v["persistentVolumeClaim"]
        for v in template["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {
        "input": {"claimName": "churn-data", "readOnly": True},
        "output": {"claimName": "churn-scores"},
    }


def test_an_input_url_is_read_by_spark_itself_and_a_claim_is_mounted_by_the_local_engine() -> None:
    files = _render(
        _deploy(
            nightly={**NIGHTLY, "input": {"claim": "churn-data", "path": "in"}},
            weekly={**WEEKLY, "input": {"url": "s3a://data/churn"}},
        )
    )
    pod = _pod(_cronjob(files))["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["model-initializer"]
    assert {
        "name": "input",
        "persistentVolumeClaim": {"claimName": "churn-data", "readOnly": True},
    } in pod["volumes"]
    assert parse(pod["containers"][0]["args"]).input == "/mnt/input/in"
    template = _spark(files)["spec"]["template"]
    assert template["arguments"][template["arguments"].index("--input") + 1] == "s3a://data/churn"
    assert "input" not in {v["name"] for v in template["volumes"]}


def test_the_network_policy_admits_nothing_but_spark_pods_talking_to_each_other() -> None:
    files = _render()
    local = _object(files, "rendered/nightly/networkpolicy.yaml")["spec"]
    labels = _pod(_cronjob(files))["metadata"]["labels"]
    assert local["podSelector"]["matchLabels"].items() <= labels.items(), "it selects the run"
    assert (local["policyTypes"], local["ingress"]) == (["Ingress"], []), "nothing may connect"
    spark = _object(files, "rendered/weekly/networkpolicy.yaml")["spec"]
    (peers,) = spark["ingress"]
    selector = spark["podSelector"]["matchLabels"]
    assert peers == {"from": [{"podSelector": {"matchLabels": selector}}]}
    for role in ("driver", "executor"):
        assert selector.items() <= _spark(files)["spec"]["template"][role]["labels"].items()


def test_a_suspended_environment_keeps_its_schedule_but_starts_nothing() -> None:
    files = _render(_deploy(nightly={**NIGHTLY, "suspend": True}))
    assert _cronjob(files)["spec"]["suspend"] is True


def test_the_storage_secret_reaches_every_initializer() -> None:
    deploy = _deploy().model_copy(update={"storage_secret": "store-creds"})
    files = render(TEMPLATES, deploy, _released(deploy), threshold=0.5)
    initializers = _pod(_cronjob(files))["spec"]["initContainers"]
    initializers += [
        _spark(files)["spec"]["template"][r]["initContainers"][0] for r in ("driver", "executor")
    ]
    assert len(initializers) == 4
    for initializer in initializers:
        assert initializer["envFrom"] == [{"secretRef": {"name": "store-creds"}}]


def test_the_template_params_render_a_valid_nightly_cronjob(shared_schemas: Path) -> None:
    deploy = parse_params(template_params()).deploy
    nightly = deploy.environments["nightly"]
    assert isinstance(nightly, BatchEnvironmentParams), "params.yaml shows a batch environment"
    files = render(TEMPLATES, deploy, _released(deploy), threshold=0.5)
    batch = {p: t for p, t in files.items() if "nightly" in p}
    assert sorted(batch) == [
        "argocd/nightly.yaml",
        "prometheus/nightly.rules.yaml",
        "rendered/nightly/cronjob.yaml",
        "rendered/nightly/networkpolicy.yaml",
        "rendered/nightly/prometheusrule.yaml",
    ]
    objects = {p: t for p, t in batch.items() if not p.startswith(PLAIN)}
    checked = validate(
        objects, schemas=schema_source(REPO_ROOT), templated=templated_files(objects)
    )
    assert checked.problems == ()

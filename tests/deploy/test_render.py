"""Rendering: golden files per target, environment and state, deterministic, valid; and what the
SeldonDeployment must hold (weights, shadow, pinned models, hardening, probes, the objects that
select its pods). What the KServe InferenceService must hold: test_render_kserve.py.

Regenerate the golden files after an intended template change with
`UPDATE_GOLDEN=1 pytest tests/deploy/test_render.py` and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jinja2
import pytest
import yaml
from modelops_contract import FEEDBACK_KEY_ENV
from modelops_contract.experiment import parse_experiment

from modelops.deploy.render import render
from modelops.deploy.schemas import PINNED, schema_source
from modelops.deploy.validate import validate
from modelops.deploy.workflow import PLAIN, templated_files
from modelops.params import (
    BusinessValueParams,
    DeployParams,
    MonitoringParams,
    NetworkPolicyParams,
    RealtimeEnvironmentParams,
    RequestLogParams,
    ResourcesParams,
    Target,
)
from modelops.releases import state
from modelops.releases.experiment import conclude_experiment
from modelops.releases.state import Release
from tests.deploy.states import (
    GOLDEN,
    RENDERED,
    STATES,
    STEPS,
    TARGETS,
    TEMPLATES,
    V1,
    V2,
    WORKLOAD,
    deploy_params,
    render_named,
    render_state,
)
from tests.deploy.support import HARDENED, change
from tests.support import REPO_ROOT

DEPLOY = deploy_params()  # the defaults: golden files do not move when params.yaml is edited
GENERATED_IN_CODE = ("/prometheusrule.yaml", "/dashboards.yaml")


def _render(releases: dict[str, Release], deploy: DeployParams = DEPLOY) -> dict[str, str]:
    return render_state(releases, deploy=deploy)


def _predictors(files: dict[str, str], environment: str) -> list[dict]:
    deployment = yaml.safe_load(files[f"rendered/{environment}/seldondeployment.yaml"])
    return list(deployment["spec"]["predictors"])


@pytest.mark.parametrize(("target", "name"), RENDERED, ids=[f"{t}-{n}" for t, n in RENDERED])
def test_each_state_renders_its_golden_files(target: Target, name: str) -> None:
    files = render_named(name, target)
    folder = GOLDEN / target / name
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(folder, ignore_errors=True)
        for path, text in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text)
    expected = {
        str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()
    }
    assert sorted(files) == sorted(expected), "run with UPDATE_GOLDEN=1 after an intended change"
    for path, text in files.items():
        assert text == expected[path], f"{path} differs; UPDATE_GOLDEN=1 after an intended change"


@pytest.mark.parametrize(("target", "name"), RENDERED, ids=[f"{t}-{n}" for t, n in RENDERED])
def test_rendered_files_are_valid_and_free_of_template_syntax(target: Target, name: str) -> None:
    files = render_named(name, target)
    objects = {path: text for path, text in files.items() if not path.startswith(PLAIN)}
    templated = templated_files(objects)
    assert templated == {p for p in objects if not p.endswith(GENERATED_IN_CODE)}
    for path in templated:
        assert not any(syntax in files[path] for syntax in ("{{", "{%", "{#")), path
    checked = validate(objects, schemas=schema_source(REPO_ROOT), templated=templated)
    assert checked.problems == ()
    workloads = {path.rpartition("/")[2] for path in files} & set(WORKLOAD.values())
    assert workloads == {WORKLOAD[target]}, "the target's own workload, and not the other's"


def test_the_golden_folders_are_the_states_that_render() -> None:
    folders = {(p.parent.name, p.name) for p in GOLDEN.glob("*/*") if p.parent.name in TARGETS}
    assert folders == set(RENDERED), "golden/<target>/<state>/ for each state each target renders"


@pytest.mark.parametrize("pinned", PINNED, ids=lambda p: p.kind)
def test_each_pinned_schema_names_files_of_the_shared_layout(pinned, shared_schemas) -> None:
    assert (shared_schemas / pinned.crd).is_file(), "the CRD as upstream ships it"
    assert (shared_schemas / pinned.strict).is_file(), "its strict JSON schema"


def test_during_a_canary_the_weights_add_up_to_100_and_both_models_are_pinned() -> None:
    predictors = _predictors(_render(STATES["canary-25"]), "production")
    assert [(p["name"], p["traffic"]) for p in predictors] == [("stable", 75), ("canary", 25)]
    uris = [p["componentSpecs"][0]["spec"]["initContainers"][0]["args"][0] for p in predictors]
    assert uris == [V1.model_uri, V2.model_uri]
    assert [p["annotations"]["modelops.io/model-hash"] for p in predictors] == [
        V1.model_hash,
        V2.model_hash,
    ]


def test_during_a_shadow_a_shadow_predictor_gets_mirrored_requests_and_no_traffic() -> None:
    files = _render(STATES["shadow"])
    deployment = yaml.safe_load(files["rendered/production/seldondeployment.yaml"])
    predictors = deployment["spec"]["predictors"]
    assert [(p["name"], p.get("shadow"), p["traffic"]) for p in predictors] == [
        ("stable", None, 100),
        ("shadow", True, 0),
    ], "stable answers every request; Seldon mirrors each to the shadow and discards its answer"
    stable, shadow = predictors
    assert shadow["componentSpecs"][0]["spec"]["initContainers"][0]["args"][0] == V2.model_uri
    assert shadow["annotations"]["modelops.io/model-hash"] == V2.model_hash
    assert shadow["labels"] == {"modelops.io/track": "shadow"}
    assert shadow["componentSpecs"][0]["metadata"]["labels"] == {"modelops.io/track": "shadow"}
    production = DEPLOY.environments["production"]
    assert isinstance(production, RealtimeEnvironmentParams)
    canary_replicas = production.canary_replicas
    assert shadow["replicas"] == canary_replicas
    assert shadow["componentSpecs"][0]["hpaSpec"]["minReplicas"] == canary_replicas
    assert stable["replicas"] == production.autoscaling.min_replicas
    # The PodMonitor and the NetworkPolicy select the shadow's pods as they do the canary's.
    pods = _pod_labels(deployment, shadow)
    monitor = yaml.safe_load(files["rendered/production/podmonitor.yaml"])
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pods.items()
    policy = _policy(files, "production")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pods.items()
    assert pods["modelops.io/track"] == "shadow", "its series get track=shadow"


def _misspelt_shadow() -> tuple[str, str, str]:
    files = _render(STATES["shadow"])
    path = "rendered/production/seldondeployment.yaml"
    assert "    shadow: true\n" in files[path]
    return path, files[path], files[path].replace("    shadow: true\n", "    shadowed: true\n")


def test_a_misspelt_shadow_is_refused_even_without_the_schemas() -> None:
    # Without the CRD schemas (no GitHub here), Seldon's own rules still refuse it: a
    # predictor that is not a shadow may not take 0% beside stable.
    path, text, misspelt = _misspelt_shadow()
    checked = validate({path: misspelt}, schemas=schema_source(REPO_ROOT))
    assert any("0% beside others" in problem for problem in checked.problems), checked.problems
    assert not any(
        "0% beside" in p for p in validate({path: text}, schemas=schema_source(REPO_ROOT)).problems
    )


def test_the_shadow_predictor_is_checked_by_the_strict_seldon_schema(shared_schemas: Path) -> None:
    # Given the shadow state rendered, when its `shadow` field is misspelt, then the strict
    # schema refuses it: the field that passes is one the CRD declares, not one it ignores.
    path, text, misspelt = _misspelt_shadow()
    checked = validate({path: misspelt}, schemas=schema_source(REPO_ROOT))
    assert any("shadowed" in problem for problem in checked.problems), checked.problems
    assert validate({path: text}, schemas=schema_source(REPO_ROOT)).problems == ()


def test_promoting_a_shadow_renders_an_ordinary_canary_and_a_rollback_renders_stable() -> None:
    promoted = dict(STATES["shadow"])
    promoted["production"] = state.promote(promoted["production"], steps=STEPS, change=change())
    predictors = _predictors(_render(promoted), "production")
    assert [(p["name"], p.get("shadow"), p["traffic"]) for p in predictors] == [
        ("stable", None, 90),
        ("canary", None, 10),
    ]
    rolled_back = dict(STATES["shadow"])
    rolled_back["production"] = state.rollback(rolled_back["production"], change=change())
    assert _render(rolled_back) == _render(STATES["stable"]), "the same as before the shadow"


def test_each_predictor_passes_its_model_hash_to_the_server_as_a_graph_parameter() -> None:
    predictors = _predictors(_render(STATES["canary-25"]), "production")
    hashes = [
        {p["name"]: (p["type"], p["value"]) for p in predictor["graph"]["parameters"]}["model_hash"]
        for predictor in predictors
    ]
    assert hashes == [("STRING", V1.model_hash), ("STRING", V2.model_hash)]


@pytest.mark.parametrize("name", sorted(STATES))
def test_every_predictor_reads_the_one_feedback_key_from_its_secret(name: str) -> None:
    """Given stable, canary and shadow predictors, then each model container takes the key that
    signs prediction ids from the same Secret (never a value in the manifest, never optional),
    so feedback on any predictor's answer verifies wherever it lands."""
    deploy = DEPLOY.model_copy(update={"feedback_secret": "fraud-feedback"})
    for environment in ("staging", "production"):
        for predictor in _predictors(_render(STATES[name], deploy), environment):
            (container,) = predictor["componentSpecs"][0]["spec"]["containers"]
            env = {e["name"]: e for e in container["env"]}
            assert env[FEEDBACK_KEY_ENV] == {
                "name": FEEDBACK_KEY_ENV,
                "valueFrom": {"secretKeyRef": {"name": "fraud-feedback", "key": "key"}},
            }, (environment, predictor["name"])


def test_a_rollback_removes_the_canary_predictor_rather_than_setting_it_to_0() -> None:
    rolled_back = dict(STATES["canary-25"])
    rolled_back["production"] = state.rollback(rolled_back["production"], change=change())
    predictors = _predictors(_render(rolled_back), "production")
    assert [(p["name"], p["traffic"]) for p in predictors] == [("stable", 100)]
    assert _render(rolled_back) == _render(STATES["stable"]), "the same as before the canary"


def test_an_environment_without_a_release_renders_nothing_yet() -> None:
    files = _render({"staging": STATES["stable"]["staging"], "production": Release("production")})
    assert sorted(files) == [
        "argocd/staging.yaml",
        "prometheus/staging.rules.yaml",
        "rendered/staging/dashboards.yaml",
        "rendered/staging/networkpolicy.yaml",
        "rendered/staging/poddisruptionbudget.yaml",
        "rendered/staging/podmonitor.yaml",
        "rendered/staging/prometheusrule.yaml",
        "rendered/staging/seldondeployment.yaml",
    ]


def test_prometheus_finds_every_container_by_port_name_and_labels_its_track() -> None:
    files = _render(STATES["canary-25"])
    monitor = yaml.safe_load(files["rendered/production/podmonitor.yaml"])
    deployment = yaml.safe_load(files["rendered/production/seldondeployment.yaml"])
    assert monitor["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert monitor["spec"]["selector"]["matchLabels"] == {"seldon-deployment-id": "churn"}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/prometheus"), "by name: canary too"
    # Prometheus exposes pod label `modelops.io/track` as this meta label (. and / become _).
    labels = {
        p["componentSpecs"][0]["metadata"]["labels"]["modelops.io/track"]
        for p in deployment["spec"]["predictors"]
    }
    assert labels == {"stable", "canary"}
    track = next(r for r in endpoint["relabelings"] if r["targetLabel"] == "track")
    assert track["sourceLabels"] == ["__meta_kubernetes_pod_label_modelops_io_track"]
    for predictor in deployment["spec"]["predictors"]:
        ports = {
            port["name"]: port["containerPort"]
            for container in predictor["componentSpecs"][0]["spec"]["containers"]
            for port in container.get("ports", [])
        }
        assert ports.get("metrics") == 6000, f"{predictor['name']}: the model's metrics port"


def test_the_business_value_reaches_the_server_only_when_params_give_one() -> None:
    business = BusinessValueParams(true_positive=120, false_positive=-15)
    with_value = render(
        TEMPLATES,
        DEPLOY,
        STATES["stable"],
        threshold=0.5,
        monitoring=MonitoringParams(business=business, scrape_interval="30s"),
    )
    (predictor,) = _predictors(with_value, "production")
    parameters = {p["name"]: p for p in predictor["graph"]["parameters"]}
    assert parameters["business_value"]["type"] == "STRING"
    assert json.loads(parameters["business_value"]["value"]) == {
        "false_negative": 0.0,
        "false_positive": -15.0,
        "true_negative": 0.0,
        "true_positive": 120.0,
    }
    monitor = yaml.safe_load(with_value["rendered/production/podmonitor.yaml"])
    assert monitor["spec"]["podMetricsEndpoints"][0]["interval"] == "30s"
    (without,) = _predictors(_render(STATES["stable"]), "production")
    assert "business_value" not in {p["name"] for p in without["graph"]["parameters"]}


def test_rendering_is_deterministic() -> None:
    assert _render(STATES["canary-25"]) == _render(STATES["canary-25"])


def test_params_reach_the_manifests() -> None:
    deploy = DEPLOY.model_copy(
        update={
            "image": "registry.example/serving@sha256:" + "a" * 64,
            "storage_secret": "s3-creds",
        }
    )
    deployment = yaml.safe_load(
        _render(STATES["stable"], deploy)["rendered/production/seldondeployment.yaml"]
    )
    spec = deployment["spec"]["predictors"][0]["componentSpecs"][0]
    assert spec["spec"]["containers"][0]["image"] == deploy.image
    assert spec["spec"]["initContainers"][0]["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert spec["hpaSpec"]["minReplicas"] == 2
    assert spec["hpaSpec"]["maxReplicas"] == 6
    assert deployment["metadata"]["namespace"] == "churn-production"


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_argo_cd_diffs_server_side_and_ignores_no_path(environment: str) -> None:
    application = yaml.safe_load(_render(STATES["stable"])[f"argocd/{environment}.yaml"])
    options = application["metadata"]["annotations"]["argocd.argoproj.io/compare-options"]
    assert "ServerSideDiff=true" in options.split(",")
    assert "ignoreDifferences" not in application["spec"], "ignored paths would hide drift"


def _pod_labels(deployment: dict, predictor: dict) -> dict[str, str]:
    """The labels the v1.17 operator gives a predictor's pods (createDeploymentWithoutEngine):
    seldon-deployment-id (the SeldonDeployment's name), the predictor's labels, and those of
    its componentSpecs metadata."""
    return {
        "seldon-deployment-id": deployment["metadata"]["name"],
        **predictor.get("labels", {}),
        **predictor["componentSpecs"][0]["metadata"]["labels"],
    }


@pytest.mark.parametrize(("state", "tracks"), [("stable", 1), ("canary-25", 2), ("shadow", 2)])
def test_each_track_has_a_budget_that_lets_one_of_its_pods_go(state: str, tracks: int) -> None:
    files = _render(STATES[state])
    deployment = yaml.safe_load(files["rendered/production/seldondeployment.yaml"])
    budgets = list(yaml.safe_load_all(files["rendered/production/poddisruptionbudget.yaml"]))
    predictors = deployment["spec"]["predictors"]
    assert len(budgets) == len(predictors) == tracks
    for budget, predictor in zip(budgets, predictors, strict=True):
        assert budget["metadata"]["name"] == f"churn-{predictor['name']}"
        assert budget["spec"]["maxUnavailable"] == 1, "a one-replica track can still be drained"
        assert "minAvailable" not in budget["spec"]
        selector = budget["spec"]["selector"]["matchLabels"]
        selected = [
            p["name"] for p in predictors if selector.items() <= _pod_labels(deployment, p).items()
        ]
        assert selected == [predictor["name"]], "the budget selects its track's pods, only them"


def _policy(files: dict[str, str], environment: str) -> dict:
    policy: dict = yaml.safe_load(files[f"rendered/{environment}/networkpolicy.yaml"])
    return policy


def _rules(policy: dict) -> list[tuple[set[str], set[int]]]:
    """Each ingress rule as (namespaces it admits, TCP ports it opens)."""
    rules = []
    for rule in policy["spec"]["ingress"]:
        namespaces = {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for peer in rule["from"]
        }
        assert {port["protocol"] for port in rule["ports"]} == {"TCP"}
        rules.append((namespaces, {port["port"] for port in rule["ports"]}))
    return rules


@pytest.mark.parametrize("state", sorted(STATES))
def test_the_network_policy_admits_only_predictions_and_metrics(state: str) -> None:
    files = _render(STATES[state])
    for environment in ("staging", "production"):
        policy = _policy(files, environment)
        assert policy["spec"]["policyTypes"] == ["Ingress"], "egress stays open"
        assert _rules(policy) == [
            ({"istio-system"}, {8000, 5001}),  # the executor's REST and gRPC ports
            ({"monitoring"}, {8000, 6000}),  # its metrics (on 8000) and the model's
        ]
        deployment = yaml.safe_load(files[f"rendered/{environment}/seldondeployment.yaml"])
        selector = policy["spec"]["podSelector"]["matchLabels"]
        for predictor in deployment["spec"]["predictors"]:
            assert selector.items() <= _pod_labels(deployment, predictor).items()


def test_every_track_declares_the_metrics_port_that_the_policy_and_scrapers_use() -> None:
    files = _render(STATES["canary-25"])
    admitted = _rules(_policy(files, "production"))[1][1]
    for predictor in _predictors(files, "production"):
        spec = predictor["componentSpecs"][0]
        ports = {p["name"]: p for p in spec["spec"]["containers"][0]["ports"]}
        assert ports["metrics"] == {"name": "metrics", "containerPort": 6000, "protocol": "TCP"}
        assert ports["http"]["containerPort"] == 9000
        assert ports["metrics"]["containerPort"] in admitted
        annotation = spec["metadata"]["annotations"]["prometheus.io/port"]
        assert annotation == "6000", f"{predictor['name']} is scraped where it serves"


def test_the_policy_admits_the_namespaces_of_params() -> None:
    deploy = DEPLOY.model_copy(
        update={
            "network_policy": NetworkPolicyParams(
                ingress_namespaces=("ambassador", "churn-clients"),
                prometheus_namespaces=("observability",),
            )
        }
    )
    rules = _rules(_policy(_render(STATES["stable"], deploy), "staging"))
    assert [namespaces for namespaces, _ in rules] == [
        {"ambassador", "churn-clients"},
        {"observability"},
    ]


def _pod_specs(files: dict[str, str], environment: str) -> list[dict]:
    return [p["componentSpecs"][0]["spec"] for p in _predictors(files, environment)]


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_every_container_runs_as_non_root_read_only_without_privileges(environment: str) -> None:
    for pod in _pod_specs(_render(STATES["canary-25"]), environment):
        containers = pod["initContainers"] + pod["containers"]
        assert [c["name"] for c in containers] == ["model-initializer", "classifier"]
        for container in containers:
            assert container["securityContext"] == HARDENED, container["name"]
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert [m["name"] for m in tmp] == ["tmp"], f"{container['name']} has scratch space"
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        }


def test_the_uid_is_the_serving_images_user() -> None:
    dockerfile = (REPO_ROOT / "serving" / "Dockerfile").read_text()
    assert f"--uid {DEPLOY.run_as_user} " in dockerfile
    assert f"\nUSER {DEPLOY.run_as_user}\n" in dockerfile


def test_the_initializer_gets_the_requests_limits_and_uid_of_params() -> None:
    deploy = DEPLOY.model_copy(
        update={
            "storage_initializer_resources": ResourcesParams(
                cpu="50m", memory="64Mi", cpu_limit="2", memory_limit="512Mi"
            ),
            "run_as_user": 2000,
            "run_as_group": 3000,
        }
    )
    pod = _pod_specs(_render(STATES["stable"], deploy), "staging")[0]
    initializer = pod["initContainers"][0]
    assert initializer["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "2", "memory": "512Mi"},
    }
    for container in (initializer, pod["containers"][0]):
        assert container["securityContext"]["runAsUser"] == 2000
        assert container["securityContext"]["runAsGroup"] == 3000


def test_a_slow_model_load_is_guarded_by_a_startup_probe_and_every_probe_times_out() -> None:
    classifier = _pod_specs(_render(STATES["stable"]), "production")[0]["containers"][0]
    startup = classifier["startupProbe"]
    assert startup["httpGet"] == {"path": "/health/status", "port": 9000}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, "5 minutes to load"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert 1 < classifier[probe]["timeoutSeconds"] <= classifier[probe]["periodSeconds"]
        assert "initialDelaySeconds" not in classifier[probe], "the startup probe gates them"


def test_a_value_missing_from_the_context_is_an_error_not_an_empty_string(tmp_path: Path) -> None:
    for template in TEMPLATES.iterdir():
        shutil.copy(template, tmp_path / template.name)
    path = tmp_path / "seldondeployment.yaml.j2"
    path.write_text(path.read_text().replace("{{ deploy.name }}", "{{ deploy.nmae }}", 1))
    with pytest.raises(jinja2.UndefinedError, match="nmae"):
        render(tmp_path, DEPLOY, STATES["stable"], threshold=0.5)


def test_the_request_log_reaches_the_server_only_when_sampled() -> None:
    logged = render(
        TEMPLATES,
        DEPLOY,
        STATES["stable"],
        threshold=0.5,
        monitoring=MonitoringParams(request_log=RequestLogParams(sample_rate=0.05)),
    )
    (predictor,) = _predictors(logged, "production")
    parameters = {p["name"]: p for p in predictor["graph"]["parameters"]}
    assert parameters["request_log"] == {"name": "request_log", "type": "STRING", "value": "stdout"}
    assert parameters["request_log_sample_rate"]["type"] == "FLOAT"
    assert float(parameters["request_log_sample_rate"]["value"]) == 0.05
    (without,) = _predictors(_render(STATES["stable"]), "production")
    assert "request_log" not in {p["name"] for p in without["graph"]["parameters"]}


def test_an_experiment_runs_every_variant_in_each_stable_pod_routed_by_unit() -> None:
    predictors = _predictors(_render(STATES["experiment"]), "production")
    assert [(p["name"], p["traffic"]) for p in predictors] == [("stable", 100)]
    pod = predictors[0]["componentSpecs"][0]["spec"]
    downloads = {c["name"]: c["args"] for c in pod["initContainers"]}
    assert downloads == {
        "model-initializer-stable": [V1.model_uri, "/mnt/models/stable"],
        "model-initializer-b": [V2.model_uri, "/mnt/models/b"],
    }
    parameters = {p["name"]: p["value"] for p in predictors[0]["graph"]["parameters"]}
    served = parse_experiment(parameters["experiment"])
    assert (served.name, served.salt, served.unit) == ("offer-v2", "offer-v2", "customer_id")
    assert [(v.name, v.model_hash, v.directory, v.share) for v in served.variants] == [
        ("stable", V1.model_hash, "/mnt/models/stable", 60),
        ("b", V2.model_hash, "/mnt/models/b", 40),
    ]
    assert parameters["model_uri"] == "/mnt/models/stable"
    assert parameters["model_version"] == V1.version, "stable's telemetry and probes unchanged"
    staging = _predictors(_render(STATES["experiment"]), "staging")
    assert "experiment" not in {p["name"] for p in staging[0]["graph"]["parameters"]}


def test_concluding_an_experiment_renders_the_winner_alone() -> None:
    releases = dict(STATES["experiment"])
    releases["production"] = conclude_experiment(releases["production"], "b", change=change())
    predictors = _predictors(_render(releases), "production")
    assert [(p["name"], p["annotations"]["modelops.io/model-version"]) for p in predictors] == [
        ("stable", V2.version)
    ]
    assert "experiment" not in {p["name"] for p in predictors[0]["graph"]["parameters"]}

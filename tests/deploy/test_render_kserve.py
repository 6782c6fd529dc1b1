"""Rendering on KServe (`target: kserve`): what the InferenceService must hold, and what it refuses.

The same release states as on Seldon (tests/deploy/states.py) render to an InferenceService in
Standard mode: the stable predictor, and during a canary one `spec.canary` entry, each a custom
predictor running the serving image with the Seldon predictor's hardening, probes, ports and
parameters (the model's hash among them), selected by the same PodMonitor, NetworkPolicy and
budgets through the label KServe gives its pods. A shadow cannot be rendered: KServe cannot
mirror requests. KServe's own admission rules: test_validate.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from modelops_contract import FEEDBACK_KEY_ENV, PARAMETERS_ENV
from modelops_contract.experiment import parse_experiment

from modelops.deploy.platforms import KSERVE, PLATFORMS
from modelops.errors import DeployError
from modelops.params import RealtimeEnvironmentParams
from modelops.releases import state
from modelops.releases.experiment import conclude_experiment
from tests.deploy.states import STATES, STEPS, V1, V2, deploy_params, render_state
from tests.deploy.support import HARDENED, change

ISVC = "rendered/{}/inferenceservice.yaml"


def _service(name: str | dict, environment: str = "production") -> dict[str, Any]:
    """The InferenceService a state (by name, or releases) renders for `environment`."""
    releases = STATES[name] if isinstance(name, str) else name
    files = render_state(releases, "kserve")
    loaded: dict[str, Any] = yaml.safe_load(files[ISVC.format(environment)])
    return loaded


def _tracks(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each predictor by its track: the stable one, then each canary entry's."""
    spec = service["spec"]
    tracks = {"stable": spec["predictor"]}
    for canary in spec.get("canary", []):
        tracks[canary["predictor"]["labels"]["modelops.io/track"]] = canary["predictor"]
    return tracks


def _env(predictor: dict[str, Any]) -> dict[str, Any]:
    (container,) = predictor["containers"]
    return {variable["name"]: variable for variable in container["env"]}


def _parameters(predictor: dict[str, Any]) -> list[dict[str, str]]:
    parameters: list[dict[str, str]] = json.loads(_env(predictor)[PARAMETERS_ENV]["value"])
    return parameters


def _pod_labels(service: dict[str, Any], predictor: dict[str, Any]) -> dict[str, str]:
    """The labels KServe v0.20 gives a predictor's pods (`buildObjectMeta`): the
    InferenceService's labels, the predictor's, then its own two."""
    return {
        **service["metadata"]["labels"],
        **predictor.get("labels", {}),
        "serving.kserve.io/inferenceservice": service["metadata"]["name"],
        "component": "predictor",
    }


def test_standard_mode_with_a_custom_predictor_running_the_serving_image() -> None:
    service = _service("stable")
    assert (service["apiVersion"], service["kind"]) == (
        "serving.kserve.io/v1beta1",
        "InferenceService",
    )
    annotations = service["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "Standard"
    predictor = service["spec"]["predictor"]
    assert "canary" not in service["spec"], "no canary runs: nothing beside stable"
    (container,) = predictor["containers"]
    assert (container["name"], container["image"]) == (KSERVE.container, deploy_params().image)
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [
        ("http", 9000),
        ("metrics", 6000),
    ], "KServe's Service sends predictions to the first port"
    assert _env(predictor)[KSERVE.storage_uri_env]["value"] == V1.model_uri
    (initializer,) = predictor["initContainers"]
    assert initializer["name"] == KSERVE.storage_initializer, "so KServe injects none of its own"
    assert initializer["args"] == [V1.model_uri, "/mnt/models"]


def test_during_a_canary_it_is_a_spec_canary_entry_with_its_share_and_fixed_replicas() -> None:
    service = _service("canary-25")
    (canary,) = service["spec"]["canary"]
    assert canary["trafficPercent"] == 25
    predictor = canary["predictor"]
    assert predictor["name"] == KSERVE.canary
    production = deploy_params("kserve").environments["production"]
    assert isinstance(production, RealtimeEnvironmentParams)
    assert predictor["minReplicas"] == production.canary_replicas
    assert not {"maxReplicas", "scaleMetric", "scaleTarget", "autoScaling"} & set(predictor)
    stable = service["spec"]["predictor"]
    # KServe takes the canary's replicas out of the stable floor: it is raised by them first.
    assert stable["minReplicas"] - predictor["minReplicas"] == production.autoscaling.min_replicas
    assert stable["maxReplicas"] == production.autoscaling.max_replicas
    assert (stable["scaleMetric"], stable["scaleTarget"]) == ("cpu", 70)
    uris = [_env(p)[KSERVE.storage_uri_env]["value"] for p in (stable, predictor)]
    assert uris == [V1.model_uri, V2.model_uri]
    assert [p["initContainers"][0]["args"][0] for p in (stable, predictor)] == uris
    hashes = [p["annotations"]["modelops.io/model-hash"] for p in (stable, predictor)]
    assert hashes == [V1.model_hash, V2.model_hash]


def test_each_predictor_gets_the_parameters_the_seldon_graph_gives_its_server() -> None:
    """The same list on both targets, the model's hash among them, in the variable seldon-core
    reads it from: the server starts, and checks its model, the same way on either."""
    for name in ("stable", "canary-25", "experiment"):
        seldon = yaml.safe_load(
            render_state(STATES[name], "seldon")["rendered/production/seldondeployment.yaml"]
        )
        graphs = [p["graph"]["parameters"] for p in seldon["spec"]["predictors"]]
        tracks = _tracks(_service(name))
        assert [_parameters(p) for p in tracks.values()] == graphs, name
    canary = _tracks(_service("canary-25"))["canary"]
    assert {p["name"]: p["value"] for p in _parameters(canary)}["model_hash"] == V2.model_hash


def test_the_server_listens_where_the_container_declares_its_ports() -> None:
    for predictor in _tracks(_service("canary-25")).values():
        env = _env(predictor)
        ports = {p["name"]: p["containerPort"] for p in predictor["containers"][0]["ports"]}
        assert int(env["PREDICTIVE_UNIT_HTTP_SERVICE_PORT"]["value"]) == ports["http"]
        assert int(env["PREDICTIVE_UNIT_METRICS_SERVICE_PORT"]["value"]) == ports["metrics"]
        assert env["MODEL_URI"]["value"] == "/mnt/models"
        assert env[FEEDBACK_KEY_ENV] == {
            "name": FEEDBACK_KEY_ENV,
            "valueFrom": {"secretKeyRef": {"name": "churn-feedback", "key": "key"}},
        }


@pytest.mark.parametrize("name", ["stable", "canary-25", "experiment"])
def test_every_container_is_hardened_as_on_seldon(name: str) -> None:
    for environment in ("staging", "production"):
        for track, predictor in _tracks(_service(name, environment)).items():
            for container in predictor["initContainers"] + predictor["containers"]:
                assert container["securityContext"] == HARDENED, (track, container["name"])
                mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                assert mounts["/tmp"] == "tmp", container["name"]
            assert predictor["automountServiceAccountToken"] is False
            assert predictor["securityContext"] == {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            }
            assert {"name": "tmp", "emptyDir": {}} in predictor["volumes"]


def test_the_probes_are_the_seldon_predictors_probes() -> None:
    seldon = yaml.safe_load(
        render_state(STATES["canary-25"], "seldon")["rendered/production/seldondeployment.yaml"]
    )
    expected = seldon["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]
    for predictor in _tracks(_service("canary-25")).values():
        container = predictor["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe] == expected[probe], probe


def test_the_monitor_budgets_and_policy_select_each_tracks_pods_by_the_label_kserve_sets() -> None:
    files = render_state(STATES["canary-25"], "kserve")
    service = yaml.safe_load(files[ISVC.format("production")])
    pods = {track: _pod_labels(service, p) for track, p in _tracks(service).items()}
    monitor = yaml.safe_load(files["rendered/production/podmonitor.yaml"])
    policy = yaml.safe_load(files["rendered/production/networkpolicy.yaml"])
    for selector in (monitor["spec"]["selector"], policy["spec"]["podSelector"]):
        assert all(selector["matchLabels"].items() <= labels.items() for labels in pods.values())
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/prometheus")
    budgets = list(yaml.safe_load_all(files["rendered/production/poddisruptionbudget.yaml"]))
    for budget, track in zip(budgets, ["stable", "canary"], strict=True):
        selected = [
            t
            for t, labels in pods.items()
            if budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert selected == [track], "each budget selects its own track's pods only"


def test_the_network_policy_admits_predictions_on_the_models_port_and_metrics() -> None:
    policy = yaml.safe_load(
        render_state(STATES["stable"], "kserve")["rendered/staging/networkpolicy.yaml"]
    )
    rules = [
        (
            {
                p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                for p in rule["from"]
            },
            [port["port"] for port in rule["ports"]],
        )
        for rule in policy["spec"]["ingress"]
    ]
    assert rules == [({"istio-system"}, [9000]), ({"monitoring"}, [6000])]
    assert PLATFORMS["kserve"].prediction_ports == (9000,), (
        "no executor: the gateway calls the model"
    )


def test_the_rules_and_dashboards_are_the_same_on_both_targets() -> None:
    """The series are the same, so the judge, the monitor and the alerts read them unchanged."""
    seldon, kserve = (render_state(STATES["canary-25"], target) for target in ("seldon", "kserve"))
    for path in seldon:
        if path.endswith(("prometheusrule.yaml", "dashboards.yaml", ".rules.yaml")):
            assert kserve[path] == seldon[path], path
    assert kserve["argocd/production.yaml"] == seldon["argocd/production.yaml"]


def test_argo_cd_diffs_server_side_and_the_manifest_holds_what_kserves_defaulter_sets() -> None:
    """KServe v0.20's InferenceService defaulter (sideEffects: None, so in the server-side
    diff) names a lone container kserve-container, fills missing requests and limits, rewrites
    RawDeployment to Standard and may turn off the service-account token: the manifest already
    says all of that, so a synced environment shows no difference and no path is ignored."""
    files = render_state(STATES["canary-25"], "kserve")
    application = yaml.safe_load(files["argocd/production.yaml"])
    options = application["metadata"]["annotations"]["argocd.argoproj.io/compare-options"]
    assert "ServerSideDiff=true" in options.split(",")
    assert "ignoreDifferences" not in application["spec"]
    service = yaml.safe_load(files[ISVC.format("production")])
    assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    for predictor in _tracks(service).values():
        (container,) = predictor["containers"]
        assert container["name"] == KSERVE.container
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}
        assert predictor["automountServiceAccountToken"] is False


def test_promotes_move_the_canary_and_the_last_one_puts_its_model_in_the_stable_predictor() -> None:
    production = STATES["canary-25"]["production"]
    moved = state.promote(production, steps=STEPS, change=change())
    assert (
        _service({**STATES["canary-25"], "production": moved})["spec"]["canary"][0][
            "trafficPercent"
        ]
        == 50
    )
    completed = state.promote(moved, steps=STEPS, change=change())
    service = _service({**STATES["canary-25"], "production": completed})
    assert "canary" not in service["spec"], "KServe deletes the canary's Deployment itself"
    stable = service["spec"]["predictor"]
    assert _env(stable)[KSERVE.storage_uri_env]["value"] == V2.model_uri
    production_params = deploy_params("kserve").environments["production"]
    assert isinstance(production_params, RealtimeEnvironmentParams)
    assert stable["minReplicas"] == production_params.autoscaling.min_replicas, "floor restored"


def test_a_rollback_removes_the_canary_entry_and_renders_stable_again() -> None:
    rolled_back = state.rollback(STATES["canary-25"]["production"], change=change())
    rendered = render_state({**STATES["canary-25"], "production": rolled_back}, "kserve")
    assert rendered == render_state(STATES["stable"], "kserve"), "the same as before the canary"


def test_a_restore_renders_the_earlier_model_alone() -> None:
    completed = STATES["canary-25"]["production"]
    for _ in range(2):
        completed = state.promote(completed, steps=STEPS, change=change())
    restored = state.restore(completed, V1.version, change=change())
    assert isinstance(restored, type(completed))
    service = _service({**STATES["canary-25"], "production": restored})
    assert _env(service["spec"]["predictor"])[KSERVE.storage_uri_env]["value"] == V1.model_uri


def test_an_experiment_runs_every_variant_in_each_stable_pod() -> None:
    service = _service("experiment")
    assert "canary" not in service["spec"], "one predictor: the server splits by unit"
    predictor = service["spec"]["predictor"]
    downloads = {c["name"]: c["args"] for c in predictor["initContainers"]}
    assert downloads == {
        "model-initializer-stable": [V1.model_uri, "/mnt/models/stable"],
        "model-initializer-b": [V2.model_uri, "/mnt/models/b"],
    }
    assert KSERVE.storage_uri_env not in _env(predictor), "no STORAGE_URI: KServe injects nothing"
    parameters = {p["name"]: p["value"] for p in _parameters(predictor)}
    served = parse_experiment(parameters["experiment"])
    assert [(v.name, v.model_hash, v.directory, v.share) for v in served.variants] == [
        ("stable", V1.model_hash, "/mnt/models/stable", 60),
        ("b", V2.model_hash, "/mnt/models/b", 40),
    ]
    concluded = conclude_experiment(STATES["experiment"]["production"], "b", change=change())
    winner = _service({**STATES["experiment"], "production": concluded})["spec"]["predictor"]
    assert _env(winner)[KSERVE.storage_uri_env]["value"] == V2.model_uri


def test_a_running_shadow_is_refused_with_why_and_what_to_do() -> None:
    # Given production running a shadow (started on Seldon), when its environment is switched to
    # KServe, then rendering refuses: KServe cannot mirror; end the shadow first.
    with pytest.raises(DeployError) as refused:
        render_state(STATES["shadow"], "kserve")
    message = str(refused.value)
    assert f"shadow {V2.version} (mirrored, 0%)" in message, "what runs"
    assert "deploy.environments.production.target is kserve" in message, "which key"
    assert "no way to mirror requests" in message
    assert "modelops release promote --env production" in message
    assert "modelops release rollback --env production" in message
    # Promoting it makes an ordinary canary, which renders.
    promoted = state.promote(STATES["shadow"]["production"], steps=STEPS, change=change())
    (canary,) = _service({**STATES["shadow"], "production": promoted})["spec"]["canary"]
    assert canary["trafficPercent"] == STEPS[0]


def test_a_canary_with_more_replicas_than_the_stable_floor_still_renders_valid_bounds() -> None:
    deploy = deploy_params("kserve")
    production = deploy.environments["production"]
    assert isinstance(production, RealtimeEnvironmentParams)
    bounds = production.autoscaling.model_copy(update={"min_replicas": 2, "max_replicas": 2})
    wide = production.model_copy(update={"canary_replicas": 3, "autoscaling": bounds})
    deploy = deploy.model_copy(update={"environments": {**deploy.environments, "production": wide}})
    files = render_state(STATES["canary-25"], deploy=deploy)
    service = yaml.safe_load(files[ISVC.format("production")])
    stable, canary = service["spec"]["predictor"], service["spec"]["canary"][0]["predictor"]
    assert (stable["minReplicas"], stable["maxReplicas"], canary["minReplicas"]) == (5, 5, 3)

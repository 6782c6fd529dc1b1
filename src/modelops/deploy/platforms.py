"""The platforms a real-time environment runs on (`target`), as the templates see them.

One home for each platform's facts: the template that renders the model pods, the label by
which the other objects (PodDisruptionBudget, NetworkPolicy, PodMonitor) find every pod of every
track, the ports predictions and metrics arrive on, and whether it can mirror requests to a
shadow. The model server is the same image on both, serving on the same ports.

KServe's names below are read from its v0.20.0 source (`pkg/constants/constants.go`,
`pkg/apis/serving/v1beta1/inference_service_validation.go`,
`pkg/webhook/admission/pod/storage_initializer_injector.go`); runbooks/deploy.md says what
each one does in a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelops.params import Target


@dataclass(frozen=True)
class SeldonPorts:
    """The ports of a model pod, one home for the templates.

    The Seldon v1.17 operator's executor (container seldon-container-engine) serves REST on
    8000, which is also its `metrics` port, and gRPC on 5001
    (operator/controllers/seldondeployment_engine.go). The model container serves on 9000,
    reached by the executor over localhost (on KServe, by the ingress directly). Its `metrics`
    port is declared by our templates, 6000 in every track: undeclared, the Seldon operator
    numbers them 6000, 6001, ... across predictors (defaults.go), so the canary's would move.
    """

    executor_http: int = 8000
    executor_grpc: int = 5001
    model_http: int = 9000
    model_metrics: int = 6000


SELDON_PORTS = SeldonPorts()


@dataclass(frozen=True)
class Platform:
    """What the shared templates need to know about the platform of an environment.

    `pod_label`: a label the platform sets to the deployment's name on every pod it makes, of
    every track (Seldon's operator: `seldon-deployment-id`; KServe's controller:
    `serving.kserve.io/inferenceservice`). `prediction_ports`: where the ingress gateway sends
    predictions; `metrics_ports`: where Prometheus scrapes. `mirrors`: whether it can send a
    shadow a copy of every request.
    """

    target: Target
    workload: str
    """The template of the model pods' object (its output file drops `.j2`)."""
    model_container: str
    """The model server's container in each pod."""
    pod_label: str
    prediction_ports: tuple[int, ...]
    metrics_ports: tuple[int, ...]
    mirrors: bool
    own_scaled_object: bool
    """With KEDA, the ScaledObject is ours to render (KServe, told its autoscaler is
    `external`); Seldon's operator makes it from each predictor's `kedaSpec` instead, since an
    autoscaler it did not make would fight it over the Deployment's replicas."""
    canary_out_of_stable_floor: bool
    """During a canary the platform runs the canary's replicas out of the stable predictor's
    `minReplicas` (KServe v0.20: `minReplicas` minus the canaries', at least 1, in
    `reconcileRawDeployment`); the Seldon operator gives each predictor its own."""


@dataclass(frozen=True)
class KServeNames:
    """Names KServe v0.20 gives a meaning to, and the name of our canary predictor."""

    deployment_mode: str = "Standard"
    """`serving.kserve.io/deploymentMode`: plain Deployments, Services and an HPA (the mode
    called RawDeployment before v0.19); the only mode that accepts `spec.canary`."""
    container: str = "kserve-container"
    """The predictor container KServe finds the model server (and STORAGE_URI) in."""
    storage_initializer: str = "storage-initializer"
    """An init container of this name means the model is already provided for: KServe then
    injects none of its own (whose container would not be hardened like ours)."""
    storage_uri_env: str = "STORAGE_URI"
    """Where a custom predictor names its model; the v0.20 webhook refuses `spec.canary`
    beside a stable predictor without one."""
    canary: str = "canary"
    """Our canary predictor's name: KServe runs it as Deployment `<name>-canary-predictor`."""


KSERVE = KServeNames()
PLATFORMS: Mapping[Target, Platform] = {
    "seldon": Platform(
        target="seldon",
        workload="seldondeployment.yaml.j2",
        model_container="classifier",
        pod_label="seldon-deployment-id",
        prediction_ports=(SELDON_PORTS.executor_http, SELDON_PORTS.executor_grpc),
        metrics_ports=(SELDON_PORTS.executor_http, SELDON_PORTS.model_metrics),
        mirrors=True,
        own_scaled_object=False,
        canary_out_of_stable_floor=False,
    ),
    "kserve": Platform(
        target="kserve",
        workload="inferenceservice.yaml.j2",
        model_container=KSERVE.container,
        pod_label="serving.kserve.io/inferenceservice",
        prediction_ports=(SELDON_PORTS.model_http,),
        metrics_ports=(SELDON_PORTS.model_metrics,),
        mirrors=False,
        own_scaled_object=True,
        canary_out_of_stable_floor=True,
    ),
}

"""Section `deploy`: what is deployed where, how big, and where published models live."""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Literal, Self, TypeAlias

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from modelops.errors import ParamsError
from modelops.params.base import DNS_LABEL, Frozen, ResourcesParams
from modelops.params.batch import BatchEnvironmentParams, batch_name_problem
from modelops.params.fleet import EdgeEnvironmentParams


class AutoscalingParams(Frozen):
    """Horizontal autoscaling of each predictor: on CPU utilisation, or on the request rate per
    replica (KEDA) with CPU beside it; and, if asked, a VerticalPodAutoscaler that only
    recommends (runbooks/deploy.md#autoscaling says which to choose)."""

    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(3, ge=1)
    target_cpu_utilization: int = Field(70, ge=1, le=100)
    requests_per_replica: float | None = Field(
        None,
        gt=0,
        description="Requests per second one replica should take, from `modelops capacity` "
        "(its proposal's target, headroom included). Set: KEDA scales each track on its "
        "request rate per replica, read from Prometheus, with CPU as a second trigger (needs "
        "KEDA in the cluster; on Seldon, the operator installed with KEDA enabled). null: the "
        "CPU autoscaler alone.",
    )
    prometheus_url: str = Field(
        "http://prometheus-operated.monitoring.svc:9090",
        pattern=r"^https?://\S+$",
        description="The in-cluster Prometheus KEDA reads the request rate from (the "
        "Prometheus Operator's service by default).",
    )
    recommend_resources: bool = Field(
        False,
        description="true: a VerticalPodAutoscaler per track in recommendation-only "
        "mode (updateMode Off): it suggests requests and never evicts a pod, so it cannot "
        "fight the horizontal autoscaler over CPU. Needs the VPA recommender in the cluster.",
    )

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        return self


Target: TypeAlias = Literal["seldon", "kserve"]
"""The platform that serves a real-time environment (runbooks/deploy.md#choose-the-platform)."""
KSERVE_CANNOT_MIRROR = (
    "a KServe InferenceService (v1beta1, v0.20) has no way to mirror requests, and a canary at "
    "trafficPercent 0 gets no requests at all, so a shadow would have nothing to be judged on"
)
"""Why a KServe environment has no shadow stage (the refusals add what to do instead)."""


class RealtimeEnvironmentParams(Frozen):
    """A real-time deployment target: where, on which platform, how big, and how a new model
    reaches it."""

    namespace: str = Field(pattern=DNS_LABEL)
    strategy: Literal["direct", "canary"] = Field(
        description="`direct`: a new model takes all traffic at once; `canary`: it starts at "
        "the first of `canary_steps` and `modelops release promote` moves it through them."
    )
    target: Target = Field(
        "seldon",
        description="The platform serving the model: `seldon` renders a SeldonDeployment "
        "(Seldon Core v1; 1.17.1 is its last Apache-2.0 release, later ones are under the "
        "Business Source License), `kserve` an InferenceService in Standard mode (KServe, "
        "Apache-2.0, a CNCF project; v0.20 or later, and no shadow stage: it cannot mirror "
        "requests). The same server image, telemetry and release commands on both.",
    )
    canary_steps: tuple[int, ...] = Field(
        (10, 25, 50, 100),
        description="Canary traffic percentages, increasing; reaching 100 makes it stable.",
    )
    canary_replicas: int = Field(1, ge=1)
    shadow_first: bool = Field(
        False,
        description="With strategy `canary` and target `seldon`: a new model first runs as a "
        "Seldon shadow predictor on mirrored traffic (no user sees its answers) and is judged "
        "against stable before it takes real traffic; the first `modelops release promote` "
        "makes it a canary at the first of `canary_steps`.",
    )
    resources: ResourcesParams = ResourcesParams()
    autoscaling: AutoscalingParams = AutoscalingParams()
    # Removed (each track has its own budget now); declared only so that an old params.yaml
    # gets a precise error instead of "unknown key". Not in the schema, never dumped.
    min_available: SkipJsonSchema[None] = Field(None, exclude=True)

    @field_validator("min_available", mode="before")
    @classmethod
    def _min_available_was_removed(cls, value: object) -> None:
        raise ValueError(
            "removed: each track (stable, and canary while one runs) now gets its own "
            "PodDisruptionBudget with maxUnavailable 1, so no budget blocks a node drain; "
            "delete this key"
        )

    @field_validator("canary_steps")
    @classmethod
    def _steps_increase_to_at_most_100(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if not steps:
            raise ValueError("give at least one canary step, e.g. [10, 25, 50, 100]")
        if any(not 0 < step <= 100 for step in steps):
            raise ValueError(f"each canary step is a percentage from 1 to 100, got {list(steps)}")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(f"canary steps must increase, got {list(steps)}")
        return steps

    @field_validator("shadow_first")
    @classmethod
    def _shadow_needs_a_canary(cls, shadow_first: bool, info: ValidationInfo) -> bool:
        # `strategy` and `target` are declared first, so they are validated (or failed) by now.
        strategy = info.data.get("strategy")
        if shadow_first and strategy is not None and strategy != "canary":
            raise ValueError(
                f"shadow_first needs strategy canary, this environment's is {strategy}: a new "
                "model then takes all traffic at once, with no stage to shadow before. Set "
                "strategy: canary, or shadow_first: false"
            )
        if shadow_first and info.data.get("target") == "kserve":
            raise ValueError(
                f"target kserve cannot run a shadow: {KSERVE_CANNOT_MIRROR}. Set shadow_first: "
                "false (the new model then starts as a canary at the first of canary_steps: "
                "keep that step small), or target: seldon, whose shadow predictor gets a copy "
                "of every request"
            )
        return shadow_first


EnvironmentParams: TypeAlias = Annotated[
    RealtimeEnvironmentParams | BatchEnvironmentParams | EdgeEnvironmentParams,
    Field(discriminator="strategy"),
]
"""One environment, of the kind its `strategy` names: real-time (direct, canary), batch or
edge."""

_Namespace: TypeAlias = Annotated[str, Field(pattern=DNS_LABEL)]


class NetworkPolicyParams(Frozen):
    """Who may reach the model pods (their NetworkPolicy); everything else is refused."""

    ingress_namespaces: tuple[_Namespace, ...] = Field(
        ("istio-system",),
        min_length=1,
        description="Namespaces of the ingress gateway that sends predictions (on Seldon to "
        "the executor: REST 8000, gRPC 5001; on KServe to the model: REST 9000), e.g. "
        "istio-system, ambassador, or your Gateway API implementation's.",
    )
    prometheus_namespaces: tuple[_Namespace, ...] = Field(
        ("monitoring",),
        min_length=1,
        description="Namespaces of the Prometheus that scrapes the metrics (model 6000; on "
        "Seldon the executor's 8000 too).",
    )


def _realtime_pair() -> dict[str, EnvironmentParams]:
    """The default environments: staging (direct) and production (canary)."""
    return {
        "staging": RealtimeEnvironmentParams(namespace="churn-staging", strategy="direct"),
        "production": RealtimeEnvironmentParams(
            namespace="churn-production",
            strategy="canary",
            autoscaling=AutoscalingParams(min_replicas=2, max_replicas=6),
        ),
    }


class DeployParams(Frozen):
    """GitOps deploys: what is deployed where, and where published models live."""

    name: str = Field(
        "churn", pattern=DNS_LABEL, description="SeldonDeployment (or InferenceService) name."
    )
    registered_model: str = Field(
        "churn", min_length=1, description="MLflow registered model (when a server is set)."
    )
    store: str = Field(
        "model-store",
        min_length=1,
        description="Where models are published, content-addressed: an object store URI "
        "(s3://bucket/prefix, gs://...) or a folder relative to the project (tries and tests).",
    )
    image: str = Field(
        "ghcr.io/your-org/modelops-serving:0.1.0",
        min_length=1,
        description="The serving image built from serving/Dockerfile (pin a tag or digest).",
    )
    storage_initializer_image: str = Field(
        "seldonio/rclone-storage-initializer:1.17.1",
        description="Init container that downloads the published model into /mnt/models.",
    )
    storage_initializer_resources: ResourcesParams = Field(
        default_factory=lambda: ResourcesParams(
            cpu="100m", memory="128Mi", cpu_limit="500m", memory_limit="256Mi"
        ),
        description="Requests and limits of the init container that downloads the model.",
    )
    run_as_user: int = Field(
        10001,
        ge=1,
        description="uid every container runs as (never root): serving/Dockerfile's USER. The "
        "storage initializer runs as it too.",
    )
    run_as_group: int = Field(10001, ge=1, description="gid every container runs as.")
    storage_secret: str | None = Field(
        None, description="Secret with the store's credentials, as env for the initializer."
    )
    feedback_secret: str = Field(
        "churn-feedback",
        pattern=DNS_LABEL,
        description="Secret (its entry `key`, 32 characters or more) in each environment's "
        "namespace holding the key that signs prediction ids: every predictor reads the same "
        "one, so any replica verifies feedback on another's answer (serving/README.md#feedback). "
        "Pods do not start until it exists.",
    )
    network_policy: NetworkPolicyParams = NetworkPolicyParams()
    repo_url: str = Field(
        "https://github.com/your-org/modelops.git",
        min_length=1,
        description="The git repository Argo CD syncs manifests/rendered/<environment> from.",
    )
    revision: str = Field("main", min_length=1)
    environments: dict[str, EnvironmentParams] = Field(default_factory=_realtime_pair)

    @field_validator("environments")
    @classmethod
    def _environment_names(
        cls, environments: dict[str, EnvironmentParams], info: ValidationInfo
    ) -> dict[str, EnvironmentParams]:
        if not environments:
            raise ValueError("declare at least one environment")
        bad = [name for name in environments if not re.fullmatch(DNS_LABEL, name)]
        if bad:
            raise ValueError(f"environment names must be DNS labels (a-z, 0-9, -): {bad}")
        for name, environment in environments.items():
            # `name` is declared before `environments`: validated (or failed) by now.
            deploy_name = info.data.get("name")
            if isinstance(environment, BatchEnvironmentParams) and deploy_name is not None:
                problem = batch_name_problem(deploy_name, name)
                if problem:
                    raise ValueError(problem)
        return environments


def canary_steps(environment: EnvironmentParams) -> tuple[int, ...]:
    """The canary's traffic steps (an edge environment's: its cohort steps, percents of the
    devices); none in a batch environment, where a new model replaces the old one at once."""
    if isinstance(environment, EdgeEnvironmentParams):
        return environment.cohort_steps
    return environment.canary_steps if isinstance(environment, RealtimeEnvironmentParams) else ()


def served_by_pods(
    environment: EnvironmentParams, *, name: str, what: str
) -> RealtimeEnvironmentParams | BatchEnvironmentParams:
    """The environment, when model pods serve it and report to Prometheus; an edge one (devices,
    no pods, no namespace) is refused with why: `what` is the command that needs the pods."""
    if isinstance(environment, EdgeEnvironmentParams):
        raise ParamsError(
            f"{name} is an edge environment: {what} reads what model pods report to "
            "Prometheus, and devices run no pods there; a fleet is rolled out with `modelops "
            "release promote|rollback` (runbooks/edge.md)"
        )
    return environment

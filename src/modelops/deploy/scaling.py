"""How each track of a real-time environment scales, computed once for both platforms' templates.

- Horizontally on CPU (the platform's own autoscaler), or, with
  `autoscaling.requests_per_replica`, with KEDA on the track's request rate per replica read
  from Prometheus, CPU staying as a second trigger (KEDA takes the larger of the two). On
  Seldon the operator makes the ScaledObject from the predictor's `kedaSpec` (an autoscaler it
  does not own would fight it over the Deployment's replicas); on KServe the InferenceService
  declares an external autoscaler and the ScaledObject is ours.
- Vertically, with `autoscaling.recommend_resources: true`: a VerticalPodAutoscaler per track that
  only recommends (updateMode Off). It must not act on CPU while an HPA scales on CPU: each
  would undo the other (runbooks/deploy.md#autoscaling).

The request rate is the server's own `modelops_requests_total` of the predict endpoint, as the
PodMonitor labels it (`namespace`, `track`), so it counts the same requests on both platforms.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelops_contract.series import ENDPOINT, NAMESPACE, PREDICT, REQUESTS, TRACK

from modelops.deploy.platforms import PLATFORMS
from modelops.errors import DeployError
from modelops.params import AutoscalingParams, Target

RATE_WINDOW = "1m"
"""The window of the request rate KEDA reads: short enough to follow a surge within a minute,
long enough that one scrape's jitter does not move replicas (scrapes every 15 to 30 s)."""
POLLING_SECONDS = 15
"""How often KEDA asks Prometheus (its default is 30 s)."""
_MAX_NAME = 63


@dataclass(frozen=True)
class Scaling:
    """One track's horizontal and vertical scaling, as its templates render it.

    `triggers`: KEDA's triggers (None: the platform's CPU autoscaler). `workload`: the
    Deployment the platform makes for the track, which KServe's ScaledObject and each
    VerticalPodAutoscaler target.
    """

    track: str
    min_replicas: int
    max_replicas: int
    workload: str
    triggers: tuple[dict[str, object], ...] | None
    vertical: bool


def request_rate_query(namespace: str, track: str) -> str:
    """PromQL: the requests per second a track's pods answer at the predict endpoint."""
    selector = f'{NAMESPACE}="{namespace}",{TRACK}="{track}",{ENDPOINT}="{PREDICT}"'
    return f"sum(rate({REQUESTS.total}{{{selector}}}[{RATE_WINDOW}]))"


def keda_triggers(
    autoscaling: AutoscalingParams, *, namespace: str, track: str
) -> tuple[dict[str, object], ...] | None:
    """The track's KEDA triggers: its request rate over `requests_per_replica` replicas (KEDA's
    AverageValue divides the query by the replicas), and CPU utilisation beside it."""
    if autoscaling.requests_per_replica is None:
        return None
    return (
        {
            "type": "prometheus",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": autoscaling.prometheus_url,
                "query": request_rate_query(namespace, track),
                "threshold": _number(autoscaling.requests_per_replica),
            },
        },
        {
            "type": "cpu",
            "metricType": "Utilization",
            "metadata": {"value": str(autoscaling.target_cpu_utilization)},
        },
    )


def workload_name(target: Target, deploy_name: str, track: str) -> str:
    """The Deployment the platform makes for a track.

    Seldon v1: `<deployment>-<predictor>-<component index>-<container names>`, and a hash
    instead when that is longer than a DNS label, which is refused here rather than guessed.
    KServe v0.20: `<name>-predictor` for the stable predictor, `<name>-<predictor>-predictor`
    for a named one (`constants.PredictorServiceName`).
    """
    if target == "kserve":
        return (
            f"{deploy_name}-predictor" if track == "stable" else f"{deploy_name}-{track}-predictor"
        )
    name = f"{deploy_name}-{track}-0-{PLATFORMS['seldon'].model_container}"
    if len(name) > _MAX_NAME:
        raise DeployError(
            f"deploy.name {deploy_name!r} is too long for a VerticalPodAutoscaler on Seldon: the "
            f"operator names the {track} Deployment by a hash when {name!r} passes "
            f"{_MAX_NAME} characters. Shorten deploy.name to at most "
            f"{_MAX_NAME - len(name) + len(deploy_name)} characters, or set "
            "autoscaling.recommend_resources: false"
        )
    return name


def scaling(
    autoscaling: AutoscalingParams,
    *,
    target: Target,
    deploy_name: str,
    namespace: str,
    track: str,
    replicas: int,
    max_replicas: int,
) -> Scaling:
    """How `track` scales between `replicas` and `max_replicas` (the bounds render gives it)."""
    vertical = autoscaling.recommend_resources
    return Scaling(
        track=track,
        min_replicas=replicas,
        max_replicas=max_replicas,
        workload=workload_name(target, deploy_name, track)
        if vertical or target == "kserve"
        else "",
        triggers=keda_triggers(autoscaling, namespace=namespace, track=track),
        vertical=vertical,
    )


def _number(value: float) -> str:
    """A threshold as KEDA parses it: `40`, not `40.0`; `12.5` as is."""
    return f"{value:g}"

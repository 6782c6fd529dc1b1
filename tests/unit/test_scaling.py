"""How a track scales (deploy/scaling.py): KEDA's triggers, the request-rate query, and the
Deployment each platform makes for a track, which KEDA and the VPA target."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelops.deploy.scaling import keda_triggers, request_rate_query, scaling, workload_name
from modelops.errors import DeployError
from modelops.params import AutoscalingParams


def test_without_a_request_target_the_platform_scales_on_cpu_alone() -> None:
    assert keda_triggers(AutoscalingParams(), namespace="ns", track="stable") is None


def test_with_a_request_target_keda_scales_on_the_tracks_rate_per_replica_and_on_cpu() -> None:
    autoscaling = AutoscalingParams(requests_per_replica=12.5, target_cpu_utilization=60)
    triggers = keda_triggers(autoscaling, namespace="churn-production", track="canary")
    assert triggers == (
        {
            "type": "prometheus",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
                "query": 'sum(rate(modelops_requests_total{namespace="churn-production",'
                'track="canary",endpoint="predict"}[1m]))',
                "threshold": "12.5",
            },
        },
        {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}},
    )
    whole = keda_triggers(AutoscalingParams(requests_per_replica=40), namespace="n", track="s")
    assert whole is not None
    metadata = whole[0]["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["threshold"] == "40", "a whole number as KEDA parses it"


def test_the_query_counts_only_predictions_of_one_track_in_one_namespace() -> None:
    query = request_rate_query("a", "stable")
    assert query.startswith("sum(rate(modelops_requests_total{")
    assert 'namespace="a"' in query
    assert 'track="stable"' in query
    assert 'endpoint="predict"' in query, "feedback calls are not load on the model"


@pytest.mark.parametrize(
    ("target", "track", "name"),
    [
        ("seldon", "stable", "churn-stable-0-classifier"),
        ("seldon", "canary", "churn-canary-0-classifier"),
        ("kserve", "stable", "churn-predictor"),
        ("kserve", "canary", "churn-canary-predictor"),
    ],
)
def test_each_platform_names_a_tracks_deployment_as_its_operator_does(target, track, name) -> None:
    assert workload_name(target, "churn", track) == name


def test_a_name_seldon_would_hash_is_refused_for_a_vpa_rather_than_guessed() -> None:
    long_name = "a" * 44
    with pytest.raises(DeployError, match="at most 43 characters") as refused:
        scaling(
            AutoscalingParams(recommend_resources=True),
            target="seldon",
            deploy_name=long_name,
            namespace="n",
            track="stable",
            replicas=1,
            max_replicas=2,
        )
    assert "autoscaling.recommend_resources: false" in str(refused.value)
    plain = scaling(
        AutoscalingParams(),
        target="seldon",
        deploy_name=long_name,
        namespace="n",
        track="stable",
        replicas=1,
        max_replicas=2,
    )
    assert plain.workload == "", "without a VPA nothing names it"
    assert not plain.vertical


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"requests_per_replica": 0}, "greater than 0"),
        ({"recommend_resources": "sometimes"}, "valid boolean"),
        ({"prometheus_url": "prometheus:9090"}, "should match pattern"),
    ],
)
def test_bad_autoscaling_params_are_refused_with_the_field(fields, message) -> None:
    with pytest.raises(ValidationError, match=message):
        AutoscalingParams(**fields)

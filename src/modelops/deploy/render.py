"""Render the manifests from `manifests/templates/*.yaml.j2`: the only module that uses Jinja2.

StrictUndefined (a missing value is an error), strings quoted as JSON (always valid YAML),
templates walked in a fixed order and no timestamps: the same params and releases give the same
bytes, so `manifests/rendered/` only changes when something real does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2

from modelops.deploy.release import ModelVersion, Release
from modelops.params import DeployParams, MonitoringParams

ENVIRONMENT_TEMPLATES = (
    "seldondeployment.yaml.j2",
    "poddisruptionbudget.yaml.j2",
    "networkpolicy.yaml.j2",
    "podmonitor.yaml.j2",
)
APPLICATION_TEMPLATE = "argocd-application.yaml.j2"


@dataclass(frozen=True)
class SeldonPorts:
    """The ports of a Seldon Core v1.17 model pod, one home for the templates.

    The operator's executor (container seldon-container-engine) serves REST on 8000, which is
    also its `metrics` port, and gRPC on 5001 (operator/controllers/seldondeployment_engine.go).
    The model container serves on 9000, reached by the executor over localhost. Its `metrics`
    port is declared by our template, 6000 in every track: undeclared, the operator numbers
    them 6000, 6001, ... across predictors (defaults.go), so the canary's would move.
    """

    executor_http: int = 8000
    executor_grpc: int = 5001
    model_http: int = 9000
    model_metrics: int = 6000


SELDON_PORTS = SeldonPorts()


@dataclass(frozen=True)
class Predictor:
    """A predictor of the SeldonDeployment as the template sees it."""

    name: str
    model: ModelVersion
    traffic: int
    replicas: int


def render(
    templates: Path,
    deploy: DeployParams,
    releases: Mapping[str, Release],
    *,
    threshold: float,
    monitoring: MonitoringParams | None = None,
) -> dict[str, str]:
    """Every manifest, by path relative to `manifests/`.

    For each environment with a release: `rendered/<env>/*.yaml` and the Argo CD Application
    `argocd/<env>.yaml` that syncs them. One without a release renders nothing yet (an
    Application pointing at an empty folder would only report errors).
    """
    engine = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    engine.filters["q"] = json.dumps
    engine.filters["compact_json"] = lambda value: json.dumps(value, sort_keys=True)
    files: dict[str, str] = {}
    for name in sorted(deploy.environments):
        environment = deploy.environments[name]
        context = {
            "deploy": deploy,
            "environment": environment,
            "environment_name": name,
            "threshold": threshold,
            "ports": SELDON_PORTS,
            "monitoring": monitoring or MonitoringParams(),
        }
        release = releases.get(name, Release(environment=name))
        if release.stable is None:
            continue
        files[f"argocd/{name}.yaml"] = engine.get_template(APPLICATION_TEMPLATE).render(context)
        context["predictors"] = _predictors(
            release, environment.autoscaling.min_replicas, environment.canary_replicas
        )
        for template in ENVIRONMENT_TEMPLATES:
            output = f"rendered/{name}/{template.removesuffix('.j2')}"
            files[output] = engine.get_template(template).render(context)
    return files


def _predictors(release: Release, stable_replicas: int, canary_replicas: int) -> list[Predictor]:
    assert release.stable is not None
    traffic = release.traffic
    predictors = [Predictor("stable", release.stable, traffic["stable"], stable_replicas)]
    if release.canary is not None:
        predictors.append(
            Predictor("canary", release.canary.model, traffic["canary"], canary_replicas)
        )
    return predictors

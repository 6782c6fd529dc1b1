"""Which of Prometheus's series are one environment's: the labels its telemetry carries.

Where model pods serve an environment, the scrape labels their series with the environment's
namespace. A batch environment's runs push under job=<its batch objects' name> (and its
namespace); an edge environment's devices push under job=`edge_job(deploy.name, env)`, one
group per device. Every reader that is not tied to pods (the drift monitor) selects through
`Selector`, so how an environment's telemetry is found is said here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from modelops_contract import NAMESPACE
from modelops_contract.edge import edge_job

from modelops.params import (
    BatchEnvironmentParams,
    DeployParams,
    EdgeEnvironmentParams,
    batch_name,
)

JOB = "job"
"""The label a Pushgateway group is pushed under (kept by the scrape's honor_labels)."""
Kind: TypeAlias = Literal["pods", "batch", "edge"]
"""How an environment's telemetry reaches Prometheus: scraped from pods, pushed by its runs, or
pushed by its devices."""


@dataclass(frozen=True)
class Selector:
    """The labels that pick one environment's series, and how they got there."""

    environment: str
    kind: Kind
    labels: tuple[tuple[str, str], ...]
    """(label, value) pairs every one of the environment's series carries."""

    def matchers(self) -> str:
        """The label matchers, for a PromQL selector's braces."""
        return ", ".join(f'{label}="{value}"' for label, value in self.labels)

    def value(self, label: str) -> str | None:
        """The value the environment's series carry for `label` (None when not selected on)."""
        return dict(self.labels).get(label)

    def describe(self) -> str:
        """Where the series come from, in words (for reports and warnings)."""
        where = " and ".join(f"{label} {value}" for label, value in self.labels)
        source = {
            "pods": "scraped from its model pods",
            "batch": "pushed by its runs to the Pushgateway",
            "edge": "pushed by its devices to the Pushgateway",
        }[self.kind]
        return f"{where}, {source}"


def selector(deploy: DeployParams, environment: str) -> Selector:
    """The selector of `environment` (declared in `deploy.environments`)."""
    settings = deploy.environments[environment]
    if isinstance(settings, EdgeEnvironmentParams):
        return Selector(environment, "edge", ((JOB, edge_job(deploy.name, environment)),))
    if isinstance(settings, BatchEnvironmentParams):
        job = batch_name(deploy.name, environment)
        return Selector(environment, "batch", ((NAMESPACE, settings.namespace), (JOB, job)))
    return Selector(environment, "pods", ((NAMESPACE, settings.namespace),))

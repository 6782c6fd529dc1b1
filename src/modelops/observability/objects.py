"""Kubernetes objects that observability renders beside the model, typed as their YAML holds
them (only the fields modelops writes)."""

from __future__ import annotations

from typing import TypedDict


class Metadata(TypedDict):
    """An object's name, namespace and labels."""

    name: str
    namespace: str
    labels: dict[str, str]


class ConfigMap(TypedDict):
    """A ConfigMap: here, one dashboard for Grafana's sidecar (`dashboards.config_maps`)."""

    apiVersion: str
    kind: str
    metadata: Metadata
    data: dict[str, str]

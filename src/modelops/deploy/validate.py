"""Check rendered manifests before anything commits them: schemas, and the platforms' rules.

- Custom kinds (SeldonDeployment, KServe's InferenceService, Argo CD Application, the
  Prometheus Operator's PodMonitor and PrometheusRule, spark-operator's
  ScheduledSparkApplication): the pinned upstream CRD schema, strict (unknown fields refused),
  located or fetched by `schemas.py`. When it cannot be had, that check is a problem where
  schemas are required (GitHub Actions, `MODELOPS_REQUIRE_SCHEMAS=true`) and is skipped
  elsewhere, with a note that says how to get it.
- Core kinds (PodDisruptionBudget, NetworkPolicy, CronJob): kubernetes-validate's bundled
  schemas, strict.
- Argo CD Application: also the values Argo CD needs to sync (source and destination set).
- Seldon's admission webhook rules, which no schema expresses: traffic of non-shadow predictors
  adds up to 100, unique predictor names, at most one shadow and never alone, a container named
  after each graph node without an implementation, a modelUri for prepackaged servers; and ours:
  no predictor at 0% (some ingresses read 0 as an equal split).
- KServe v0.20's admission rules for what we render (`kserve_rules`): a custom predictor's
  server in `kserve-container`, replicas within their bounds, and for `spec.canary` Standard
  mode, a stable predictor naming its model, named canaries other than the stable one, no
  autoscaling on a canary, its replicas within the stable floor, traffic adding up to at most
  100; and ours: each canary between 1% and 99% (a canary at 0 would be a dark launch that
  nothing judges, at 100 it is the stable model).

A file may hold several objects (`---`); each is checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import yaml

from modelops import yamltext
from modelops.deploy.platforms import KSERVE
from modelops.deploy.schemas import Pinned, SchemaSource, load, pinned_for
from modelops.errors import SchemaError
from modelops.io import JSONObject

if TYPE_CHECKING:
    from jsonschema.protocols import Validator
    from referencing import Resource
    from referencing.jsonschema import Schema

KUBERNETES_VERSION = "1.30.0"
_CORE_SCHEMAS = f"v{KUBERNETES_VERSION}-local-strict"  # kubernetes-validate's bundled schemas
_PREPACKAGED = (
    "SKLEARN_SERVER",
    "XGBOOST_SERVER",
    "TENSORFLOW_SERVER",
    "MLFLOW_SERVER",
    "TRITON_SERVER",
    "HUGGINGFACE_SERVER",
    "TEMPO_SERVER",
)


@dataclass(frozen=True)
class Validation:
    """Problems found (empty when all is well), and checks that could not run, with why."""

    problems: tuple[str, ...]
    skipped: tuple[str, ...]


def validate(
    files: Mapping[str, str], *, schemas: SchemaSource, templated: Collection[str] | None = None
) -> Validation:
    """Validate every rendered file (path -> YAML text, one or more objects).

    `templated`: the files a Jinja2 template rendered (default: all), where `{{` can only be a
    template left unrendered; Prometheus and Grafana templates in generated files are meant.
    """
    problems: list[str] = []
    unavailable: dict[str, str] = {}
    for path, text in sorted(files.items()):
        if (templated is None or path in templated) and ("{{" in text or "{%" in text):
            problems.append(f"{path}: template syntax left in the output")
            continue
        try:
            loaded = yaml.load_all(text, Loader=yamltext.LOADER)
            documents = [d for d in loaded if d is not None] or [None]
        except yaml.YAMLError as exc:
            problems.append(f"{path}: not valid YAML ({exc})")
            continue
        for index, document in enumerate(documents, start=1):
            where = path if len(documents) == 1 else f"{path} (object {index})"
            found = _check(document, schemas, unavailable)
            problems.extend(f"{where}: {problem}" for problem in found)
    # A schema that cannot be had is said once per kind, however many objects need it.
    if schemas.required:
        problems.extend(
            f"{why} (required here: GitHub Actions or MODELOPS_REQUIRE_SCHEMAS=true)"
            for why in unavailable.values()
        )
        return Validation(problems=tuple(problems), skipped=())
    return Validation(problems=tuple(problems), skipped=_skipped(unavailable))


def skipped_checks(files: Mapping[str, str], *, schemas: SchemaSource) -> tuple[str, ...]:
    """The checks `validate` would skip for `files`, and why, without validating them."""
    if schemas.required:
        return ()
    unavailable: dict[str, str] = {}
    for text in files.values():
        try:
            documents = list(yaml.load_all(text, Loader=yamltext.LOADER))
        except yaml.YAMLError:
            continue
        for document in documents:
            if not isinstance(document, dict):
                continue
            pinned = pinned_for(str(document.get("apiVersion")), str(document.get("kind")))
            validator = None if pinned is None else _validator(pinned, schemas)
            if isinstance(validator, str):
                unavailable[str(document["kind"])] = validator
    return _skipped(unavailable)


def _skipped(unavailable: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(f"{why}; that check is skipped" for _, why in sorted(unavailable.items()))


def _check(document: object, schemas: SchemaSource, unavailable: dict[str, str]) -> Iterator[str]:
    if not isinstance(document, dict) or "kind" not in document:
        yield "not a Kubernetes object (no kind)"
        return
    if "apiVersion" not in document:
        yield f"{document['kind']} has no apiVersion"
        return
    kind = str(document["kind"])
    pinned = pinned_for(str(document["apiVersion"]), kind)
    if pinned is None:
        yield from _core(document)
    else:
        validator = _validator(pinned, schemas)
        if isinstance(validator, str):
            unavailable[kind] = validator
        else:
            yield from _schema_errors(kind, validator, document)
    if kind == "SeldonDeployment":
        yield from webhook_rules(document)
        for scaled in seldon_scaled_objects(document):
            yield from _check(scaled, schemas, unavailable)
    elif kind == "InferenceService":
        yield from kserve_rules(document)
    elif kind == "Application":
        yield from _application(document)


def seldon_scaled_objects(deployment: JSONObject) -> Iterator[JSONObject]:
    """The KEDA ScaledObject the Seldon operator makes of each predictor's `kedaSpec`, to be
    checked against KEDA's own schema (Seldon's CRD only knows the fields' shapes)."""
    for predictor in deployment.get("spec", {}).get("predictors") or []:
        for component in predictor.get("componentSpecs") or []:
            if "kedaSpec" in component:
                yield {
                    "apiVersion": "keda.sh/v1alpha1",
                    "kind": "ScaledObject",
                    "metadata": {"name": f"{deployment['metadata']['name']}-{predictor['name']}"},
                    "spec": {
                        "scaleTargetRef": {"name": "the predictor's Deployment"},
                        **component["kedaSpec"],
                    },
                }


def webhook_rules(deployment: JSONObject) -> Iterator[str]:
    """Seldon v1's admission rules, plus ours: no predictor at 0% beside others."""
    predictors = deployment.get("spec", {}).get("predictors") or []
    names = [p.get("name") for p in predictors]
    if not predictors:
        yield "a SeldonDeployment needs at least one predictor"
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        yield f"predictor names must be unique, repeated: {duplicated}"
    shadows = [p for p in predictors if p.get("shadow")]
    if len(shadows) > 1:
        yield "at most one predictor may be a shadow"
    if shadows and len(shadows) == len(predictors):
        yield "a shadow predictor cannot be the only predictor"
    live = [p for p in predictors if not p.get("shadow")]
    traffic = [int(p.get("traffic") or 0) for p in live]
    if len(live) > 1 and sum(traffic) != 100:
        yield f"non-shadow predictor traffic must add up to 100, got {traffic}"
    if len(live) == 1 and traffic[0] not in (0, 100):
        yield f"a single predictor takes 0 (unset) or 100 traffic, got {traffic[0]}"
    if len(live) > 1 and 0 in traffic:
        yield (
            "no predictor may take 0% beside others "
            "(remove it instead: some ingresses split 0 evenly)"
        )
    for predictor in predictors:
        containers = {
            container.get("name")
            for spec in predictor.get("componentSpecs") or []
            for container in (spec.get("spec") or {}).get("containers") or []
        }
        for node in _graph_nodes(predictor.get("graph") or {}):
            implementation = node.get("implementation")
            if not implementation and node.get("name") not in containers:
                yield (
                    f"predictor {predictor.get('name')}: graph node {node.get('name')} has no "
                    "implementation and no container of the same name"
                )
            if implementation in _PREPACKAGED and not node.get("modelUri"):
                yield f"graph node {node.get('name')}: prepackaged {implementation} needs modelUri"


def kserve_rules(service: JSONObject) -> Iterator[str]:
    """KServe v0.20's admission rules for a custom predictor and `spec.canary` (its
    `inference_service_validation.go`), plus ours: every canary takes 1% to 99%."""
    spec = service.get("spec") or {}
    stable = spec.get("predictor") or {}
    yield from _custom_predictor("predictor", stable)
    stable_floor, ceiling = stable.get("minReplicas", 1), stable.get("maxReplicas", 0)
    if ceiling and stable_floor > ceiling:
        yield f"predictor minReplicas {stable_floor} is above its maxReplicas {ceiling}"
    canaries = spec.get("canary") or []
    if not canaries:
        return
    mode = ((service.get("metadata") or {}).get("annotations") or {}).get(_KSERVE_MODE)
    if mode != KSERVE.deployment_mode:
        yield f"spec.canary needs the annotation {_KSERVE_MODE}: {KSERVE.deployment_mode}"
    if _storage_uri(stable) is None:
        yield (
            f"spec.canary needs a stable predictor that names its model ({KSERVE.storage_uri_env} "
            f"in {KSERVE.container})"
        )
    names = [(canary.get("predictor") or {}).get("name") for canary in canaries]
    if None in names or "" in names:
        yield "every canary needs predictor.name"
    if len(set(names)) < len(names) or stable.get("name") in names:
        yield f"canary names must be unique and differ from the stable predictor's: {names}"
    traffic = [int(canary.get("trafficPercent") or 0) for canary in canaries]
    if sum(traffic) > 100:
        yield f"the canaries' trafficPercent adds up to more than 100: {traffic}"
    for name, share, canary in zip(names, traffic, canaries, strict=True):
        predictor = canary.get("predictor") or {}
        yield from _custom_predictor(f"canary {name}", predictor)
        if not 0 < share < 100:
            yield f"canary {name} takes {share}%: a canary takes 1 to 99 (remove it instead)"
        fixed = sorted(_CANARY_FIXED & set(predictor))
        if fixed:
            yield f"canary {name} has fixed replicas: remove {fixed}"
        if predictor.get("minReplicas", 1) > stable_floor:
            yield f"canary {name} has more minReplicas than the stable predictor ({stable_floor})"


_KSERVE_MODE = "serving.kserve.io/deploymentMode"
_CANARY_FIXED = {"maxReplicas", "scaleMetric", "scaleTarget", "autoScaling", "workerSpec"}
_FRAMEWORKS = (
    "model",
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
)


def _custom_predictor(where: str, predictor: JSONObject) -> Iterator[str]:
    """A custom predictor: its containers and no framework, the server in kserve-container."""
    frameworks = [key for key in _FRAMEWORKS if key in predictor]
    containers = predictor.get("containers") or []
    if frameworks or not containers:
        yield f"{where}: exactly one implementation, the containers (found {frameworks or 'none'})"
    elif containers[0].get("name") != KSERVE.container:
        yield f"{where}: the model server's container must be named {KSERVE.container}"


def _storage_uri(predictor: JSONObject) -> str | None:
    for container in predictor.get("containers") or []:
        if container.get("name") == KSERVE.container:
            for variable in container.get("env") or []:
                if variable.get("name") == KSERVE.storage_uri_env:
                    return str(variable.get("value") or "") or None
    return None


def _graph_nodes(node: JSONObject) -> Iterator[JSONObject]:
    yield node
    for child in node.get("children") or []:
        yield from _graph_nodes(child)


def _application(application: JSONObject) -> Iterator[str]:
    spec = application.get("spec") or {}
    required = {
        "metadata.name": (application.get("metadata") or {}).get("name"),
        "spec.source.repoURL": (spec.get("source") or {}).get("repoURL"),
        "spec.source.path": (spec.get("source") or {}).get("path"),
        "spec.source.targetRevision": (spec.get("source") or {}).get("targetRevision"),
        "spec.destination.server": (spec.get("destination") or {}).get("server"),
        "spec.destination.namespace": (spec.get("destination") or {}).get("namespace"),
    }
    for field, value in required.items():
        if not value:
            yield f"Argo CD Application needs {field}"
    if application.get("apiVersion") != "argoproj.io/v1alpha1":
        yield "Argo CD Application must be argoproj.io/v1alpha1"


def _core(document: JSONObject) -> Iterator[str]:
    validator = _core_validator(str(document["apiVersion"]), str(document["kind"]))
    if validator is None:
        kind = f"{document['apiVersion']} {document['kind']}"
        yield f"no Kubernetes {KUBERNETES_VERSION} schema for {kind}"
        return
    yield from _schema_errors(str(document["kind"]), validator, document)


@cache
def _core_validator(api_version: str, kind: str) -> Validator | None:
    """kubernetes-validate's strict schema of a core kind, or None; read once a process.

    Its own `validate()` reads the kind's schema and 1.3 MB of shared definitions on every
    call, most of the time of a render.
    """
    import jsonschema
    from referencing import Registry, Resource

    # networking.k8s.io/v1 -> networking-v1, policy/v1 -> policy-v1, v1 -> v1
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / _CORE_SCHEMAS
    try:
        schema = json.loads((folder / f"{kind.lower()}-{group_version}.json").read_text())
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(schema) @ (_core_definitions() @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


@cache
def _core_definitions() -> Resource[Schema]:
    from referencing import Resource

    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / _CORE_SCHEMAS
    return Resource.from_contents(json.loads((folder / "_definitions.json").read_text()))


@cache
def _validator(pinned: Pinned, schemas: SchemaSource) -> Validator | str:
    """The kind's schema validator, or why its schema cannot be had (tried once a process)."""
    import jsonschema

    try:
        return jsonschema.Draft7Validator(load(pinned, schemas))
    except SchemaError as exc:
        return f"{pinned.kind} schema unavailable: {exc}; {schemas.describe(pinned)}"


def _schema_errors(kind: str, validator: Validator, document: JSONObject) -> Iterator[str]:
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.path) or "(top level)"
        yield f"{kind} {where}: {error.message}"

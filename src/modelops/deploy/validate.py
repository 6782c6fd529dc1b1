"""Check rendered manifests before anything commits them: schemas, and Seldon's webhook rules.

- SeldonDeployment: the upstream CRD schema (strict: unknown fields refused), read from the
  shared schemas folder (`$MODELOPS_SCHEMAS`, else `../shared/schemas` beside the project); when
  it is absent that one check is skipped and the result says so.
- Core kinds (PodDisruptionBudget): kubernetes-validate's bundled schemas, strict.
- Argo CD Application: the fields Argo CD needs.
- Seldon's admission webhook rules, which no schema expresses: traffic of non-shadow predictors
  adds up to 100, unique predictor names, at most one shadow and never alone, a container named
  after each graph node without an implementation, a modelUri for prepackaged servers; and ours:
  no predictor at 0% (some ingresses read 0 as an equal split).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SELDON_SCHEMA = Path(
    "seldon/v1.17.1-apache2/kubeconform-strict/machinelearning.seldon.io/seldondeployment_v1.json"
)
KUBERNETES_VERSION = "1.30.0"
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


def schemas_dir(root: Path) -> Path:
    """Where the shared schemas are: `$MODELOPS_SCHEMAS`, else `../shared/schemas`."""
    configured = os.environ.get("MODELOPS_SCHEMAS", "").strip()
    return Path(configured) if configured else root.parent / "shared" / "schemas"


def validate(files: Mapping[str, str], *, schemas: Path) -> Validation:
    """Validate every rendered file (path -> YAML text)."""
    problems: list[str] = []
    skipped: list[str] = []
    seldon_schema = schemas / SELDON_SCHEMA
    if not seldon_schema.is_file():
        skipped.append(
            f"SeldonDeployment schema check skipped: {seldon_schema} not found (set "
            "MODELOPS_SCHEMAS to the folder holding seldon/); webhook rules still checked"
        )
    for path, text in sorted(files.items()):
        if "{{" in text or "{%" in text:
            problems.append(f"{path}: template syntax left in the output")
            continue
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problems.append(f"{path}: not valid YAML ({exc})")
            continue
        problems.extend(f"{path}: {problem}" for problem in _check(document, seldon_schema))
    return Validation(problems=tuple(problems), skipped=tuple(skipped))


def _check(document: Any, seldon_schema: Path) -> Iterator[str]:
    if not isinstance(document, dict) or "kind" not in document:
        yield "not a Kubernetes object (no kind)"
        return
    kind = document["kind"]
    if kind == "SeldonDeployment":
        if seldon_schema.is_file():
            yield from _schema_errors(_seldon_validator(str(seldon_schema)), document)
        yield from webhook_rules(document)
    elif kind == "Application":
        yield from _application(document)
    else:
        yield from _core(document)


def webhook_rules(deployment: dict[str, Any]) -> Iterator[str]:
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


def _graph_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children") or []:
        yield from _graph_nodes(child)


def _application(application: dict[str, Any]) -> Iterator[str]:
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


def _core(document: dict[str, Any]) -> Iterator[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(top level)"
        yield f"{document.get('kind')} {where}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError:
        kind = f"{document.get('apiVersion')} {document.get('kind')}"
        yield f"no Kubernetes {KUBERNETES_VERSION} schema for {kind}"


@cache
def _seldon_validator(path: str) -> Any:
    import jsonschema

    schema = json.loads(Path(path).read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def _schema_errors(validator: Any, document: dict[str, Any]) -> Iterator[str]:
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path) or "(top level)"
        yield f"SeldonDeployment {where}: {error.message}"

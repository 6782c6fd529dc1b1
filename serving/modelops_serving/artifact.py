"""The model directory the pipeline trains, read without MLflow (which cannot live here).

An MLflow model directory is a documented format: `MLmodel` (YAML) names the skops file, the
types skops may trust, and the input signature; `input_example.json` holds example rows. The
pipeline adds `modelops.json` with the class names and the data version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

MODEL_CARD = "modelops.json"
_NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})


class ArtifactError(Exception):
    """The model directory is missing, incomplete or not the kind this server serves."""


@dataclass(frozen=True)
class Column:
    """One model input: its name and whether it takes numbers or strings."""

    name: str
    kind: Literal["number", "string"]


@dataclass(frozen=True)
class Artifact:
    """What the server knows about the model before (and after) loading it."""

    path: Path
    columns: tuple[Column, ...]
    classes: tuple[str, ...]
    positive_label: str
    data_version: str
    model_kind: str
    content_hash: str
    model_file: Path
    trusted_types: tuple[str, ...]
    example_rows: tuple[tuple[Any, ...], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


def read_artifact(path: Path) -> Artifact:
    """Read a model directory's description; raises ArtifactError with what is wrong."""
    mlmodel = _yaml(path / "MLmodel")
    card = _json(path / MODEL_CARD)
    flavour = (mlmodel.get("flavors") or {}).get("sklearn")
    if not flavour or flavour.get("serialization_format") != "skops":
        raise ArtifactError(f"{path}: not a scikit-learn model saved with skops")
    signature = (mlmodel.get("signature") or {}).get("inputs")
    if not signature:
        raise ArtifactError(f"{path}: the MLmodel file has no input signature")
    example = _json(path / "input_example.json")
    return Artifact(
        path=path,
        columns=tuple(_column(spec, path) for spec in json.loads(signature)),
        classes=tuple(str(c) for c in card["classes"]),
        positive_label=str(card["positive_label"]),
        data_version=str(card["data_version"]),
        model_kind=str(card["model_kind"]),
        content_hash=content_hash(path),
        model_file=path / flavour["pickled_model"],
        trusted_types=tuple(flavour.get("skops_trusted_types") or ()),
        example_rows=tuple(tuple(row) for row in example["data"]),
    )


def load_pipeline(artifact: Artifact) -> Any:
    """Load the scikit-learn pipeline, trusting only the types recorded at training time."""
    import skops.io

    try:
        return skops.io.load(artifact.model_file, trusted=list(artifact.trusted_types))
    except Exception as exc:
        raise ArtifactError(f"{artifact.model_file}: cannot be loaded ({exc})") from exc


def content_hash(path: Path) -> str:
    """sha256 over every file's relative path and bytes: the identity of a model version."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(b"\0")
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _column(spec: dict[str, Any], path: Path) -> Column:
    kind = spec.get("type")
    if kind == "string":
        return Column(spec["name"], "string")
    if kind in _NUMERIC_TYPES:
        return Column(spec["name"], "number")
    raise ArtifactError(f"{path}: input '{spec.get('name')}' has unsupported type {kind!r}")


def _yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: not found; is the model URI a model directory?") from None
    if not isinstance(loaded, dict):
        raise ArtifactError(f"{path}: not an MLmodel file")
    return loaded


def _json(path: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"{path}: not found; train the model with the modelops pipeline"
        ) from None
    return loaded

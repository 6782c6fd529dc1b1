"""The model directory the pipeline trains, read without MLflow (which cannot live here).

An MLflow model directory is a documented format: `MLmodel` (YAML) names the skops file and the
input signature; `input_example.json` holds example rows. The pipeline adds `modelops.json` with
the class names, the data version and the training time, and `profile.json` (the reference
profile, `modelops_serving.profile`).

The directory is read once, into memory: its content hash, its description and the model bytes
that `load_pipeline` deserializes all come from that one read, so what was verified is what is
loaded, and nothing in a directory whose hash differs from the expected one is parsed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from modelops_serving.skops_types import REVIEWED_SKOPS_TYPES

MODEL_CARD = "modelops.json"
PROFILE_FILE = "profile.json"
_NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
    declared_types: tuple[str, ...]
    example_rows: tuple[tuple[Any, ...], ...]
    model_bytes: bytes = field(repr=False)
    trained_at: str = ""
    """When training finished (ISO 8601, `...Z`); empty for models trained before it was kept."""
    profile_bytes: bytes | None = field(default=None, repr=False)
    """The reference profile (`profile.json`); None for models trained before there was one."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


def read_artifact(path: Path, *, expected_hash: str = "") -> Artifact:
    """Read a model directory; raises ArtifactError with what is wrong.

    Args:
        path: the model directory.
        expected_hash: the sha256 hex digest the directory must have (`content_hash`); empty
            for no check.
    """
    files = _read_files(path)
    if "MLmodel" not in files:
        raise ArtifactError(f"{path / 'MLmodel'}: not found; is the model URI a model directory?")
    actual = _verified_hash(files, path, expected_hash)
    mlmodel = _yaml(files, path, "MLmodel")
    card = _json(files, path, MODEL_CARD)
    flavour = (mlmodel.get("flavors") or {}).get("sklearn")
    if not flavour or flavour.get("serialization_format") != "skops":
        raise ArtifactError(f"{path}: not a scikit-learn model saved with skops")
    signature = (mlmodel.get("signature") or {}).get("inputs")
    if not signature:
        raise ArtifactError(f"{path}: the MLmodel file has no input signature")
    example = _json(files, path, "input_example.json")
    model_name = str(flavour["pickled_model"])
    if model_name not in files:
        raise ArtifactError(f"{path / model_name}: not found; the MLmodel file names it")
    return Artifact(
        path=path,
        columns=tuple(_column(spec, path) for spec in json.loads(signature)),
        classes=tuple(str(c) for c in card["classes"]),
        positive_label=str(card["positive_label"]),
        data_version=str(card["data_version"]),
        model_kind=str(card["model_kind"]),
        content_hash=actual,
        model_file=path / model_name,
        declared_types=tuple(str(t) for t in flavour.get("skops_trusted_types") or ()),
        example_rows=tuple(tuple(row) for row in example["data"]),
        model_bytes=files[model_name],
        trained_at=str(card.get("trained_at") or ""),
        profile_bytes=files.get(PROFILE_FILE),
    )


def load_pipeline(artifact: Artifact) -> Any:
    """Load the scikit-learn pipeline, trusting only REVIEWED_SKOPS_TYPES (never the MLmodel's)."""
    import skops.io

    try:
        return skops.io.loads(artifact.model_bytes, trusted=sorted(REVIEWED_SKOPS_TYPES))
    except Exception as exc:
        raise ArtifactError(f"{artifact.model_file}: cannot be loaded ({exc})") from exc


def content_hash(path: Path) -> str:
    """sha256 over every file's relative path and bytes: the identity of a model version."""
    return _digest(_read_files(path))


def _verified_hash(files: dict[str, bytes], path: Path, expected: str) -> str:
    """The directory's content hash; raises ArtifactError if it is not `expected` (when given)."""
    if expected and not _SHA256.fullmatch(expected):
        raise ArtifactError(
            "the expected model hash must be a full sha256 hex digest (64 characters 0-9, a-f), "
            f"got {expected[:80]!r}"
        )
    actual = _digest(files)
    if expected and actual != expected:
        raise ArtifactError(
            f"{path}: content hash {actual} does not match the expected {expected}: the model "
            "directory is not the published model version (a changed, extra or missing file); "
            "refusing to load it"
        )
    return actual


def _read_files(path: Path) -> dict[str, bytes]:
    """Every file under `path` by relative path, in the order the hash covers them."""
    return {
        file.relative_to(path).as_posix(): file.read_bytes()
        for file in sorted(p for p in path.rglob("*") if p.is_file())
    }


def _digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name, content in files.items():
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(content)
    return digest.hexdigest()


def _column(spec: dict[str, Any], path: Path) -> Column:
    kind = spec.get("type")
    if kind == "string":
        return Column(spec["name"], "string")
    if kind in _NUMERIC_TYPES:
        return Column(spec["name"], "number")
    raise ArtifactError(f"{path}: input '{spec.get('name')}' has unsupported type {kind!r}")


def _yaml(files: dict[str, bytes], path: Path, name: str) -> dict[str, Any]:
    loaded = yaml.safe_load(files[name].decode("utf-8"))
    if not isinstance(loaded, dict):
        raise ArtifactError(f"{path / name}: not an MLmodel file")
    return loaded


def _json(files: dict[str, bytes], path: Path, name: str) -> dict[str, Any]:
    if name not in files:
        raise ArtifactError(f"{path / name}: not found; train the model with the modelops pipeline")
    loaded: dict[str, Any] = json.loads(files[name].decode("utf-8"))
    return loaded

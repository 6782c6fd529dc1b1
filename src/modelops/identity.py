"""What a model is: its bytes (the content hash) and what trained it (the training inputs).

The content hash names a model version wherever it goes: the store's address, the release files,
the gates' record of what they judged, and the server's tags (serving/modelops_serving computes
the same hash; a test holds them equal). The training-inputs fingerprint, read from `dvc.lock`,
recognises a retrain of the same code, params and data, whose bytes differ.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, Self, TypedDict

from modelops.lockfile import stage_inputs
from modelops.paths import LOCK_FILE, MODEL_DIR


class IdentityDocument(TypedDict):
    """A model identity in JSON (gates' records); files from before fingerprints lack one."""

    model_hash: str
    training_inputs: NotRequired[str | None]


@dataclass(frozen=True)
class ModelIdentity:
    """A model's content hash, and the fingerprint of its training inputs when DVC knows it."""

    model_hash: str
    training_inputs: str | None = None

    def same_inputs(self, other: ModelIdentity) -> bool:
        """Trained from the same code, params and data (both fingerprints known and equal)."""
        return self.training_inputs is not None and self.training_inputs == other.training_inputs

    def describe(self) -> str:
        """Short form for messages: hash prefix and inputs prefix."""
        inputs = self.training_inputs[:12] if self.training_inputs else "unknown"
        return f"{self.model_hash[:12]} (training inputs {inputs})"

    def to_dict(self) -> IdentityDocument:
        """JSON-ready form."""
        return {"model_hash": self.model_hash, "training_inputs": self.training_inputs}

    @classmethod
    def from_dict(cls, raw: IdentityDocument) -> Self:
        """Inverse of `to_dict`."""
        inputs = raw.get("training_inputs")
        return cls(model_hash=str(raw["model_hash"]), training_inputs=inputs and str(inputs))


def content_hash(path: Path) -> str:
    """sha256 over every file's relative path and bytes (the server computes the same)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(b"\0")
        digest.update(file.read_bytes())
    return digest.hexdigest()


def identify(model_dir: Path, *, root: Path) -> ModelIdentity:
    """The identity of a model directory; training inputs only for the DVC-tracked model.

    `dvc.lock` describes `models/model`, not a directory given by hand, so any other model has
    no known training inputs.
    """
    tracked = model_dir.resolve() == (root / MODEL_DIR).resolve()
    lock = root / LOCK_FILE
    lock_text = lock.read_text(encoding="utf-8") if tracked and lock.is_file() else None
    return ModelIdentity(content_hash(model_dir), stage_inputs(lock_text))

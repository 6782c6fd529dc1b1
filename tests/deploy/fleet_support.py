"""Edge bundles and edge params for the fleet tests: small archives built here (a manifest.json,
a dummy model file and their SHA256SUMS), the shape `modelops export` writes, so these tests do
not need its environment. The signature is not checked at deploy (devices verify it), only that
the manifest says the bundle is signed."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

DEVICES = "devices"
EDGE: dict[str, Any] = {
    "strategy": "edge",
    "format": "onnx",
    "bundle_base_url": "https://models.example.com/churn/bundles",
    "public_key": "https://keys.example.com/churn-edge.pub",
    "cohort_steps": [5, 25, 50],
}


def model_hash(name: str) -> str:
    """A well-formed model content hash, made up from a name."""
    return hashlib.sha256(f"model {name}".encode()).hexdigest()


def bundle(
    folder: Path,
    name: str,
    *,
    bundle_format: str = "onnx",
    manifest: dict[str, Any] | None = None,
    tamper: bool = False,
) -> Path:
    """A bundle archive `folder/<name>.tar.gz`: manifest.json at its root, a model file and
    SHA256SUMS (with `tamper`, the model file is changed after summing).

    Built with fixed member times, so the same name gives the same bytes (the same sha256).
    """
    document = manifest or {
        "name": "churn",
        "format": bundle_format,
        "model_hash": model_hash(name),
        "data_version": hashlib.sha256(b"data").hexdigest(),
        "git_commit": hashlib.sha1(name.encode()).hexdigest(),
        "signed": True,
    }
    path = folder / f"{name}.tar.gz"
    with (
        path.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        files = {
            "manifest.json": json.dumps(document, sort_keys=True).encode(),
            f"model.{bundle_format}": f"weights of {name}".encode(),
        }
        sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {f}\n" for f, data in files.items())
        if tamper:
            files[f"model.{bundle_format}"] += b" and then some"
        files["SHA256SUMS"] = sums.encode()
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size, info.mtime = len(data), 0
            archive.addfile(info, io.BytesIO(data))
    return path


def archive_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

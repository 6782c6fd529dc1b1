"""Publish a model directory to the store under its content hash: an immutable address.

A path that exists already is only ever reused when its content matches; it is never
overwritten. A local folder stands in for the bucket in tests and in `make demo`; object store
URIs (s3://, gs://, ...) go through fsspec with the matching filesystem package installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from modelops.errors import PublishError
from modelops.identity import content_hash

PUBLISHED_MARKERS = ".published"
"""Beside the versions, `<store>/<name>/.published/<hash>` says an upload completed (a marker
inside the model directory would change the hash the server computes)."""


def model_uri(store: str, name: str, digest: str) -> str:
    """The immutable address of a model version in the store."""
    return f"{store.rstrip('/')}/{name}/{digest}"


def is_object_store(store: str) -> bool:
    """Whether `store` is a URI of a remote store rather than a local folder."""
    return "://" in store and not store.startswith("file://")


def publish(model_dir: Path, *, store: str, name: str, root: Path) -> tuple[str, str]:
    """Copy `model_dir` to the store (unless already there); return (uri, content hash)."""
    if not (model_dir / "MLmodel").is_file():
        raise PublishError(f"{model_dir}: no trained model to publish; run `dvc repro train`")
    digest = content_hash(model_dir)
    uri = model_uri(store, name, digest)
    if is_object_store(store):
        _publish_remote(model_dir, uri, model_uri(store, name, f"{PUBLISHED_MARKERS}/{digest}"))
    else:
        local = Path(store.removeprefix("file://"))
        _publish_local(model_dir, (local if local.is_absolute() else root / local) / name / digest)
    return uri, digest


def _publish_local(model_dir: Path, target: Path) -> None:
    if target.exists():
        if content_hash(target) != target.name:
            raise PublishError(
                f"{target} exists but its content does not hash to its name: the store is "
                "corrupted there; remove that directory by hand after checking it"
            )
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model_dir, staging)
    staging.rename(target)


def _publish_remote(model_dir: Path, uri: str, marker: str) -> None:
    import fsspec

    protocol = uri.split("://", 1)[0]
    try:
        filesystem = fsspec.filesystem(protocol)
    except (ImportError, ValueError) as exc:
        raise PublishError(
            f"cannot publish to {protocol}:// ({exc}); add its fsspec package to the project "
            "(for example `uv add s3fs` for s3://) or use a local folder as deploy.store"
        ) from None
    if filesystem.exists(marker):
        return  # content-addressed and complete: the same bytes are already there
    if filesystem.exists(uri):
        filesystem.rm(uri, recursive=True)  # an interrupted upload: no marker was written
    filesystem.put(str(model_dir), uri, recursive=True)
    filesystem.pipe(marker, uri.encode())


def fetch(uri: str, destination: Path, *, root: Path) -> None:
    """Copy a published model to `destination` (absent), checking it hashes to its address.

    Raises:
        PublishError: the store cannot be read here, or holds something else at that address.
    """
    digest = uri.rstrip("/").rsplit("/", 1)[-1]
    if is_object_store(uri):
        import fsspec

        protocol = uri.split("://", 1)[0]
        try:
            filesystem = fsspec.filesystem(protocol)
            filesystem.get(uri.rstrip("/") + "/", str(destination), recursive=True)
        except (ImportError, ValueError, OSError) as exc:
            raise PublishError(f"cannot read {uri} ({type(exc).__name__}: {exc})") from None
    else:
        local = Path(uri.removeprefix("file://"))
        source = local if local.is_absolute() else root / local
        if not (source / "MLmodel").is_file():
            raise PublishError(f"{uri} is not in the store on this machine")
        shutil.copytree(source, destination)
    if content_hash(destination) != digest:
        raise PublishError(f"{uri} does not hash to its address: the store is corrupted there")


def fetched(uri: str, *, cache: Path, root: Path) -> Path:
    """A local copy of a published model, fetched into `cache/<hash>` the first time.

    Fetched into a scratch folder beside it and moved into place whole, so a copy that is
    there is complete and hashes to its address (`fetch` checks).

    Raises:
        PublishError: the store cannot be read here, or holds something else at that address.
    """
    copy = cache / uri.rstrip("/").rsplit("/", 1)[-1]
    if copy.is_dir():
        return copy
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        staging = Path(scratch) / "model"
        fetch(uri, staging, root=root)
        try:
            staging.rename(copy)
        except OSError:
            if not copy.is_dir():  # another run placed the same version meanwhile: fine
                raise
    return copy


BUNDLES = "bundles"
"""The store's folder of edge bundle archives, each named `<sha256>.tar.gz`."""


def bundle_store_uri(store: str, digest: str) -> str:
    """The immutable address of a bundle archive in the store."""
    return f"{store.rstrip('/')}/{BUNDLES}/{digest}.tar.gz"


def publish_bundle(archive: Path, *, store: str, root: Path) -> tuple[str, str]:
    """Copy a bundle archive to the store under its sha256 (unless already there); return
    (uri, sha256). Like a model, an address that exists is reused only when it holds the same
    bytes, never overwritten.

    Raises:
        PublishError: the store cannot be written, or holds other bytes at that address.
    """
    digest = file_sha256(archive)
    uri = bundle_store_uri(store, digest)
    if is_object_store(store):
        import fsspec

        protocol = uri.split("://", 1)[0]
        try:
            filesystem = fsspec.filesystem(protocol)
            if not filesystem.exists(uri):  # an object store writes an object whole or not
                filesystem.put_file(str(archive), uri)
        except (ImportError, ValueError, OSError) as exc:
            raise PublishError(
                f"cannot publish to {uri} ({type(exc).__name__}: {exc}); add its fsspec "
                "package (for example `uv add s3fs`) or use a local folder as deploy.store"
            ) from None
        return uri, digest
    local = Path(uri.removeprefix("file://"))
    target = local if local.is_absolute() else root / local
    if target.exists():
        if file_sha256(target) != digest:
            raise PublishError(
                f"{target} exists but does not hash to its name: the store is corrupted there; "
                "remove that file by hand after checking it"
            )
        return uri, digest
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.copyfile(archive, staging)
    staging.rename(target)
    return uri, digest


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

"""`modelops release deploy --bundle`: an edge bundle published to the store, rolled out by cohort.

The archive (`modelops export`'s output: a tar.gz with `manifest.json` at its root) is unpacked
and checked as a device will check it (every file as its SHA256SUMS says, nothing more; signed),
read for its model name, format and model hash, published under its sha256
(`<store>/bundles/<sha256>.tar.gz`) and deployed by the release state machine, as models are:
the first step of the environment's cohort steps (every device when it has none), then promote,
rollback and restore as for any other release, each a commit.
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from modelops_contract.bundle import MANIFEST, BundleError, check_sums

from modelops.deploy.workflow import Plan, commit_message, release_in
from modelops.errors import DeployError
from modelops.params import EdgeEnvironmentParams, Params
from modelops.releases import state
from modelops.releases.files import load_releases
from modelops.releases.publish import bundle_store_uri, file_sha256, is_object_store, publish_bundle
from modelops.releases.state import Bundle, Change, ModelVersion, Unchanged

_BUNDLE_LIMIT = 256 << 20
"""Unpacked bytes beyond this are not an edge bundle (one is well under a megabyte)."""
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class BundleManifest:
    """What the release needs from a bundle's manifest.json."""

    name: str
    format: str
    model_hash: str
    data_version: str | None = None
    git_commit: str | None = None


@dataclass(frozen=True)
class BundleRequest:
    """What `deploy_bundle` deploys (`modelops release deploy --bundle`'s options)."""

    archive: Path
    trained_at: str
    """The commit recorded when the manifest names none."""
    change: Change
    environments: Sequence[str] = ()
    """Only these environments (default: every edge one)."""
    dry_run: bool = False
    object_store_only: bool = False
    retry: bool = False


def read_bundle(archive: Path) -> BundleManifest:
    """The manifest of a bundle archive, once the bundle is checked as a device checks it.

    Raises:
        DeployError: not a tar.gz; a file not as its SHA256SUMS says, or one it does not list;
            unsigned; no manifest.json at its root, or a field missing or wrong.
    """
    with tempfile.TemporaryDirectory(prefix="modelops-bundle-") as unpacked:
        folder = Path(unpacked)
        _unpack(archive, folder)
        if not (folder / MANIFEST).is_file():
            raise DeployError(
                f"{archive}: no {MANIFEST} at the archive's root; build the bundle with "
                "modelops export"
            )
        try:
            check_sums(folder)
        except BundleError as exc:
            raise DeployError(f"{archive}: {exc}".replace(f"{folder}: ", "")) from None
        raw = (folder / MANIFEST).read_bytes()
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise DeployError(f"{archive}: {MANIFEST} is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise DeployError(f"{archive}: {MANIFEST} is not a JSON object")
    problems = [
        f"{key}: a non-empty string" for key in ("name", "format") if not _text(document.get(key))
    ]
    if not isinstance(document.get("model_hash"), str) or not _HEX64.match(document["model_hash"]):
        problems.append("model_hash: the model's content hash, 64 lowercase hex digits")
    if problems:
        raise DeployError(f"{archive}: {MANIFEST} " + "; ".join(problems))
    if document.get("signed") is not True:
        raise DeployError(
            f"{archive} is unsigned: devices refuse a bundle they cannot verify. Export it "
            "again with --key (runbooks/edge.md#signing-keys)"
        )
    return BundleManifest(
        name=document["name"],
        format=document["format"],
        model_hash=document["model_hash"],
        data_version=_text(document.get("data_version")),
        git_commit=_text(document.get("git_commit")),
    )


def deploy_bundle(root: Path, params: Params, request: BundleRequest) -> Plan:
    """Publish the bundle and start its rollout in each (named) edge environment.

    Refused before anything is published when an environment is not an edge one or runs
    another format than the bundle's.
    """
    environments = params.deploy.environments
    names = list(request.environments) or [
        n for n, e in environments.items() if isinstance(e, EdgeEnvironmentParams)
    ]
    if not names:
        raise DeployError(
            "no edge environment: declare one in params.yaml (deploy.environments.<name>."
            "strategy: edge; runbooks/edge.md)"
        )
    if request.object_store_only and not is_object_store(params.deploy.store):
        raise DeployError(
            f"deploy.store is the local folder '{params.deploy.store}': devices cannot download "
            "from it. Set deploy.store to your bucket and bundle_base_url to where it is served"
        )
    manifest = read_bundle(request.archive)
    for name in names:
        settings = release_in(environments, name)
        if not isinstance(settings, EdgeEnvironmentParams):
            raise DeployError(
                f"{name} is a {settings.strategy} environment: a bundle goes to an edge one; "
                "deploy a trained model there without --bundle"
            )
        if manifest.format != settings.format:
            raise DeployError(
                f"{request.archive} is a {manifest.format} bundle, but {name}'s devices run "
                f"{settings.format} (deploy.environments.{name}.format): export one with "
                f"modelops export --format {settings.format}"
            )
    digest = file_sha256(request.archive)
    model = ModelVersion(
        version=digest[:12],
        model_uri=bundle_store_uri(params.deploy.store, digest),
        model_hash=manifest.model_hash,
        data_version=manifest.data_version or "unknown",
        git_commit=manifest.git_commit or request.trained_at,
        bundle=Bundle(sha256=digest, format=manifest.format, name=manifest.name),
    )
    releases, changed, notes = load_releases(root, params), [], []
    for name in names:
        settings = environments[name]
        assert isinstance(settings, EdgeEnvironmentParams)
        after = state.deploy(
            releases[name],
            model,
            strategy="edge",
            steps=settings.cohort_steps,
            change=request.change,
            retry=request.retry,
        )
        if isinstance(after, Unchanged):
            notes.append(after.reason)
            continue
        releases[name] = after
        changed.append(name)
    if changed and not request.dry_run:
        uri, published = publish_bundle(request.archive, store=params.deploy.store, root=root)
        if published != digest:
            raise DeployError(f"{request.archive} changed while it was deployed; deploy it again")
        notes.insert(0, f"published to {uri}")
    shares = ", ".join(f"{name} ({_cohort(releases[name].traffic)})" for name in changed)
    title = f"deploy: bundle {model.version} to {shares}"
    provenance = (
        f"Bundle {model.version} ({manifest.name}, {manifest.format}): archive sha256 "
        f"{digest[:16]}, model {manifest.model_hash[:16]}, at {model.model_uri}"
    )
    message = commit_message(title, releases, changed, request.change, body=(provenance,))
    return Plan(releases=releases, changed=tuple(changed), message=message, notes=tuple(notes))


def _unpack(archive: Path, folder: Path) -> None:
    """Unpack regular files and folders only, inside `folder` (tarfile's `data` filter)."""
    try:
        with tarfile.open(archive, mode="r:gz") as bundle:
            members = bundle.getmembers()
            if sum(member.size for member in members) > _BUNDLE_LIMIT:
                raise DeployError(f"{archive}: unpacks to over {_BUNDLE_LIMIT >> 20} MiB")
            bundle.extractall(folder, filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise DeployError(f"{archive}: not a readable tar.gz bundle ({exc})") from None


def _cohort(traffic: dict[str, int]) -> str:
    """The candidate's share of the devices, in words."""
    percent = traffic.get("canary")
    return f"{percent}% of devices" if percent else "every device"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None

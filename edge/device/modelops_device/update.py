"""Take the bundle the fleet manifest names for this device, or keep the current one and say why.

`update` reads the fleet manifest (`modelops_contract.fleet`), picks this device's bundle by the
cohort rule, and when it is not the one the device runs: downloads the archive (http, https,
file or a path; at most `max_bytes`), checks its sha256 against the manifest, unpacks it
(regular files and folders only, inside the bundle), checks SHA256SUMS and the signature with
the device's pinned public key, checks the manifest inside is the model the fleet names, opens
the model, and only then switches `current.json` to it in one rename, keeping the bundle it
replaces. Everything before the switch happens in a temporary folder that is removed on any
failure: a refused bundle leaves the device as it was.

A bundle the device ran just before (a rolled-back candidate's stable) is switched back to from
its copy, verified again, without a download.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cryptography.hazmat.primitives.asymmetric import ec
from modelops_contract.bundle import MANIFEST, SIGNATURE_FILE, BundleError, check_sums
from modelops_contract.fleet import (
    F_CANDIDATE,
    F_STABLE,
    FleetBundle,
    FleetManifestError,
    parse_fleet_manifest,
)

from modelops_device import signed
from modelops_device.score import load
from modelops_device.state import (
    BUNDLES,
    CURRENT,
    Current,
    DeviceError,
    Installed,
    locked,
    read_current,
    write_json,
)

MAX_BUNDLE_BYTES = 64 << 20
"""The largest archive a device downloads by default (a bundle is well under 1 MB)."""
MAX_MANIFEST_BYTES = 1 << 20
UNPACKED_PER_ARCHIVE_BYTE = 16
"""An archive may unpack to at most this many times its size (a gzip bomb does not)."""
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Updated:
    """What an update did: `installed` runs now; `changed` says whether it switched."""

    installed: Installed
    changed: bool
    how: str

    def __str__(self) -> str:
        bundle = self.installed
        return f"{self.how}: {bundle.version} ({bundle.track}, sha256 {bundle.sha256[:12]})"


def update(
    fleet: str, *, device_id: str, public_key: Path, state: Path, max_bytes: int = MAX_BUNDLE_BYTES
) -> Updated:
    """Run the bundle the fleet manifest at `fleet` names for `device_id`.

    Raises:
        DeviceError: the manifest or the bundle is unreachable, malformed, too large, not the
            sha256 the manifest gives, tampered or signed with another key; the current bundle
            stays.
    """
    key = signed.public_key_of(public_key.read_bytes(), where=str(public_key))
    try:
        manifest = parse_fleet_manifest(fetch(fleet, max_bytes=MAX_MANIFEST_BYTES))
    except FleetManifestError as exc:
        raise DeviceError(f"the fleet manifest {fleet} is not one to trust: {exc}") from None
    chosen = manifest.bundle_for(device_id)
    track = F_CANDIDATE if manifest.candidate and chosen == manifest.candidate.bundle else F_STABLE
    wanted = Installed(chosen.sha256, chosen.version, chosen.model_hash, track)
    with locked(state):
        current = read_current(state)
        if current is not None and current.installed.sha256 == chosen.sha256:
            if current.installed != wanted:  # the same bundle, now on another track
                write_json(state / CURRENT, Current(wanted, current.previous).to_json())
            return Updated(wanted, changed=False, how="up to date")
        with tempfile.TemporaryDirectory(prefix=".incoming-", dir=state / BUNDLES) as scratch:
            staged = Path(scratch) / "bundle"
            kept = current.previous if current else None
            if kept is not None and kept.sha256 == chosen.sha256:
                shutil.copytree(kept.directory(state), staged, symlinks=True)
                how = "switched back to the bundle kept from before"
            else:
                data = fetch(chosen.url, max_bytes=max_bytes)
                _check_archive(data, chosen)
                unpack(data, staged, max_bytes=len(data) * UNPACKED_PER_ARCHIVE_BYTE)
                how = "installed"
            _check_bundle(staged, chosen, key, key_name=str(public_key))
            _switch(state, staged, wanted, current)
    return Updated(wanted, changed=True, how=how)


def fetch(source: str, *, max_bytes: int) -> bytes:
    """The bytes at a URL (http, https, file) or a path, refusing more than `max_bytes`."""
    try:
        if "://" not in source:
            with Path(source).open("rb") as stream:
                data = stream.read(max_bytes + 1)
        elif source.split("://", 1)[0] in ("http", "https", "file"):
            with urllib.request.urlopen(source, timeout=TIMEOUT_SECONDS) as answer:
                data = answer.read(max_bytes + 1)
        else:
            raise DeviceError(f"unreachable: {source}: only http, https and file URLs are read")
    except urllib.error.HTTPError as exc:
        raise DeviceError(f"unreachable: {source}: HTTP {exc.code} {exc.reason}") from None
    except (OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DeviceError(f"unreachable: {source}: {reason}") from None
    if len(data) > max_bytes:
        raise DeviceError(f"too large: {source} is over {max_bytes} bytes; not taken")
    return data


def _check_archive(data: bytes, chosen: FleetBundle) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != chosen.sha256:
        raise DeviceError(
            f"wrong sha256: {chosen.url} has sha256 {digest}, the fleet manifest says "
            f"{chosen.sha256}; the download was changed or cut short: not taken"
        )


def unpack(data: bytes, into: Path, *, max_bytes: int) -> None:
    """Unpack a bundle archive into `into` (made here): only regular files and folders whose
    paths stay inside it, at most `max_bytes` in all; anything else is refused."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            members = archive.getmembers()
            _check_members(members, max_bytes)
            into.mkdir()
            for member in members:
                target = into.joinpath(*PurePosixPath(member.name).parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                assert source is not None, "a regular file has contents"
                target.write_bytes(source.read())
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DeviceError(f"tampered: the archive is not a readable tar.gz ({exc})") from None


def _check_members(members: list[tarfile.TarInfo], max_bytes: int) -> None:
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise DeviceError(f"tampered: the archive's member {member.name!r} leaves the bundle")
        if not (member.isfile() or member.isdir()):
            raise DeviceError(f"tampered: the archive's member {member.name!r} is not a file")
    if sum(member.size for member in members) > max_bytes:
        raise DeviceError(f"tampered: the archive unpacks to more than {max_bytes} bytes")


def _check_bundle(
    bundle: Path, chosen: FleetBundle, key: ec.EllipticCurvePublicKey, *, key_name: str
) -> None:
    """Sums, signature, the model the fleet names, and a model that opens."""
    try:
        check_sums(bundle)
    except BundleError as exc:
        raise DeviceError(f"tampered: {exc}") from None
    try:
        statement = signed.signed_statement(bundle / SIGNATURE_FILE, key, key_name=key_name)
        signed.check_files(bundle, statement)
    except signed.SignatureError as exc:
        raise DeviceError(str(exc)) from None
    manifest = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
    if (manifest.get("model_hash"), manifest.get("format")) != (chosen.model_hash, chosen.format):
        raise DeviceError(
            f"not the fleet's model: the bundle holds {manifest.get('format')} model "
            f"{manifest.get('model_hash')}, the fleet manifest names {chosen.format} model "
            f"{chosen.model_hash}"
        )
    try:
        load(bundle)
    except (OSError, ValueError) as exc:
        raise DeviceError(f"unusable: the bundle's model does not open here ({exc})") from None


def _switch(state: Path, staged: Path, wanted: Installed, current: Current | None) -> None:
    """Move the verified bundle into place and point `current.json` at it; keep the one it
    replaces, remove any older one."""
    target = wanted.directory(state)
    if target.exists():  # a copy left by an earlier run that failed before its switch
        shutil.rmtree(target)
    staged.rename(target)
    previous = current.installed if current else None
    write_json(state / CURRENT, Current(wanted, previous).to_json())
    keep = {wanted.sha256, previous.sha256 if previous else ""}
    for folder in (state / BUNDLES).iterdir():
        if folder.is_dir() and not folder.name.startswith(".") and folder.name not in keep:
            shutil.rmtree(folder)

"""The fleet manifest devices poll, and the cohort rule devices and the pipeline share.

An edge environment's release is rendered to one JSON document (`manifests/rendered/<env>/
fleet.json`, checked against `fleet.schema.json` beside this module): the stable bundle every
device runs and, during a rollout, a candidate bundle that a percent of the devices take.

- **The cohort.** A device's bucket is `sha256(UTF-8(salt) + b"\\x00" + UTF-8(device_id))`, its
  first 8 bytes as a big-endian unsigned integer, modulo `BUCKETS` (10,000): the experiments'
  rule (`modelops_contract.experiment`), so one implementation serves both. A device takes the
  candidate iff its bucket is below `percent * 100`.
- **Monotone.** The bucket does not depend on the percent, so a device that took the candidate
  at 5 % still takes it at 25 %: raising the percent only adds devices. A new salt reshuffles
  every device (a new rollout population).

The pipeline writes the manifest (`modelops render`); a device parses it with
`parse_fleet_manifest` and picks its bundle with `FleetManifest.bundle_for`. Standard library
only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from modelops_contract.experiment import BUCKETS, bucket_of, unit_digest

SCHEMA_VERSION = 1
"""The manifest's `schema_version`; a device refuses a version it does not know."""
FLEET_FILE = "fleet.json"
"""The file an edge environment renders to, in `manifests/rendered/<env>/`."""
SCHEMA_FILE = "fleet.schema.json"
"""The JSON Schema of the manifest, shipped beside this module."""
PER_PERCENT = BUCKETS // 100
BundleFormat: TypeAlias = Literal["onnx", "native"]
FORMATS: tuple[BundleFormat, ...] = ("onnx", "native")

# The manifest's field names, spelled here only.
F_SCHEMA_VERSION = "schema_version"
F_ENVIRONMENT = "environment"
F_FORMAT = "format"
F_PUBLIC_KEY = "public_key"
F_STABLE = "stable"
F_CANDIDATE = "candidate"
F_VERSION = "version"
F_URL = "url"
F_SHA256 = "sha256"
F_MODEL_HASH = "model_hash"
F_PERCENT = "percent"
F_SALT = "salt"
BUNDLE_FIELDS = (F_VERSION, F_URL, F_SHA256, F_MODEL_HASH, F_FORMAT)
"""A bundle's fields, in the order the manifest writes them."""
TOP_FIELDS = (F_SCHEMA_VERSION, F_ENVIRONMENT, F_FORMAT, F_PUBLIC_KEY, F_STABLE, F_CANDIDATE)
"""The manifest's fields, in the order it writes them."""
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class FleetManifestError(ValueError):
    """A fleet manifest that cannot be trusted: which field, and what is wrong with it."""


def bucket(device_id: str, salt: str) -> int:
    """The device's bucket, 0 to BUCKETS - 1: the same for a device and salt everywhere."""
    if not device_id:
        raise ValueError("a device id is a non-empty string (a stable id the device keeps)")
    return bucket_of(unit_digest(device_id, salt=salt))


def takes_candidate(device_id: str, *, salt: str, percent: int) -> bool:
    """Whether the device is in the candidate's cohort at `percent` (0-100) of the fleet."""
    return bucket(device_id, salt) < percent * PER_PERCENT


@dataclass(frozen=True)
class FleetBundle:
    """A bundle a device may download: where, its archive's sha256, the model it holds."""

    version: str
    url: str
    sha256: str
    model_hash: str
    format: BundleFormat

    def to_json(self) -> dict[str, object]:
        """The bundle's fields in manifest order."""
        return {
            F_VERSION: self.version,
            F_URL: self.url,
            F_SHA256: self.sha256,
            F_MODEL_HASH: self.model_hash,
            F_FORMAT: self.format,
        }


@dataclass(frozen=True)
class Candidate:
    """A bundle being rolled out: the devices whose bucket is below `percent` * 100 take it."""

    bundle: FleetBundle
    percent: int
    salt: str


@dataclass(frozen=True)
class FleetManifest:
    """What every device of an environment should run."""

    environment: str
    format: BundleFormat
    public_key: str
    """The name or URL of the public key bundles are signed for; devices hold it pinned."""
    stable: FleetBundle
    candidate: Candidate | None = None

    def bundle_for(self, device_id: str) -> FleetBundle:
        """The bundle this device runs: the candidate iff it is in the candidate's cohort."""
        candidate = self.candidate
        if candidate is not None and takes_candidate(
            device_id, salt=candidate.salt, percent=candidate.percent
        ):
            return candidate.bundle
        return self.stable

    def to_json(self) -> str:
        """The manifest's text: fixed key order, two-space indent, a final newline."""
        candidate = None
        if self.candidate is not None:
            candidate = {
                **self.candidate.bundle.to_json(),
                F_PERCENT: self.candidate.percent,
                F_SALT: self.candidate.salt,
            }
        document = {
            F_SCHEMA_VERSION: SCHEMA_VERSION,
            F_ENVIRONMENT: self.environment,
            F_FORMAT: self.format,
            F_PUBLIC_KEY: self.public_key,
            F_STABLE: self.stable.to_json(),
            F_CANDIDATE: candidate,
        }
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def parse_fleet_manifest(raw: str | bytes) -> FleetManifest:
    """A fleet manifest from its text, checked field by field.

    Raises:
        FleetManifestError: not JSON, an unknown schema version, or a field missing or wrong
            (named, as in `candidate.percent`).
    """
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise FleetManifestError(f"a fleet manifest is JSON: {exc}") from None
    top = _object(document, "the fleet manifest", TOP_FIELDS)
    if top[F_SCHEMA_VERSION] != SCHEMA_VERSION:
        raise FleetManifestError(
            f"{F_SCHEMA_VERSION}: this device knows version {SCHEMA_VERSION}, the manifest is "
            f"{top[F_SCHEMA_VERSION]!r}: update the device's client before it takes new bundles"
        )
    manifest_format = _format(top[F_FORMAT], F_FORMAT)
    stable = _bundle(top[F_STABLE], F_STABLE, manifest_format)
    candidate = None
    if top[F_CANDIDATE] is not None:
        fields = (*BUNDLE_FIELDS, F_PERCENT, F_SALT)
        raw_candidate = _object(top[F_CANDIDATE], F_CANDIDATE, fields)
        percent = raw_candidate[F_PERCENT]
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 < percent < 100:
            raise FleetManifestError(
                f"{F_CANDIDATE}.{F_PERCENT}: a whole percent from 1 to 99, got {percent!r}"
            )
        salt = _text(raw_candidate[F_SALT], f"{F_CANDIDATE}.{F_SALT}")
        bundle = _bundle(raw_candidate, F_CANDIDATE, manifest_format, extra=(F_PERCENT, F_SALT))
        if bundle.sha256 == stable.sha256:
            raise FleetManifestError(f"{F_CANDIDATE}: the same archive as {F_STABLE}")
        candidate = Candidate(bundle=bundle, percent=percent, salt=salt)
    return FleetManifest(
        environment=_text(top[F_ENVIRONMENT], F_ENVIRONMENT),
        format=manifest_format,
        public_key=_text(top[F_PUBLIC_KEY], F_PUBLIC_KEY),
        stable=stable,
        candidate=candidate,
    )


def _object(value: Any, where: str, fields: tuple[str, ...]) -> dict[str, Any]:
    """`value` as a mapping holding exactly `fields`."""
    if not isinstance(value, dict):
        raise FleetManifestError(f"{where}: an object, got {type(value).__name__}")
    missing = [field for field in fields if field not in value]
    unknown = sorted(set(value) - set(fields))
    if missing or unknown:
        raise FleetManifestError(
            f"{where}: missing {missing}, unknown {unknown}; it holds exactly {list(fields)}"
        )
    return value


def _bundle(
    value: Any, where: str, manifest_format: BundleFormat, *, extra: tuple[str, ...] = ()
) -> FleetBundle:
    raw = _object(value, where, (*BUNDLE_FIELDS, *extra))
    url = _text(raw[F_URL], f"{where}.{F_URL}")
    if not re.match(r"^[a-z][a-z0-9+.-]*://\S+$", url):
        raise FleetManifestError(f"{where}.{F_URL}: an absolute URL, got {url!r}")
    for field in (F_SHA256, F_MODEL_HASH):
        if not isinstance(raw[field], str) or not _HEX64.match(raw[field]):
            raise FleetManifestError(f"{where}.{field}: a sha256 hex digest, got {raw[field]!r}")
    bundle_format = _format(raw[F_FORMAT], f"{where}.{F_FORMAT}")
    if bundle_format != manifest_format:
        raise FleetManifestError(
            f"{where}.{F_FORMAT}: {bundle_format}, but the environment's format is "
            f"{manifest_format}"
        )
    return FleetBundle(
        version=_text(raw[F_VERSION], f"{where}.{F_VERSION}"),
        url=url,
        sha256=raw[F_SHA256],
        model_hash=raw[F_MODEL_HASH],
        format=bundle_format,
    )


def _format(value: Any, where: str) -> BundleFormat:
    for known in FORMATS:
        if value == known:
            return known
    raise FleetManifestError(f"{where}: one of {list(FORMATS)}, got {value!r}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FleetManifestError(f"{where}: a non-empty string, got {value!r}")
    return value

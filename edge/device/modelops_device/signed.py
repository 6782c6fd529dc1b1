"""Check a bundle's signature offline, with the `cryptography` package only.

The exporter signs with OpenSSF model-signing (1.1.1, an elliptic-curve key the user owns); a
device must not need that library, Sigstore or a network, so this reads the file it writes,
`model.sig`, directly. That file is a Sigstore bundle (JSON):

- `dsseEnvelope`: a DSSE envelope. `payloadType` is in-toto's JSON type; `payload` is the
  base64 of an in-toto statement; `signatures[0].sig` is the base64 of a DER ECDSA signature
  over DSSE's pre-authentication encoding (PAE) of the type and the payload, with SHA-256,
  SHA-384 or SHA-512 for a P-256, P-384 or P-521 key.
- `verificationMaterial.publicKey.hint`: the hex sha256 of the signer's public key (PEM,
  SubjectPublicKeyInfo), which tells a wrong key from a tampered signature.
- The statement's predicate (`https://model_signing/signature/v1.0`) lists every signed file
  under `resources` ({name, algorithm sha256, digest}) and how they were hashed
  (`serialization`: method `files`, hash type sha256, the paths left out); its one subject's
  digest is the sha256 of the files' digests concatenated in the listed order.

A bundle passes when the signature verifies with the device's pinned public key and the
directory holds exactly the files the statement lists (the signature file aside), with those
digests. Each refusal names its cause: unsigned, wrong key, tampered signature, or the files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from modelops_contract.bundle import SIGNATURE_FILE, file_problems

SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT = "https://in-toto.io/Statement/v1"
PREDICATE = "https://model_signing/signature/v1.0"
_CURVE_HASHES: Mapping[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


class SignatureError(Exception):
    """The bundle is not signed by the device's key, or its files are not what was signed."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1's pre-authentication encoding: what the signature is over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def public_key_of(pem: bytes, *, where: str) -> ec.EllipticCurvePublicKey:
    """An elliptic-curve public key from PEM, on a curve model-signing signs with."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise SignatureError(f"{where}: not a PEM public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVE_HASHES:
        raise SignatureError(
            f"{where}: not a P-256, P-384 or P-521 public key, which the bundles are signed with"
        )
    return key


def key_hint(key: ec.EllipticCurvePublicKey) -> str:
    """The hex sha256 of the key's PEM, as model-signing records the signer's key."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def verify(directory: Path, public_key: Path) -> None:
    """Refuse `directory` unless `model.sig` is the signature of `public_key` over its files.

    Raises:
        SignatureError: unsigned, signed with another key, a signature or statement that was
            changed, or a file missing, extra or changed since signing (each named).
    """
    key = public_key_of(public_key.read_bytes(), where=str(public_key))
    statement = signed_statement(directory / SIGNATURE_FILE, key, key_name=str(public_key))
    check_files(directory, statement)


def signed_statement(
    signature_file: Path, key: ec.EllipticCurvePublicKey, *, key_name: str
) -> Mapping[str, Any]:
    """The in-toto statement of `signature_file`, once its signature verified with `key`."""
    if not signature_file.is_file():
        raise SignatureError(f"unsigned: no {signature_file.name} in {signature_file.parent}")
    where = f"tampered signature: {signature_file}"
    try:
        document = json.loads(signature_file.read_bytes())
        envelope = document["dsseEnvelope"]
        hint = document["verificationMaterial"]["publicKey"]["hint"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signature = base64.b64decode(envelope["signatures"][0]["sig"], validate=True)
        payload_type = str(envelope["payloadType"])
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as exc:
        raise SignatureError(f"{where} is not a model-signing signature ({exc!r})") from None
    if document.get("mediaType") != SIGSTORE_BUNDLE:
        raise SignatureError(f"{where}: media type {document.get('mediaType')!r}")
    if hint != key_hint(key):
        raise SignatureError(
            f"wrong key: {signature_file} was signed with the key whose sha256 is {hint}, not "
            f"with {key_name} ({key_hint(key)}); use the fleet's public key, or re-export the "
            "bundle with its private key"
        )
    if payload_type != IN_TOTO_PAYLOAD:
        raise SignatureError(f"{where}: payload type {payload_type!r}, not {IN_TOTO_PAYLOAD}")
    try:
        key.verify(signature, pae(payload_type, payload), ec.ECDSA(_CURVE_HASHES[key.curve.name]()))
    except InvalidSignature:
        raise SignatureError(
            f"{where}: the signature does not verify with {key_name} over its statement "
            "(the signature or the statement was changed after signing)"
        ) from None
    try:
        return _statement(payload, where)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SignatureError(f"{where}: a statement this device cannot read ({exc!r})") from None


def _statement(payload: bytes, where: str) -> Mapping[str, Any]:
    """The signed statement, checked to be model-signing's file list with sha256 digests."""
    statement: dict[str, Any] = json.loads(payload)
    predicate = statement.get("predicate", {})
    serialization_ = predicate.get("serialization", {})
    if (
        statement.get("_type") != IN_TOTO_STATEMENT
        or statement.get("predicateType") != PREDICATE
        or serialization_.get("method") != "files"
        or serialization_.get("hash_type") != "sha256"
    ):
        raise SignatureError(
            f"{where}: a statement this device cannot check ({PREDICATE}, files hashed with "
            f"sha256 expected; got {statement.get('predicateType')!r}, {serialization_!r})"
        )
    ignored = set(serialization_.get("ignore_paths", []))
    if not ignored <= {SIGNATURE_FILE}:
        raise SignatureError(f"{where}: it leaves files unsigned: {sorted(ignored)}")
    resources = predicate.get("resources", [])
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    if [subject["digest"]["sha256"] for subject in statement.get("subject", [])] != [root]:
        raise SignatureError(f"{where}: its subject's digest is not that of its files")
    return statement


def check_files(directory: Path, statement: Mapping[str, Any]) -> None:
    """Refuse unless `directory` holds exactly the statement's files, with its digests."""
    signed = {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}
    links = sorted(
        p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_symlink()
    )
    present = {
        path.relative_to(directory).as_posix()
        for path in directory.rglob("*")
        if path.is_file() and not path.is_symlink()
    } - {SIGNATURE_FILE}
    problems = [f"a link: {name}" for name in links]
    problems += file_problems(directory, signed, present, unlisted="not signed")
    if problems:
        raise SignatureError(
            f"tampered: {directory} is not what was signed ({'; '.join(problems)}); do not use "
            "it: download it again, or export it again"
        )

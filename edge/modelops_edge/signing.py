"""Sign a bundle directory with OpenSSF model-signing and the user's elliptic-curve key;
verify it offline with the public key. The signature file itself is left out of what is signed."""

from __future__ import annotations

from pathlib import Path

from modelops_contract.bundle import SIGNATURE_FILE


class SignatureRefusedError(Exception):
    """The signature does not verify with this public key, or the files changed since."""


def _hashing() -> object:
    from model_signing import hashing

    config = hashing.Config()  # type: ignore[no-untyped-call]
    return config.set_ignored_paths(paths=[SIGNATURE_FILE], ignore_git_paths=False)


def sign(directory: Path, *, private_key: Path) -> None:
    """Write `directory/model.sig` over every other file of `directory`."""
    from model_signing import signing

    config = signing.Config().use_elliptic_key_signer(  # type: ignore[no-untyped-call]
        private_key=private_key
    )
    config.set_hashing_config(_hashing()).sign(directory, directory / SIGNATURE_FILE)  # type: ignore[arg-type]


def verify(directory: Path, *, public_key: Path) -> None:
    """Check `directory/model.sig` with `public_key`, offline.

    Raises:
        SignatureRefusedError: no signature, a signature by another key, or changed files.
    """
    from model_signing import verifying

    signature = directory / SIGNATURE_FILE
    if not signature.is_file():
        raise SignatureRefusedError(f"{directory}: no {SIGNATURE_FILE}; the bundle is unsigned")
    config = verifying.Config().use_elliptic_key_verifier(  # type: ignore[no-untyped-call]
        public_key=public_key
    )
    try:
        config.set_hashing_config(_hashing()).verify(directory, signature)  # type: ignore[arg-type]
    except Exception as exc:  # model-signing raises ValueError and others for a bad signature
        raise SignatureRefusedError(
            f"{directory}: the signature does not verify with {public_key}: {exc}"
        ) from None

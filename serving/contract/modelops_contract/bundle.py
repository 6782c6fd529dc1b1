"""The edge bundle's layout: the names the exporter writes, the pipeline reads and a device checks.

A bundle is a directory (shipped as a deterministic tar.gz with `manifest.json` at its root):

- `manifest.json`: what the bundle is (`MANIFEST_FIELDS`): the model's content hash, the data
  version, the git commit, the format, the converter versions, whether it is signed;
- `encoding.json`: the tables that turn raw rows into the model's inputs (categories to codes or
  one-hot columns, missing and unseen values, imputation and scaling);
- `signature.json`: the raw input columns and their kinds, the classes and the positive one;
- `parity.json`: the bundle's scores against the reference pipeline's (the export's gate);
- `profile.json`: the model's reference profile, as training wrote it beside the model: the
  bins a device counts its rows in (per feature, and for the score), so it reports drift
  without sending raw rows (`modelops_contract.edge`);
- the model: `model.onnx` (format onnx), or `model.so` with its C sources under `model-c/`
  (format native);
- `SHA256SUMS`: the sha256 of every other file (`sha256sum -c` reads it);
- `model.sig`: the OpenSSF model-signing signature over the directory (absent when unsigned).

Standard library only: the exporter's environment and a device's both import it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Set
from pathlib import Path
from typing import Final

MANIFEST: Final = "manifest.json"
ENCODING: Final = "encoding.json"
SIGNATURE: Final = "signature.json"
PARITY: Final = "parity.json"
PROFILE: Final = "profile.json"
"""The model directory's reference profile, copied byte for byte."""
SUMS: Final = "SHA256SUMS"
SIGNATURE_FILE: Final = "model.sig"
"""model-signing's signature (a Sigstore bundle); covers every file but itself."""

FORMAT_ONNX: Final = "onnx"
FORMAT_NATIVE: Final = "native"
FORMATS: Final = (FORMAT_ONNX, FORMAT_NATIVE)
MODEL_FILES: Final = {FORMAT_ONNX: "model.onnx", FORMAT_NATIVE: "model.so"}
"""The file a device loads, per format."""
NATIVE_SOURCES: Final = "model-c"
"""Format native: the generated C sources and header, to compile for another platform."""

MANIFEST_FIELDS: Final = (
    "name",
    "format",
    "model_hash",
    "model_kind",
    "data_version",
    "git_commit",
    "model_file",
    "converters",
    "platform",
    "signed",
    "parity_tolerance",
    "threshold",
)
"""The manifest's keys. `name`, `format` and `model_hash` are what a fleet manifest reads;
`model_hash` is the model directory's content hash as releases spell it; `platform` is the
platform the native library was built for (empty for onnx)."""

INPUTS_AS_FLOAT32: Final = "inputs_as_float32"
"""`encoding.json`'s flag: the model compares its inputs rounded to float32 (scikit-learn's
decision trees cast X to float32 before walking a tree), so a device rounds them alike, or a
value between a float64 threshold and its float32 neighbour takes the other branch."""

ONE_HOT: Final = "one_hot"
ORDINAL: Final = "ordinal"
"""How `encoding.json` encodes a categorical column: one column per category, or one code."""


class BundleError(Exception):
    """A bundle directory that is not what its SHA256SUMS says."""


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def summed_files(directory: Path) -> list[str]:
    """The files SHA256SUMS covers: every file but itself and the signature, as sorted posix
    paths relative to `directory`."""
    skipped = {SUMS, SIGNATURE_FILE}
    return sorted(
        path.relative_to(directory).as_posix()
        for path in directory.rglob("*")
        if path.is_file() and path.relative_to(directory).as_posix() not in skipped
    )


def sums_text(directory: Path) -> str:
    """SHA256SUMS for `directory` in `sha256sum`'s format (two spaces, text mode)."""
    return "".join(f"{sha256_file(directory / name)}  {name}\n" for name in summed_files(directory))


def parse_sums(text: str) -> dict[str, str]:
    """SHA256SUMS as {file: sha256}; a malformed line is refused with its number."""
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        digest, separator, name = line.partition("  ")
        if not separator or len(digest) != 64 or not name:
            raise BundleError(f"{SUMS} line {number} is not '<sha256>  <file>': {line!r}")
        sums[name] = digest
    return sums


def file_problems(
    directory: Path, expected: Mapping[str, str], present: Set[str], *, unlisted: str
) -> list[str]:
    """How the files `present` in `directory` differ from `expected` ({file: sha256}): each
    missing, each there but not expected (`unlisted: file`), each changed; sorted by kind."""
    problems = [f"missing: {name}" for name in sorted(set(expected) - present)]
    problems += [f"{unlisted}: {name}" for name in sorted(present - set(expected))]
    problems += [
        f"changed: {name}"
        for name in sorted(present & set(expected))
        if sha256_file(directory / name) != expected[name]
    ]
    return problems


def check_sums(directory: Path) -> None:
    """Refuse a bundle whose files are not exactly those SHA256SUMS lists, with those bytes.

    Raises:
        BundleError: SHA256SUMS is missing, or a file it lists is missing or changed, or a file
            is there that it does not list; the message names every such file.
    """
    sums_file = directory / SUMS
    if not sums_file.is_file():
        raise BundleError(f"{directory}: no {SUMS}; not a bundle, or an incomplete copy of one")
    expected = parse_sums(sums_file.read_text(encoding="utf-8"))
    present = set(summed_files(directory))
    problems = file_problems(directory, expected, present, unlisted=f"not listed in {SUMS}")
    if problems:
        raise BundleError(
            f"{directory}: the bundle is not what its {SUMS} says ({'; '.join(problems)}); "
            "do not use it: download it again, or export it again"
        )

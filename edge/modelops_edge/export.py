"""Build a bundle: convert, measure parity through the device client, sum, sign, archive.

Everything is built in a temporary directory beside the output and renamed into place at the
end, so a refused export (a format that cannot hold the model, parity outside tolerance, no key)
leaves nothing under the output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import modelops_device
import numpy as np
import pandas as pd
import skops.io
from modelops_contract.bundle import (
    ENCODING,
    MANIFEST,
    PARITY,
    PROFILE,
    SIGNATURE,
    SUMS,
    check_sums,
    sums_text,
)

from modelops_edge import archive, convert, signing, tables
from modelops_edge.parity import Parity, compare

KEY_ENV = "MODELOPS_SIGNING_KEY"
"""The environment variable naming the private key file when --key is not given."""


class ExportRefusedError(Exception):
    """The export did not publish: the message says why and how to fix it; `parity` holds the
    figures when it was parity that refused (the pull-request gate records them)."""

    def __init__(self, message: str, parity: Parity | None = None) -> None:
        super().__init__(message)
        self.parity = parity


@dataclass(frozen=True)
class Exported:
    """A published bundle."""

    directory: Path
    archive: Path
    archive_sha256: str
    parity: Parity
    signed: bool


def _json(data: object) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def no_key_message() -> str:
    """What to do without a signing key."""
    return (
        f"no signing key: give --key PATH or set {KEY_ENV} to your elliptic-curve private key "
        "(make one: `openssl ecparam -name prime256v1 -genkey -noout -out edge-signing.key` and "
        "`openssl ec -in edge-signing.key -pubout -out edge-signing.pub`; keep the private key "
        "outside the repository, in a secret store, and publish the .pub for devices; "
        "runbooks/edge.md, Signing keys), or --unsigned to publish an unsigned bundle"
    )


def run(request: dict[str, Any]) -> Exported:
    """Export as `request` (the pipeline's `modelops export` writes it) says.

    Raises:
        ExportRefusedError: the format cannot hold the model, parity fails, or no key was given.
    """
    # Unsigned means unsigned, whatever the environment holds (the gate exports unsigned).
    key = None if request["unsigned"] else request.get("key") or os.environ.get(KEY_ENV) or None
    if key is None and not request["unsigned"]:
        raise ExportRefusedError(no_key_message())
    if key is not None and not Path(key).is_file():
        raise ExportRefusedError(f"signing key {key}: no such file")
    pipeline = skops.io.load(request["model_file"], trusted=request["trusted_types"])
    preprocess, classifier = tables.split(pipeline)
    fmt, facts = request["format"], request["manifest"]
    reason = convert.refusal(classifier, fmt)
    if reason:
        raise ExportRefusedError(f"--format {fmt} cannot hold this model: {reason}")
    out = Path(request["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{request['name']}-{fmt}-{facts['model_hash'][:12]}"
    with tempfile.TemporaryDirectory(prefix=f".{stem}-", dir=out) as scratch:
        bundle = Path(scratch) / stem
        bundle.mkdir()
        parity = _build(bundle, request, pipeline, preprocess, classifier, signed=key is not None)
        if key is not None:
            signing.sign(bundle, private_key=Path(key))
        check_sums(bundle)
        data = archive.archive_bytes(bundle)
        staged = Path(scratch) / f"{stem}.tar.gz"
        staged.write_bytes(data)
        target = out / stem
        if target.exists():
            shutil.rmtree(target)
        bundle.rename(target)
        staged.replace(out / staged.name)
    return Exported(
        target, out / staged.name, hashlib.sha256(data).hexdigest(), parity, key is not None
    )


def _build(
    bundle: Path,
    request: dict[str, Any],
    pipeline: Any,
    preprocess: Any,
    classifier: Any,
    *,
    signed: bool,
) -> Parity:
    """Write every file but the signature; refuse unless parity passes."""
    encoding = tables.encoding_tables(preprocess, classifier)
    converted = convert.convert(
        classifier, request["format"], width=int(encoding["width"]), directory=bundle
    )
    classes = [str(label) for label in classifier.classes_]
    positive = classes.index(str(request["positive_label"]))
    signature = {
        "inputs": [{"name": c["name"], "kind": c["kind"]} for c in encoding["columns"]],
        "classes": classes,
        "positive_label": classes[positive],
        "positive_index": positive,
        "output": "probability of the positive class",
    }
    manifest = {
        **request["manifest"],
        "name": request["name"],
        "format": request["format"],
        "model_file": converted.model_file,
        "converters": converted.converters,
        "platform": converted.platform,
        "build": converted.build,
        "signed": signed,
        "parity_tolerance": request["tolerance"],
        "threshold": request["threshold"],
    }
    for name, document in ((ENCODING, encoding), (SIGNATURE, signature), (MANIFEST, manifest)):
        (bundle / name).write_bytes(_json(document))
    shutil.copyfile(request["profile_file"], bundle / PROFILE)  # the bins a device counts in
    (bundle / SUMS).write_text(sums_text(bundle), encoding="utf-8")  # what load() checks
    parity = measure(bundle, pipeline, request, positive=positive)
    (bundle / PARITY).write_bytes(_json(parity.to_dict()))
    if not parity.passed:
        worst = parity.worst_row
        raise ExportRefusedError(
            f"{parity.summary()} (worst row {worst}); nothing was published. The converted "
            f"model does not score as the trained pipeline does: try the other --format "
            "(runbooks/edge.md, A parity refusal)",
            parity,
        )
    (bundle / SUMS).write_text(sums_text(bundle), encoding="utf-8")
    return parity


def measure(bundle: Path, pipeline: Any, request: dict[str, Any], *, positive: int) -> Parity:
    """Score the test rows and the edge cases with the device client and with the pipeline."""
    test, edge = request["rows"]["test"], request["rows"]["edge"]
    rows = {name: list(test[name]) + list(edge[name]) for name in test}
    scorer = modelops_device.load(bundle)
    ours = scorer.predict_proba(rows)
    frame = pd.DataFrame(
        {
            name: pd.Series(values, dtype=object if name in request["categorical"] else float)
            for name, values in rows.items()
        }
    )
    reference = np.asarray(pipeline.predict_proba(frame))[:, positive]
    edge_rows = len(next(iter(edge.values()), []))
    return compare(
        ours,
        reference,
        edge_rows=edge_rows,
        tolerance=float(request["tolerance"]),
        threshold=float(request["threshold"]),
    )

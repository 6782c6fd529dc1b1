"""The server serves only the published model version, and trusts only the skops types it reviewed.

Each refused directory is started under the real microservice with the expected hash a
manifest would give it (the `model_hash` graph parameter, or MODEL_HASH): the server exits
before it is ever ready, and its log says why.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import skops.io
import yaml
from modelops_serving.artifact import ArtifactError, content_hash, read_artifact
from modelops_serving.launch import Server
from modelops_serving.skops_types import REVIEWED_SKOPS_TYPES

from tests.serving.conftest import SERVING_BIN


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / "model"))


def _refused(model: Path, tmp_path: Path, *, model_hash: str = "", env: str = "") -> str:
    """Start the server on `model`; it must exit without becoming ready. Returns its log."""
    log = tmp_path / "server.log"
    server = Server(
        SERVING_BIN,
        model,
        workers=1,
        log_file=log,
        model_hash=model_hash,
        extra_env={"MODEL_HASH": env} if env else {},
    )
    with pytest.raises(RuntimeError, match="the server exited with"):
        server.start()
    return log.read_text(errors="replace")


def _flip_a_byte(path: Path) -> None:
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))


@pytest.mark.parametrize(
    ("tamper", "given_as"),
    [
        ("a changed byte in the model file", "parameter"),
        ("a changed byte in the model card", "parameter"),
        ("an extra file", "MODEL_HASH"),
    ],
)
def test_a_tampered_model_directory_is_refused_and_the_log_has_both_hashes(
    model_dir: Path, tmp_path: Path, tamper: str, given_as: str
) -> None:
    published = content_hash(model_dir)
    model = _copy(model_dir, tmp_path)
    if tamper == "a changed byte in the model file":
        _flip_a_byte(model / "model.skops")
    elif tamper == "a changed byte in the model card":
        card = model / "modelops.json"
        card.write_text(card.read_text().replace('"data_version": "', '"data_version": "0'))
    else:
        (model / "sitecustomize.py").write_text("import os\n")
    given = {"model_hash": published} if given_as == "parameter" else {"env": published}
    log = _refused(model, tmp_path, **given)
    assert f"content hash {content_hash(model)} does not match the expected {published}" in log
    assert "ModelLoadError" in log


def test_skops_types_listed_in_the_mlmodel_file_are_not_trusted(
    model_dir: Path, tmp_path: Path
) -> None:
    """A model file that needs `os.system`, and an MLmodel that says to trust it."""
    model = _copy(model_dir, tmp_path)
    pipeline = skops.io.load(model / "model.skops", trusted=sorted(REVIEWED_SKOPS_TYPES))
    pipeline.audit_hook = __import__("os").system
    (model / "model.skops").write_bytes(skops.io.dumps(pipeline))
    mlmodel = yaml.safe_load((model / "MLmodel").read_text())
    mlmodel["flavors"]["sklearn"]["skops_trusted_types"].append("posix.system")
    (model / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    # The publisher hashed the directory as it is: the hash check passes, skops must refuse.
    log = _refused(model, tmp_path, model_hash=content_hash(model))
    assert "content hash verified" in log
    assert "MLmodel lists skops types this server does not trust: posix.system" in log
    assert "Untrusted types found in the file: ['posix.system']" in log


def test_the_expected_hash_must_be_a_full_sha256(model_dir: Path) -> None:
    short = content_hash(model_dir)[:12]  # a model version, not its hash
    with pytest.raises(ArtifactError, match="must be a full sha256 hex digest"):
        read_artifact(model_dir, expected_hash=short)


def test_the_hash_is_of_what_is_loaded(model_dir: Path) -> None:
    artifact = read_artifact(model_dir, expected_hash=content_hash(model_dir))
    assert artifact.model_bytes == (model_dir / "model.skops").read_bytes()
    assert artifact.content_hash == content_hash(model_dir)

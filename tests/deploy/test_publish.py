"""Publishing: a model is copied once to an address made of its content hash, never overwritten."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import fsspec
import pytest

from modelops.errors import PublishError
from modelops.identity import content_hash
from modelops.releases.publish import is_object_store, publish
from tests.support import REPO_ROOT

SERVING_PYTHON = REPO_ROOT / "serving" / ".venv" / "bin" / "python"


@pytest.fixture
def model_dir(trained_models: list[Path], tmp_path: Path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(trained_models[0] / "models" / "model", copy)
    return copy


def test_a_local_store_holds_the_model_under_its_content_hash(
    model_dir: Path, tmp_path: Path
) -> None:
    uri, digest = publish(model_dir, store="model-store", name="churn", root=tmp_path)
    assert uri == f"model-store/churn/{digest}"
    published = tmp_path / uri
    assert content_hash(published) == digest == content_hash(model_dir)
    assert sorted(p.name for p in published.iterdir()) == sorted(
        p.name for p in model_dir.iterdir()
    )
    assert not list((tmp_path / "model-store" / "churn").glob(".*")), "no staging left behind"


def test_publishing_the_same_model_again_reuses_it(model_dir: Path, tmp_path: Path) -> None:
    first = publish(model_dir, store="model-store", name="churn", root=tmp_path)
    stamp = (tmp_path / first[0] / "MLmodel").stat().st_mtime_ns
    assert publish(model_dir, store="model-store", name="churn", root=tmp_path) == first
    assert (tmp_path / first[0] / "MLmodel").stat().st_mtime_ns == stamp, "not rewritten"


def test_a_changed_model_gets_a_new_address_and_the_old_one_stays(
    model_dir: Path, tmp_path: Path
) -> None:
    old_uri, old = publish(model_dir, store="model-store", name="churn", root=tmp_path)
    with (model_dir / "requirements.txt").open("a") as extra:
        extra.write("# retrained\n")
    new_uri, new = publish(model_dir, store="model-store", name="churn", root=tmp_path)
    assert new != old
    assert new_uri != old_uri
    assert content_hash(tmp_path / old_uri) == old, "the published version is immutable"


def test_a_corrupted_address_is_refused_not_overwritten(model_dir: Path, tmp_path: Path) -> None:
    uri, _ = publish(model_dir, store="model-store", name="churn", root=tmp_path)
    (tmp_path / uri / "MLmodel").write_text("tampered")
    with pytest.raises(PublishError, match="does not hash to its name"):
        publish(model_dir, store="model-store", name="churn", root=tmp_path)
    assert (tmp_path / uri / "MLmodel").read_text() == "tampered", "left for a person to inspect"


def test_an_absolute_or_file_uri_store_works_too(model_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "bucket"
    uri, digest = publish(model_dir, store=f"file://{store}", name="churn", root=tmp_path / "x")
    assert (store / "churn" / digest / "MLmodel").is_file()
    assert uri == f"file://{store}/churn/{digest}"


def test_a_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PublishError, match="no trained model"):
        publish(tmp_path / "empty", store="model-store", name="churn", root=tmp_path)


def test_an_object_store_gets_the_files_and_a_completion_marker(model_dir: Path) -> None:
    store = f"memory://bucket-{uuid.uuid4().hex}/models"
    uri, digest = publish(model_dir, store=store, name="churn", root=Path("/nonexistent"))
    assert uri == f"{store}/churn/{digest}"
    memory = fsspec.filesystem("memory")
    uploaded = sorted(Path(p).name for p in memory.find(uri))
    assert uploaded == sorted(p.name for p in model_dir.iterdir())
    assert memory.cat(f"{store}/churn/.published/{digest}") == uri.encode()


def test_an_interrupted_upload_is_replaced_and_a_complete_one_reused(model_dir: Path) -> None:
    store = f"memory://bucket-{uuid.uuid4().hex}/models"
    digest = content_hash(model_dir)
    memory = fsspec.filesystem("memory")
    memory.pipe(f"{store}/churn/{digest}/MLmodel", b"half")  # no marker: never completed
    uri, _ = publish(model_dir, store=store, name="churn", root=Path("/nonexistent"))
    assert memory.cat(f"{uri}/MLmodel") == (model_dir / "MLmodel").read_bytes()
    memory.pipe(f"{uri}/extra", b"x")
    publish(model_dir, store=store, name="churn", root=Path("/nonexistent"))
    assert memory.exists(f"{uri}/extra"), "a completed upload is never touched again"


def test_a_store_without_its_filesystem_package_says_what_to_install(model_dir: Path) -> None:
    with pytest.raises(PublishError, match="add its fsspec package"):
        publish(model_dir, store="nosuchproto://bucket", name="churn", root=Path())


def test_only_uris_with_a_scheme_other_than_file_are_object_stores() -> None:
    assert is_object_store("s3://bucket/models")
    assert is_object_store("gs://b")
    assert not is_object_store("model-store")
    assert not is_object_store("file:///srv/models")


@pytest.mark.skipif(not SERVING_PYTHON.is_file(), reason="serving/.venv is not installed")
def test_the_server_computes_the_same_hash_as_the_publisher(model_dir: Path) -> None:
    served = subprocess.run(
        [
            str(SERVING_PYTHON),
            "-c",
            "import sys; from pathlib import Path; from modelops_serving.artifact import "
            "content_hash; print(content_hash(Path(sys.argv[1])))",
            str(model_dir),
        ],
        cwd=REPO_ROOT / "serving",
        capture_output=True,
        text=True,
        check=True,
    )
    assert served.stdout.strip() == content_hash(model_dir)

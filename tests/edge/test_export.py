"""`modelops export` end to end: real conversions (Treelite + TL2cgen + gcc, skl2onnx), real
runtimes (the compiled library through ctypes, onnxruntime), real signatures (model-signing).

The bundle's scores are those of `modelops_device`, the code a device runs; the reference is
the trained pipeline. One export per format and model is shared by the tests of a module.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.cli import main
from modelops.identity import content_hash
from tests.edge.conftest import EDGE_VENV


def _modelops(root: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), contextlib.chdir(root):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _edge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EDGE_VENV / "bin" / "modelops-edge"), *args], capture_output=True, text=True
    )


def _only_bundle(out: Path) -> Path:
    (bundle,) = [path for path in out.iterdir() if path.is_dir()]
    return bundle


@pytest.fixture(scope="module")
def native(edge_project: Path, key_pair: tuple[Path, Path]) -> Path:
    """The default model (HistGradientBoosting, native categorical splits), native, signed."""
    out = edge_project / "native-bundles"
    code, printed, err = _modelops(
        edge_project, "export", "--format", "native", "--out", str(out), "--key", str(key_pair[0])
    )
    assert code == 0, err
    assert "parity pass: " in printed
    return _only_bundle(out)


def test_native_export_is_exact_with_native_categorical_splits(native: Path) -> None:
    parity = json.loads((native / "parity.json").read_text())
    assert parity["passed"]
    assert parity["disagreements"] == 0
    assert parity["max_abs_diff"] < 1e-12, "the compiled trees compute what scikit-learn does"
    assert parity["test_rows"] == 600, parity
    assert parity["edge_rows"] > 60, parity
    manifest = json.loads((native / "manifest.json").read_text())
    assert manifest["format"] == "native"
    assert manifest["signed"] is True
    assert manifest["platform"].startswith("linux-")
    assert len(manifest["model_hash"]) == 64
    assert native.name.endswith(manifest["model_hash"][:12])
    assert (native / "model-c" / "header.h").is_file(), "sources ship beside the library"


def test_the_archive_is_deterministic_with_the_manifest_at_its_root(native: Path) -> None:
    archive = native.parent / f"{native.name}.tar.gz"
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    names = [member.name for member in members]
    assert "manifest.json" in names
    assert "model.sig" in names
    assert names == sorted(names)
    assert {(m.mtime, m.uid, m.gid) for m in members} == {(0, 0, 0)}
    rebuilt = subprocess.run(
        [
            str(EDGE_VENV / "bin" / "python"),
            "-c",
            "import sys; from pathlib import Path; "
            "from modelops_edge.archive import archive_bytes; "
            "sys.stdout.buffer.write(archive_bytes(Path(sys.argv[1])))",
            str(native),
        ],
        capture_output=True,
        check=True,
    ).stdout
    assert rebuilt == archive.read_bytes(), "the same bundle makes the same bytes"


def test_the_signature_verifies_offline_with_the_public_key(
    native: Path, key_pair: tuple[Path, Path]
) -> None:
    done = _edge("verify", str(native), "--public-key", str(key_pair[1]))
    assert done.returncode == 0, done.stderr


def test_a_wrong_key_is_refused(native: Path, tmp_path: Path) -> None:
    subprocess.run(
        [
            "openssl",
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            str(tmp_path / "other.key"),
        ],
        check=True,
    )
    subprocess.run(
        [
            "openssl",
            "ec",
            "-in",
            str(tmp_path / "other.key"),
            "-pubout",
            "-out",
            str(tmp_path / "other.pub"),
        ],
        check=True,
        capture_output=True,
    )
    done = _edge("verify", str(native), "--public-key", str(tmp_path / "other.pub"))
    assert done.returncode == 1
    assert "the signature does not verify with" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (
            lambda b: (b / "encoding.json").write_bytes((b / "encoding.json").read_bytes() + b" "),
            "changed: encoding.json",
        ),
        (lambda b: (b / "extra.txt").write_text("hi"), "not listed in SHA256SUMS: extra.txt"),
        (lambda b: (b / "model-c" / "header.h").unlink(), "missing: model-c/header.h"),
    ],
    ids=["changed-byte", "extra-file", "missing-file"],
)
def test_a_tampered_bundle_is_refused_naming_the_file(
    native: Path, tmp_path: Path, tamper: Any, named: str, key_pair: tuple[Path, Path]
) -> None:
    copy = Path(shutil.copytree(native, tmp_path / native.name))
    tamper(copy)
    done = _edge("verify", str(copy), "--public-key", str(key_pair[1]))
    assert done.returncode == 1
    assert named in done.stderr, done.stderr
    scored = _score_on_device(copy, {})
    assert scored.returncode != 0, "a device refuses it too"
    assert named in scored.stderr, "a device refuses it too"


def _score_on_device(bundle: Path, rows: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Score `rows` with modelops_device in a fresh interpreter; also report what it imported."""
    program = (
        "import json, sys; from pathlib import Path; import modelops_device; "
        "scorer = modelops_device.load(Path(sys.argv[1])); "
        "p = scorer.predict_proba(json.loads(sys.argv[2])); "
        "heavy = sorted(m for m in ('sklearn', 'pandas', 'scipy') if m in sys.modules); "
        "print(json.dumps({'p': p.tolist(), 'heavy': heavy}))"
    )
    return subprocess.run(
        [str(EDGE_VENV / "bin" / "python"), "-c", program, str(bundle), json.dumps(rows)],
        capture_output=True,
        text=True,
    )


def test_the_device_client_scores_without_scikit_learn_pandas_or_scipy(native: Path) -> None:
    rows = {
        "plan": ["basic", None],
        "contract": ["one-year", "never-seen"],
        "payment_method": ["credit_card", None],
        "region": ["north", None],
        "paperless_billing": ["yes", None],
        "age": [40.0, None],
        "tenure_months": [12.0, None],
        "monthly_charges": [70.0, None],
        "total_charges": [800.0, None],
        "num_products": [2.0, None],
        "support_calls_90d": [1.0, None],
        "avg_session_minutes": [10.0, None],
        "days_since_last_login": [3.0, None],
        "satisfaction_score": [4.0, None],
    }
    done = _score_on_device(native, rows)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["heavy"] == [], "a device has no scikit-learn, pandas or scipy"
    assert all(0.0 <= p <= 1.0 for p in answer["p"])


def test_onnx_of_native_categorical_splits_is_refused_naming_cause_and_fix(
    edge_project: Path,
) -> None:
    out = edge_project / "refused"
    code, _, err = _modelops(
        edge_project, "export", "--format", "onnx", "--unsigned", "--out", str(out)
    )
    assert code == 1
    assert "onnx/sklearn-onnx#1051" in err, err
    assert "--format native" in err, err
    assert "train.model.native_categorical: false" in err
    assert not out.exists() or not any(out.iterdir()), "a refused export writes nothing"


def test_without_a_key_export_says_how_to_make_one(
    edge_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELOPS_SIGNING_KEY", raising=False)
    out = edge_project / "keyless"
    code, _, err = _modelops(edge_project, "export", "--format", "native", "--out", str(out))
    assert code == 1
    assert "openssl ecparam -name prime256v1" in err, err
    assert "--unsigned" in err, err
    assert not out.exists() or not any(out.iterdir())


@pytest.fixture(scope="module")
def logistic(edge_project: Path) -> Path:
    """The project retrained as logistic regression (one-hot, imputed, scaled)."""
    root = edge_project.parent / "logistic"
    shutil.copytree(edge_project, root, symlinks=True)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"]["model"] = {"kind": "logistic_regression"}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    code, _, err = _modelops(root, "train")
    assert code == 0, err
    return root


def test_an_unsigned_onnx_export_of_logistic_regression_is_within_tolerance_and_marked(
    logistic: Path,
) -> None:
    out = logistic / "bundles"
    code, printed, err = _modelops(logistic, "export", "--format", "onnx", "--unsigned")
    assert code == 0, err
    assert "UNSIGNED" in printed
    bundle = _only_bundle(out)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["signed"] is False
    assert not (bundle / "model.sig").exists()
    assert manifest["model_kind"] == "logistic_regression"
    parity = json.loads((bundle / "parity.json").read_text())
    assert parity["passed"], parity
    assert parity["max_abs_diff"] < 1e-5, parity
    encoding = json.loads((bundle / "encoding.json").read_text())
    assert {c["encoding"] for c in encoding["columns"] if c["kind"] == "categorical"} == {"one_hot"}


def test_native_of_logistic_regression_is_refused_naming_onnx(logistic: Path) -> None:
    code, _, err = _modelops(logistic, "export", "--format", "native", "--unsigned")
    assert code == 1
    assert "Use --format onnx" in err, err


def _retrained(edge_project: Path, name: str, model: dict[str, Any]) -> Path:
    """A copy of the project with `train.model` changed and the model trained again."""
    root = edge_project.parent / name
    shutil.copytree(edge_project, root, symlinks=True)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"]["model"] = model
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    code, _, err = _modelops(root, "train")
    assert code == 0, err
    return root


@pytest.fixture(scope="module")
def without_native_splits(edge_project: Path) -> Path:
    """HistGradientBoosting trained with `native_categorical: false`: what ONNX can hold."""
    return _retrained(
        edge_project,
        "ordinal",
        {"kind": "hist_gradient_boosting", "native_categorical": False},
    )


@pytest.fixture(scope="module")
def forest(edge_project: Path) -> Path:
    """A random forest (one-hot, imputed), small enough to train in a second."""
    return _retrained(edge_project, "forest", {"kind": "random_forest", "n_estimators": 20})


@pytest.mark.parametrize("bundle_format", ["onnx", "native"])
@pytest.mark.parametrize("model", ["without_native_splits", "forest"])
def test_tree_models_export_to_both_formats_exact_at_the_threshold(
    model: str, bundle_format: str, request: pytest.FixtureRequest
) -> None:
    root: Path = request.getfixturevalue(model)
    out = root / "exported" / bundle_format  # the copied project holds others' bundles
    code, printed, err = _modelops(
        root, "export", "--format", bundle_format, "--unsigned", "--out", str(out)
    )
    assert code == 0, err
    assert "parity pass: " in printed
    bundle = _only_bundle(out)
    parity = json.loads((bundle / "parity.json").read_text())
    assert parity["passed"], parity
    assert parity["disagreements"] == 0, "every row gets the same class at the threshold"
    # float32 thresholds in ONNX's trees; the compiled trees compute in float64 as sklearn does
    assert parity["max_abs_diff"] < (1e-5 if bundle_format == "onnx" else 1e-12), parity
    assert (bundle / ("model.onnx" if bundle_format == "onnx" else "model.so")).is_file()
    encoding = json.loads((bundle / "encoding.json").read_text())
    assert encoding["inputs_as_float32"] is (model == "forest"), "a forest's trees read float32"


def test_an_environments_released_model_is_exported_not_the_workspaces(
    edge_project: Path, tmp_path: Path
) -> None:
    root = tmp_path / "released"
    shutil.copytree(edge_project, root, symlinks=True)
    code, _, err = _modelops(root, "export", "--format", "native", "--env", "staging", "--unsigned")
    assert code == 1
    assert "staging has no released model yet; give --model DIR" in err
    assert _modelops(root, "release", "deploy", "--env", "staging")[0] == 0
    released = content_hash(root / "models" / "model")
    shutil.rmtree(root / "models" / "model")  # what is exported is the release's, fetched
    code, printed, err = _modelops(
        root, "export", "--format", "native", "--env", "staging", "--unsigned"
    )
    assert code == 0, err
    assert "parity pass: " in printed
    manifest = json.loads((_only_bundle(root / "bundles") / "manifest.json").read_text())
    assert manifest["model_hash"] == released

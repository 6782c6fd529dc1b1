"""The device client on a real bundle: its offline signature check against model-signing's
signature, its counts against the model server's bins, what it imports, and the C example
built with gcc from the bundle's generated sources.

The bundle is the default model exported once per session by the real `modelops export`
(`signed_native`); each test that changes it works on a copy.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modelops_contract.bundle import PROFILE, SIGNATURE_FILE, SUMS
from modelops_device import load
from modelops_device.counts import count, parse_profile
from modelops_device.device import csv_lines
from modelops_device.signed import SignatureError, verify
from modelops_serving import profile as served

from modelops.edge.cases import edge_cases, table_columns
from modelops.paths import ProjectPaths
from modelops.prepared import load_prepared
from tests.edge.conftest import EDGE_PYTHON, SignedBundle, make_key_pair
from tests.support import REPO_ROOT, tool_or_skip

Columns = dict[str, list[Any]]


@pytest.fixture(scope="module")
def columns(trained_project: Path, signed_native: SignedBundle) -> Columns:
    """The test set, the parity gate's edge cases, and a row per numeric profile cut with the
    value on the cut (the bin it closes), as raw columns."""
    prepared = load_prepared(ProjectPaths(trained_project).prepared_dir)
    test = table_columns(prepared.schema, prepared.test)
    edge = edge_cases(prepared.schema, prepared.train)
    typical = {name: values[0] for name, values in test.items()}
    profile = json.loads((signed_native.directory / PROFILE).read_text())
    on_cuts = [{**typical, n["name"]: cut} for n in profile["numeric"] for cut in n["cuts"]]
    return {name: test[name] + edge[name] + [row[name] for row in on_cuts] for name in test}


def _signed_copy(bundle: Path, into: Path) -> Path:
    return Path(shutil.copytree(bundle, into / bundle.name))


def test_the_bundle_carries_the_models_profile_summed_and_signed(
    trained_project: Path, signed_native: SignedBundle
) -> None:
    bundle = signed_native.directory
    model_profile = ProjectPaths(trained_project).model_dir / PROFILE
    assert (bundle / PROFILE).read_bytes() == model_profile.read_bytes()
    assert f"  {PROFILE}\n" in (bundle / SUMS).read_text()
    envelope = json.loads((bundle / SIGNATURE_FILE).read_text())["dsseEnvelope"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert PROFILE in {r["name"] for r in statement["predicate"]["resources"]}


def test_the_exporters_signature_verifies_with_cryptography_alone(
    signed_native: SignedBundle,
) -> None:
    bundle, public = signed_native.directory, signed_native.public_key
    verify(bundle, public)  # raises if not


def _tamper_file(bundle: Path) -> None:
    (bundle / "encoding.json").write_bytes((bundle / "encoding.json").read_bytes() + b" ")


def _extra_file(bundle: Path) -> None:
    (bundle / "model-c" / "backdoor.c").write_text("int x;\n")


def _missing_file(bundle: Path) -> None:
    (bundle / PROFILE).unlink()


def _tamper_signature(bundle: Path) -> None:
    document = json.loads((bundle / SIGNATURE_FILE).read_text())
    signature = bytearray(base64.b64decode(document["dsseEnvelope"]["signatures"][0]["sig"]))
    signature[-1] ^= 0x01
    document["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(signature).decode()
    (bundle / SIGNATURE_FILE).write_text(json.dumps(document))


def _tamper_statement(bundle: Path) -> None:
    """The statement says another digest for encoding.json (the file changed to match it)."""
    document = json.loads((bundle / SIGNATURE_FILE).read_text())
    envelope = document["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"]).replace(
        b'"name": "encoding.json"', b'"name": "encoding.jsom"'
    )
    envelope["payload"] = base64.b64encode(payload).decode()
    (bundle / SIGNATURE_FILE).write_text(json.dumps(document))


def _unsigned(bundle: Path) -> None:
    (bundle / SIGNATURE_FILE).unlink()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (_tamper_file, ["tampered:", "changed: encoding.json"]),
        (_extra_file, ["tampered:", "not signed: model-c/backdoor.c"]),
        (_missing_file, ["tampered:", f"missing: {PROFILE}"]),
        (_tamper_signature, ["tampered signature", "does not verify"]),
        (_tamper_statement, ["tampered signature", "does not verify"]),
        (_unsigned, ["unsigned: no model.sig"]),
    ],
    ids=lambda value: getattr(value, "__name__", "")[1:] or None,
)
def test_a_changed_bundle_is_refused_naming_the_cause(
    signed_native: SignedBundle, tmp_path: Path, change: Any, said: list[str]
) -> None:
    bundle = _signed_copy(signed_native.directory, tmp_path)
    change(bundle)
    with pytest.raises(SignatureError) as refused:
        verify(bundle, signed_native.public_key)
    for words in said:
        assert words in str(refused.value), str(refused.value)


def test_a_wrong_public_key_is_refused_as_a_wrong_key(
    signed_native: SignedBundle, tmp_path: Path
) -> None:
    _, other = make_key_pair(tmp_path)
    with pytest.raises(SignatureError, match=r"^wrong key: .* not with .*edge-signing\.pub"):
        verify(signed_native.directory, other)


def test_a_key_that_is_not_one_is_refused(signed_native: SignedBundle, tmp_path: Path) -> None:
    (tmp_path / "key.pub").write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n")
    with pytest.raises(SignatureError, match="not a PEM public key"):
        verify(signed_native.directory, tmp_path / "key.pub")


@pytest.mark.parametrize("rows", [5, None], ids=["few rows", "every row"])
def test_the_device_counts_in_the_servers_bins_bin_for_bin(
    signed_native: SignedBundle, columns: Columns, rows: int | None
) -> None:
    # Given the same raw rows, when the device and the model server's profile count them (the
    # server counts fewer than 16 rows in plain Python, more with numpy), then every feature
    # and the score land in the same bins.
    bundle = signed_native.directory
    taken = {name: values[:rows] for name, values in columns.items()}
    scores = load(bundle).predict_proba(taken)
    bins = parse_profile((bundle / PROFILE).read_bytes(), where=PROFILE)
    ours = count(bins, taken, scores, threshold=0.5)
    server = served.parse_profile((bundle / PROFILE).read_bytes(), where=PROFILE)
    for feature in server.features:
        values = taken[feature.name]
        if isinstance(feature, served.NumericBins):
            theirs = feature.counts(np.array([np.nan if v is None else v for v in values], float))
        else:
            theirs = feature.counts(values)
        assert list(ours.features[feature.name]) == theirs.tolist(), feature.name
        assert sum(ours.features[feature.name]) == len(values)
    buckets = dict(served.score_buckets(server.score_cuts, scores))
    assert list(ours.score) == [buckets.get(i, 0) for i in range(len(server.score_cuts) + 1)]
    assert ours.positive_rows == int(np.count_nonzero(scores >= 0.5))
    assert [f.name for f in bins.features] == [f.name for f in server.features]
    assert [f.labels for f in bins.features] == [f.labels for f in server.features]


def test_importing_the_device_client_pulls_in_no_scikit_learn_pandas_or_scipy() -> None:
    # In edge/.venv, which has all three installed: the client must not need them.
    program = (
        "import sys, modelops_device.cli, modelops_device.update, modelops_device.report, "
        "modelops_device.device; "
        "print(sorted(m for m in ('sklearn', 'pandas', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run([str(EDGE_PYTHON), "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_c_example_scores_as_the_python_client_to_1e_12(
    signed_native: SignedBundle, columns: Columns, tmp_path: Path
) -> None:
    gcc = tool_or_skip("gcc", install="apt-get install gcc")
    make = tool_or_skip("make", install="apt-get install make")
    bundle = signed_native.directory
    program = tmp_path / "score"
    built = subprocess.run(
        [
            make,
            "-C",
            str(REPO_ROOT / "edge" / "device" / "c"),
            f"BUNDLE={bundle}",
            f"OUT={program}",
            f"CC={gcc}",
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    scorer = load(bundle)
    encoded = "\n".join(csv_lines(scorer.encode(columns))) + "\n"
    positive = str(json.loads((bundle / "signature.json").read_text())["positive_index"])
    done = subprocess.run([str(program), positive], input=encoded, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    theirs = np.array([float(line) for line in done.stdout.split()])
    ours = scorer.predict_proba(columns)
    assert theirs.shape == ours.shape
    assert np.max(np.abs(theirs - ours)) <= 1e-12

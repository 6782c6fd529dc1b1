"""Edge environments: bundles released by cohort through the real command line, the fleet
manifest each state renders (golden files, its JSON Schema, the devices' parser), and the
params and bundles that are refused.

Regenerate the golden files after an intended change with
`UPDATE_GOLDEN=1 pytest tests/deploy/test_fleet.py` and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from modelops_contract import fleet
from pydantic import ValidationError

from modelops.deploy.fleet import fleet_problems, fleet_schema
from modelops.deploy.fleet_release import read_bundle
from modelops.deploy.render import render
from modelops.errors import DeployError
from modelops.params import DeployParams, EdgeEnvironmentParams
from modelops.releases import state
from modelops.releases.state import Bundle, Release
from tests.deploy.fleet_support import DEVICES, EDGE, archive_sha256, bundle, model_hash
from tests.deploy.support import change, changed, modelops, step
from tests.support import REPO_ROOT, git, template_params, write_params

GOLDEN = Path(__file__).parent / "golden" / "edge"
TEMPLATES = REPO_ROOT / "manifests" / "templates"
STEPS = (5, 25, 50)


def _version(name: str) -> state.ModelVersion:
    """A published bundle with a made-up archive hash."""
    sha = model_hash(f"archive {name}")
    return state.ModelVersion(
        version=sha[:12],
        model_uri=f"model-store/bundles/{sha}.tar.gz",
        model_hash=model_hash(name),
        data_version=model_hash("data"),
        git_commit="0" * 40,
        bundle=Bundle(sha256=sha, format="onnx", name="churn"),
    )


A, B = _version("a"), _version("b")


def _states() -> dict[str, Release]:
    """stable: A on every device; cohort-25: B promoted to 25%; rolled-back: B taken out."""
    deploy = lambda release, model: changed(  # noqa: E731
        state.deploy(release, model, strategy="edge", steps=STEPS, change=change())
    )
    stable = deploy(Release(DEVICES), A)
    cohort = state.promote(deploy(stable, B), steps=STEPS, change=change())
    rolled_back = state.rollback(cohort, change=change("bin counts drift"))
    return {"stable": stable, "cohort-25": cohort, "rolled-back": rolled_back}


def _deploy_params() -> DeployParams:
    return DeployParams.model_validate({"environments": {DEVICES: EDGE}})


def _render(release: Release) -> dict[str, str]:
    return render(TEMPLATES, _deploy_params(), {DEVICES: release}, threshold=0.5)


@pytest.mark.parametrize("name", sorted(_states()))
def test_each_fleet_state_renders_its_golden_manifest_valid_and_byte_stable(name: str) -> None:
    files = _render(_states()[name])
    assert files == _render(_states()[name]), "the same release renders the same bytes"
    folder = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(folder, ignore_errors=True)
        for path, text in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text)
    expected = {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}
    assert files == expected, "UPDATE_GOLDEN=1 after an intended change, and review the diff"
    (path, text), *_ = files.items()
    assert list(fleet_problems(path, text)) == []


def test_a_rollout_is_read_by_devices_as_the_cohort_rule_says() -> None:
    # Given B at 25% of the devices, when devices read the rendered manifest, then about a
    # quarter take B, by the salt (the environment's name) and their id.
    text = _render(_states()["cohort-25"])[f"rendered/{DEVICES}/fleet.json"]
    manifest = fleet.parse_fleet_manifest(text)
    assert manifest.candidate is not None
    assert (manifest.candidate.percent, manifest.candidate.salt) == (25, DEVICES)
    assert manifest.stable.url == f"{EDGE['bundle_base_url']}/{A.bundle and A.bundle.sha256}.tar.gz"
    taken = sum(
        manifest.bundle_for(f"till-{n}").sha256 == manifest.candidate.bundle.sha256
        for n in range(4000)
    )
    assert 850 < taken < 1150, f"{taken} of 4000 devices took the candidate at 25%"
    rolled_back = fleet.parse_fleet_manifest(
        _render(_states()["rolled-back"])[f"rendered/{DEVICES}/fleet.json"]
    )
    assert rolled_back.candidate is None
    assert rolled_back.stable == manifest.stable


def test_the_schema_refuses_what_a_device_could_not_use() -> None:
    text = _render(_states()["cohort-25"])[f"rendered/{DEVICES}/fleet.json"]
    document = json.loads(text)
    document["candidate"]["percent"] = 0
    del document["public_key"]
    problems = list(fleet_problems("fleet.json", json.dumps(document)))
    assert any("candidate" in p for p in problems), problems
    assert any("'public_key' is a required property" in p for p in problems), problems
    assert fleet_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_a_bundle_of_another_format_than_the_release_is_refused_at_render() -> None:
    native = EDGE | {"format": "native"}
    deploy = DeployParams.model_validate({"environments": {DEVICES: native}})
    with pytest.raises(DeployError, match="set format back to onnx, or deploy a native bundle"):
        render(TEMPLATES, deploy, {DEVICES: _states()["stable"]}, threshold=0.5)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"namespace": "x"}, "devices are not in a Kubernetes namespace"),
        ({"canary_steps": [10]}, "use cohort_steps"),
        ({"cohort_steps": [25, 5]}, "cohort steps must increase"),
        ({"cohort_steps": [0, 5]}, "a percent from 1 to 100"),
        ({"public_key": "-----BEGIN PRIVATE KEY-----\nMII"}, "a private key never goes"),
        ({"public_key": "keys/edge-private.pem"}, "names a private key"),
        ({"format": "tflite"}, "'onnx' or 'native'"),
        ({"bundle_base_url": "models/bundles"}, "should match pattern"),
        ({"salt": "two words"}, "should match pattern"),
    ],
)
def test_edge_params_refuse_what_means_nothing_or_is_wrong(
    update: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        EdgeEnvironmentParams.model_validate(EDGE | update)


def test_an_edge_environment_parses_with_its_defaults() -> None:
    parsed = EdgeEnvironmentParams.model_validate(
        EDGE | {"bundle_base_url": "https://cdn.example/b/"}
    )
    assert parsed.salt is None
    assert parsed.cohort_steps == STEPS
    assert parsed.bundle_base_url == "https://cdn.example/b", "a trailing slash is dropped"


def test_a_bundle_is_read_from_its_manifest_and_a_broken_one_refused(tmp_path: Path) -> None:
    read = read_bundle(bundle(tmp_path, "a"))
    assert (read.name, read.format, read.model_hash) == ("churn", "onnx", model_hash("a"))
    broken = bundle(tmp_path, "b", manifest={"name": "churn", "format": "onnx", "model_hash": "x"})
    with pytest.raises(DeployError, match="model_hash: the model's content hash"):
        read_bundle(broken)
    (tmp_path / "plain.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(DeployError, match=r"not a readable tar\.gz bundle"):
        read_bundle(tmp_path / "plain.tar.gz")


def test_a_tampered_or_unsigned_bundle_is_refused_before_it_is_published(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"not what its SHA256SUMS says \(changed: model\.onnx\)"):
        read_bundle(bundle(tmp_path, "tampered", tamper=True))
    unsigned = {"name": "churn", "format": "onnx", "model_hash": model_hash("u"), "signed": False}
    with pytest.raises(
        DeployError, match=r"is unsigned: devices refuse.*Export it again with --key"
    ):
        read_bundle(bundle(tmp_path, "unsigned", manifest=unsigned))


@pytest.fixture
def edge_repo(repo: Path) -> Path:
    """The template's repository with an edge environment `devices` declared."""
    params = template_params()
    params["deploy"]["environments"][DEVICES] = EDGE
    write_params(repo, params)
    git(repo, "commit", "--quiet", "--all", "--message", "Declare the devices fleet")
    return repo


def _fleet(repo: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (repo / "manifests" / "rendered" / DEVICES / "fleet.json").read_text()
    )
    return loaded


def test_a_fleet_is_rolled_out_by_cohort_promoted_and_rolled_back_by_commits(
    edge_repo: Path, tmp_path: Path
) -> None:
    repo = edge_repo
    first, second = bundle(tmp_path, "first"), bundle(tmp_path, "second")
    native = bundle(tmp_path, "native", bundle_format="native")
    # A bundle of another format than the devices run is refused, with the command that fixes it.
    code, _, err = modelops("release", "deploy", "--env", DEVICES, "--bundle", str(native))
    assert code == 1, err
    assert "modelops export --format onnx" in err, err
    # A model directory is refused for an edge environment: devices take bundles.
    code, _, err = modelops("release", "deploy", "--env", DEVICES)
    assert code == 1, err
    assert "--bundle PATH.tar.gz" in err, err
    # The first bundle goes to every device (nothing to compare it with), published by sha256.
    sha1, sha2 = archive_sha256(first), archive_sha256(second)
    title = step(repo, "deploy", "--env", DEVICES, "--bundle", str(first))
    assert title == f"deploy: bundle {sha1[:12]} to {DEVICES} (every device)"
    assert (repo / "model-store" / "bundles" / f"{sha1}.tar.gz").read_bytes() == first.read_bytes()
    assert _fleet(repo)["candidate"] is None
    assert _fleet(repo)["stable"]["sha256"] == sha1
    assert not (repo / "manifests" / "argocd" / f"{DEVICES}.yaml").exists()
    # The second starts at the first cohort step; promote widens it; rollback takes it out.
    title = step(repo, "deploy", "--env", DEVICES, "--bundle", str(second))
    assert title == f"deploy: bundle {sha2[:12]} to {DEVICES} (5% of devices)"
    title = step(repo, "promote", "--env", DEVICES, "--reason", "bin counts as stable's")
    assert title == f"promote: {DEVICES} candidate {sha2[:12]} 5% -> 25% of devices"
    candidate = _fleet(repo)["candidate"]
    assert (candidate["sha256"], candidate["percent"], candidate["salt"]) == (sha2, 25, DEVICES)
    title = step(repo, "rollback", "--env", DEVICES, "--reason", "drift on tenure")
    assert (
        title
        == f"rollback: {DEVICES} candidate {sha2[:12]} removed, {sha1[:12]} takes every device"
    )
    assert _fleet(repo)["candidate"] is None
    assert _fleet(repo)["stable"]["sha256"] == sha1
    # Deployed again it is skipped (taken out), unless retried on purpose; then completed.
    code, out, _ = modelops("release", "deploy", "--env", DEVICES, "--bundle", str(second))
    assert code == 0, out
    assert "taken out" in out, out
    step(repo, "deploy", "--env", DEVICES, "--bundle", str(second), "--retry")
    for _ in STEPS:
        title = step(repo, "promote", "--env", DEVICES, "--reason", "fleet healthy")
    assert title == f"complete: {DEVICES} runs {sha2[:12]} (every device)"
    assert _fleet(repo)["stable"]["sha256"] == sha2
    assert _fleet(repo)["candidate"] is None
    # After completion, rollback returns the fleet to the previous bundle.
    title = step(repo, "rollback", "--env", DEVICES, "--reason", "field reports")
    assert title.startswith(f"rollback: {DEVICES} back to {sha1[:12]}, replacing {sha2[:12]}")
    assert _fleet(repo)["stable"]["sha256"] == sha1
    release = (repo / "manifests" / "releases" / f"{DEVICES}.yaml").read_text()
    assert f"sha256: {sha1}" in release
    assert "format: onnx" in release

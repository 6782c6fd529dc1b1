"""Helpers for driving the release commands as deploy.yml and rollout.yml do."""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
from pathlib import Path

import yaml

from modelops.cli import main
from modelops.deploy.schemas import schema_source
from modelops.deploy.validate import validate
from modelops.deploy.workflow import templated_files
from modelops.gates.registry import GATE_NAMES
from modelops.gates.results import CheckRecord, GateResult, gates_document
from modelops.identity import identify
from modelops.io import json_bytes
from modelops.releases.state import Change, ModelVersion, Release, Unchanged
from tests.support import REPO_ROOT, git

MODEL = Path("models/model")


def modelops(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def record_gates(root: Path, *, passed: bool = True) -> None:
    """Write reports/gates.json as the gate stages record models/model.

    A stand-in for the pull request's gate run, with every gate off (so the verdict passes) or,
    with `passed=False`, the enforced model gate failed. The real gates run before a real deploy
    in tests/pipeline; here only the record matters, and it is built by the real code.
    """
    judged = identify(root / MODEL, root=root)
    if passed:
        gates = [GateResult(name, "off", "off", judged=judged) for name in GATE_NAMES]
    else:
        failed = CheckRecord("performance", "Test performance", "test", "c", "v", "fail")
        gates = [GateResult("model", "enforce", "fail", checks=(failed,), judged=judged)]
    (root / "reports").mkdir(exist_ok=True)
    (root / "reports" / "gates.json").write_bytes(json_bytes(gates_document(gates)))


def merge_model(root: Path, source: Path, *, passed: bool = True) -> None:
    """What a merge does to the working tree of deploy.yml: a newly trained, gated model."""
    shutil.rmtree(root / MODEL, ignore_errors=True)
    shutil.copytree(source / MODEL, root / MODEL)
    (root / "reports").mkdir(exist_ok=True)
    shutil.copy(source / "reports" / "mlflow_run.json", root / "reports" / "mlflow_run.json")
    record_gates(root, passed=passed)
    (root / "merged.txt").write_text(str(source))
    git(root, "add", "merged.txt", "reports/gates.json")
    git(root, "commit", "--quiet", "--message", f"Merge a model trained at {source.name}")


def step(root: Path, *args: str) -> str:
    """Run a release command as the workflow does, check the result, commit; return its title."""
    message = root.parent / "message.txt"
    code, _out, err = modelops("release", *args, "--message-file", str(message))
    assert code == 0, f"modelops release {' '.join(args)} failed: {err}"
    assert modelops("render", "--check")[0] == 0, "the manifests on disk are what renders"
    rendered = {
        str(p.relative_to(root / "manifests")): p.read_text()
        for p in (root / "manifests").glob("*/**/*.yaml")
        if not {"templates", "releases", "prometheus", "alertmanager"} & set(p.parts)
    }
    checked = validate(
        rendered, schemas=schema_source(REPO_ROOT), templated=templated_files(rendered)
    )
    assert checked.problems == ()
    git(root, "add", "manifests")
    git(root, "commit", "--quiet", "--file", str(message))
    return git(root, "log", "-1", "--format=%s").strip()


def traffic(root: Path, environment: str) -> dict[str, int]:
    path = root / "manifests" / "rendered" / environment / "seldondeployment.yaml"
    deployment = yaml.safe_load(path.read_text())
    return {p["name"]: p["traffic"] for p in deployment["spec"]["predictors"]}


def version(root: Path, environment: str, role: str = "stable") -> str:
    document = yaml.safe_load((root / "manifests" / "releases" / f"{environment}.yaml").read_text())
    entry = document[role]
    return str(entry["version"])


def model_version(name: str, *, base: str = "model-store/churn") -> ModelVersion:
    """A published model version with a made-up (but well-formed) content hash."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return ModelVersion(
        version=digest[:12],
        model_uri=f"{base}/{digest}",
        model_hash=digest,
        data_version=hashlib.sha256(b"data").hexdigest(),
        git_commit=hashlib.sha1(name.encode()).hexdigest(),
    )


def change(reason: str = "test", *, by: str = "alice") -> Change:
    return Change(at="2026-11-26T10:00:00Z", by=by, reason=reason)


def changed(outcome: Release | Unchanged) -> Release:
    """The release a transition made, failing the test when it changed nothing."""
    assert isinstance(outcome, Release), f"expected a change, got {outcome}"
    return outcome


HARDENED = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""The securityContext every container of every rendered pod carries (deploy.run_as_user 10001)."""

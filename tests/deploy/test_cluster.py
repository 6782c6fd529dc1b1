"""`modelops crds`: the CRDs and namespaces an empty cluster needs before the manifests apply.

No API server runs here (cluster.yml runs one on GitHub); what is tested is that every file is
one an API server takes: plain CRDs as pinned upstream, no Helm template syntax, namespaces.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelops.deploy.cluster import custom_kinds, namespaces, prerequisite_files
from modelops.deploy.crd import definitions, storage_schema
from modelops.deploy.schemas import Pinned
from modelops.errors import CrdError
from tests.support import REPO_ROOT, modelops_command

GOLDEN = REPO_ROOT / "tests" / "deploy" / "golden"

HELM_CRD = """\
{{- if .Values.crd.create }}
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  annotations:
    cert-manager.io/inject-ca-from: '{{ include "x.namespace" . }}/cert'
    kept: plain
  labels:
    app.kubernetes.io/instance: '{{ .Release.Name }}'
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object}}}}
{{- end }}
"""
TWO_CRDS = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: checkpoints.example.com, annotations: {api-approved.kubernetes.io: "url"}}
spec:
  names: {kind: Checkpoint}
  versions: [{name: v1, storage: true, schema: {openAPIV3Schema: {description: first}}}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: scalers.example.com}
spec:
  names: {kind: Scaler}
  versions: [{name: v1, storage: true, schema: {openAPIV3Schema: {description: second}}}]
"""


def _objects(*states: str) -> list[dict]:
    found = []
    for state in states:
        for path in sorted((GOLDEN / state).rglob("*.yaml")):
            found += [d for d in yaml.safe_load_all(path.read_text()) if d and "kind" in d]
    return found


def test_a_helm_templated_crd_loses_its_control_lines_and_templated_metadata_only() -> None:
    (definition,) = definitions(HELM_CRD, helm_template=True)
    assert definition["metadata"] == {
        "annotations": {"kept": "plain"},
        "name": "widgets.example.com",
    }
    assert definition["spec"]["names"]["kind"] == "Widget"
    assert "{{" not in yaml.safe_dump(definition)


def test_a_file_of_several_crds_gives_each_and_the_schema_of_the_kind_asked_for() -> None:
    assert [d["metadata"]["name"] for d in definitions(TWO_CRDS)] == [
        "checkpoints.example.com",
        "scalers.example.com",
    ]
    assert storage_schema(TWO_CRDS, kind="Scaler") == {"description": "second"}
    assert storage_schema(TWO_CRDS) == {"description": "first"}
    with pytest.raises(CrdError, match="no CustomResourceDefinition of kind Gadget"):
        storage_schema(TWO_CRDS, kind="Gadget")


def test_every_custom_kind_of_the_golden_states_is_pinned_once_and_namespaces_are_listed() -> None:
    objects = _objects("seldon/stable", "seldon/canary-25", "kserve/canary-25", "batch")
    assert sorted(p.kind for p in custom_kinds(objects)) == [
        "Application",
        "InferenceService",
        "PodMonitor",
        "PrometheusRule",
        "ScheduledSparkApplication",
        "SeldonDeployment",
    ]
    assert namespaces(objects) == ("argocd", "churn-batch", "churn-production", "churn-staging")


def test_the_files_hold_every_crd_of_a_pinned_file_and_one_namespace_list() -> None:
    pinned = Pinned(
        api_version="example.com/v1",
        kind="Scaler",
        repository="example/scalers",
        tag="v1",
        path="crds.yaml",
        sha256="0" * 64,
        crd="example/crd.yaml",
        strict="example/strict.json",
    )
    objects = [{"apiVersion": "example.com/v1", "kind": "Scaler", "metadata": {"namespace": "a"}}]
    files = prerequisite_files(objects, {pinned: TWO_CRDS.encode()})
    assert sorted(map(str, files)) == [
        "crd-checkpoints.example.com.yaml",
        "crd-scalers.example.com.yaml",
        "namespaces.yaml",
    ]
    checkpoint = yaml.safe_load(files[Path("crd-checkpoints.example.com.yaml")])
    assert checkpoint["metadata"]["annotations"] == {"api-approved.kubernetes.io": "url"}
    assert list(yaml.safe_load_all(files[Path("namespaces.yaml")])) == [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}
    ]


def _project(tmp_path: Path, *states: str) -> Path:
    root = tmp_path / "project"
    (root / "manifests").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "params.yaml", root / "params.yaml")
    for state in states:
        shutil.copytree(GOLDEN / state, root / "manifests", dirs_exist_ok=True)
    return root


def _crds(root: Path, out: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [modelops_command(), "crds", out],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_writes_plain_crds_for_every_released_state(
    tmp_path: Path, shared_schemas: Path
) -> None:
    root = _project(tmp_path, "seldon/stable", "batch")
    done = _crds(root, "prerequisites")
    assert done.returncode == 0, done.stderr
    out = root / "prerequisites"
    assert done.stdout.split() == [f"prerequisites/{p.name}" for p in sorted(out.iterdir())]
    kinds = set()
    for path in out.glob("crd-*.yaml"):
        text = path.read_text()
        assert "{{" not in text, path.name
        (definition,) = yaml.safe_load_all(text)
        assert definition["kind"] == "CustomResourceDefinition"
        assert path.name == f"crd-{definition['metadata']['name']}.yaml"
        kinds.add(definition["spec"]["names"]["kind"])
    assert kinds == {
        "Application",
        "PodMonitor",
        "PrometheusRule",
        "ScheduledSparkApplication",
        "SeldonDeployment",
    }
    assert "churn-production" in (out / "namespaces.yaml").read_text()


def test_without_a_release_or_without_the_crds_it_says_why_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = _project(tmp_path)
    done = _crds(empty, "prerequisites")
    assert done.returncode == 1
    assert "no generated manifests under manifests/ yet" in done.stderr
    assert not (empty / "prerequisites").exists()

    released = _project(tmp_path / "released", "seldon/stable")
    monkeypatch.setenv("MODELOPS_SCHEMAS", str(tmp_path / "nowhere"))
    monkeypatch.setenv("MODELOPS_SCHEMAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MODELOPS_SCHEMAS_URL", "off")
    (released / "prerequisites").mkdir()
    (released / "prerequisites" / "old.yaml").write_text("kept")
    done = _crds(released, "prerequisites")
    assert done.returncode == 1
    assert "downloads are off" in done.stderr
    assert [p.name for p in (released / "prerequisites").iterdir()] == ["old.yaml"]

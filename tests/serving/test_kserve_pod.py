"""The server as a KServe pod runs it: the image's entrypoint with the rendered container's env.

The InferenceService that `target: kserve` renders gives its `kserve-container` the server's
parameters (the model's hash among them) and ports in seldon-core's environment variables, as
the Seldon operator does from a SeldonDeployment. Here the image's own command runs with exactly
that environment (no Docker engine or cluster here): the pod's model volume is stood in for by a
copy of the trained model (`/mnt/models` becomes its path), the ports by free loopback ports,
the feedback Secret by a key. The server verifies the model's hash, listens where the container
declares, answers a prediction and exposes the telemetry the PodMonitor scrapes; a model that is
not the published one stops it before it is ever ready.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelops_contract import (
    FEEDBACK_KEY_ENV,
    HTTP_PORT_ENV,
    METRICS_PORT_ENV,
    MODEL_INFO,
    PARAMETERS_ENV,
)
from modelops_serving.artifact import content_hash
from modelops_serving.launch import BIND_HOST_ENV, free_port
from prometheus_client.parser import text_string_to_metric_families

from modelops.data import features
from modelops.deploy.platforms import KSERVE
from modelops.prepared import load_prepared
from modelops.releases import state
from modelops.releases.state import ModelVersion, Release
from tests.deploy.states import render_state
from tests.deploy.support import change, changed
from tests.serving import dockerfile
from tests.serving.conftest import SERVING_BIN
from tests.serving.test_lifecycle import _clean_environment, _started, _wait_until_ready

MOUNT = "/mnt/models"
"""Where the pod's init container puts the model (`render.MODELS_MOUNT`)."""


def _published(model_dir: Path) -> ModelVersion:
    """The trained model as `release deploy` records it: pinned by its content hash."""
    digest = content_hash(model_dir)
    return ModelVersion(
        version=digest[:12],
        model_uri=f"s3://models/churn/{digest}",
        model_hash=digest,
        data_version="0" * 64,
        git_commit="0" * 40,
    )


def _container(model: ModelVersion) -> dict[str, Any]:
    """Staging's kserve-container, rendered for a release of `model`."""
    staging = changed(
        state.deploy(Release("staging"), model, strategy="direct", steps=(), change=change())
    )
    production = changed(
        state.deploy(Release("production"), model, strategy="canary", steps=(), change=change())
    )
    files = render_state({"staging": staging, "production": production}, "kserve")
    service = yaml.safe_load(files["rendered/staging/inferenceservice.yaml"])
    (container,) = service["spec"]["predictor"]["containers"]
    assert container["name"] == KSERVE.container
    return dict(container)


def _pod_environment(
    container: dict[str, Any], model: Path, ports: dict[str, int]
) -> dict[str, str]:
    """The image's environment, then the container's, with the volume, ports and Secret stood
    in for; bound to loopback (the image's 0.0.0.0 is not for tests)."""
    declared = {variable["name"]: variable for variable in container["env"]}
    assert declared[FEEDBACK_KEY_ENV]["valueFrom"]["secretKeyRef"]["key"] == "key"
    env = {name: variable["value"] for name, variable in declared.items() if "value" in variable}
    env["MODEL_URI"] = env["MODEL_URI"].replace(MOUNT, str(model))
    env[PARAMETERS_ENV] = env[PARAMETERS_ENV].replace(f'"{MOUNT}"', json.dumps(str(model)))
    env[HTTP_PORT_ENV], env[METRICS_PORT_ENV] = str(ports["http"]), str(ports["metrics"])
    return {
        **_clean_environment(),
        **dockerfile.environment(),
        "PATH": f"{SERVING_BIN}:{_clean_environment()['PATH']}",
        BIND_HOST_ENV: "127.0.0.1",
        FEEDBACK_KEY_ENV: "tests-only-kserve-pod-key-0123456789abcdef",
        **env,
    }


def _request(project: Path) -> bytes:
    prepared = load_prepared(project / "data" / "prepared")
    frame = features(prepared.test, prepared.schema).head(3)
    rows = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return json.dumps({"data": {"names": list(frame.columns), "ndarray": rows}}).encode()


def test_the_image_serves_the_published_model_with_the_rendered_containers_environment(
    model_dir: Path, served_project: Path, tmp_path: Path
) -> None:
    model = _published(model_dir)
    container = _container(model)
    declared = {port["name"]: port["containerPort"] for port in container["ports"]}
    ports = {"http": free_port(), "metrics": free_port()}
    copy = Path(shutil.copytree(model_dir, tmp_path / "mnt-models"))
    env = _pod_environment(container, copy, ports)
    rendered = {variable["name"]: variable.get("value") for variable in container["env"]}
    assert (int(rendered[HTTP_PORT_ENV]), int(rendered[METRICS_PORT_ENV])) == (
        declared["http"],
        declared["metrics"],
    ), "the server is told to listen where the container declares (here: free ports instead)"
    log = tmp_path / "pod.log"
    with _started(dockerfile.entrypoint(), env, log, process_group=0) as first:
        _wait_until_ready(first, f"http://127.0.0.1:{ports['http']}/health/status")
        request = urllib.request.Request(
            f"http://127.0.0.1:{ports['http']}/api/v1.0/predictions",
            data=_request(served_project),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = json.loads(answer.read())
        url = f"http://127.0.0.1:{ports['metrics']}/prometheus"
        with urllib.request.urlopen(url, timeout=30) as answer:
            metrics = answer.read().decode()
    output = log.read_text(errors="replace")
    assert f"content hash verified ({model.model_hash})" in output, output[-3000:]
    assert len(body["data"]["ndarray"]) == 3, body
    assert body["meta"]["tags"]["model_version"] == model.version
    info = [
        sample.labels
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == MODEL_INFO.name
    ]
    assert [labels["model_version"] for labels in info] == [model.version]
    assert {labels["model_hash"] for labels in info} == {model.model_hash}


@pytest.mark.parametrize("tamper", ["an extra file", "another model's hash"])
def test_a_pod_whose_model_is_not_the_published_one_never_becomes_ready(
    model_dir: Path, tmp_path: Path, tamper: str
) -> None:
    model = _published(model_dir)
    copy = Path(shutil.copytree(model_dir, tmp_path / "mnt-models"))
    if tamper == "an extra file":
        (copy / "sitecustomize.py").write_text("import os\n")
    else:
        other = "f" * 64
        model = ModelVersion(
            version=other[:12],
            model_uri=f"s3://models/churn/{other}",
            model_hash=other,
            data_version=model.data_version,
            git_commit=model.git_commit,
        )
    ports = {"http": free_port(), "metrics": free_port()}
    env = _pod_environment(_container(model), copy, ports)
    log = tmp_path / "pod.log"
    with _started(dockerfile.entrypoint(), env, log, process_group=0) as first:
        code = first.wait(timeout=120)
    output = log.read_text(errors="replace")
    assert code != 0, "it exits rather than serve another model"
    assert f"does not match the expected {model.model_hash}" in output, output[-3000:]

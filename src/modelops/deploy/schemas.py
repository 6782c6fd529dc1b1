"""Locate, or fetch, the pinned upstream CRD schemas that rendered objects are validated against.

Each schema comes from one upstream file at a tag, pinned by its sha256. It is looked up in turn:

1. `$MODELOPS_SCHEMAS`, a folder laid out like the shared schemas (`<tool>/<tag>/crd/...`,
   `<tool>/<tag>/strict/...`);
2. `../shared/schemas` beside the project;
3. the cache, in the same layout: `$MODELOPS_SCHEMAS_CACHE`, else
   `$XDG_CACHE_HOME/modelops/schemas`, else `~/.cache/modelops/schemas`;
4. the upstream file over HTTPS (`$MODELOPS_SCHEMAS_URL` replaces the GitHub base URL for a
   mirror; `off` turns downloads off). It is refused unless its sha256 is the pinned one; then
   its strict schema is derived (`crd.py`) and both are cached.

The only network access of the deploy code is here (standard library `urllib`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import urllib.error
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from modelops.deploy.crd import storage_schema, strict
from modelops.errors import CrdError, SchemaError
from modelops.io import JSONObject, bytes_writer, commit

DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
DOWNLOAD_TIMEOUT_SECONDS = 30
MAX_DOWNLOAD_BYTES = 16 * 1024 * 1024
_OFF = {"off", "none", "0", "false"}
_TRUE = {"true", "1", "yes"}


@dataclass(frozen=True)
class Pinned:
    """One upstream CRD file at a tag, its sha256, and where it sits in a schemas folder.

    `crd` and `strict` are relative to a schemas folder. `helm_template`, `close_root` and
    `int_or_string_one_of` say how the strict schema is derived (see `crd.py`): the shared
    Seldon file follows kubeconform's conventions, the others close every object.
    """

    api_version: str
    kind: str
    repository: str
    tag: str
    path: str
    sha256: str
    crd: str
    strict: str
    helm_template: bool = False
    close_root: bool = True
    int_or_string_one_of: bool = True

    def url(self, base_url: str) -> str:
        """Where the upstream file is under `base_url` (GitHub's raw-content layout)."""
        return f"{base_url.rstrip('/')}/{self.repository}/{self.tag}/{self.path}"


_PROMETHEUS = "prometheus-operator/v0.93.0"
_SPARK_OPERATOR = "spark-operator/v2.5.2"
_KSERVE = "kserve/v0.20.0"
_KEDA = "keda/v2.20.2"
_VPA = "vpa/v1.7.1"
PINNED = (
    Pinned(
        api_version="machinelearning.seldon.io/v1",
        kind="SeldonDeployment",
        repository="SeldonIO/seldon-core",
        tag="v1.17.1",
        path="helm-charts/seldon-core-operator/templates/"
        "customresourcedefinition_v1_seldondeployments.machinelearning.seldon.io.yaml",
        sha256="396540e45597a45b2e6b7bb11bfaf0c012137bfe69ba774a4c7fb8bf98dd3343",
        crd="seldon/v1.17.1-apache2/crd/"
        "customresourcedefinition_v1_seldondeployments.machinelearning.seldon.io.helm-template.yaml",
        strict="seldon/v1.17.1-apache2/kubeconform-strict/machinelearning.seldon.io/"
        "seldondeployment_v1.json",
        helm_template=True,
        close_root=False,
        int_or_string_one_of=False,
    ),
    Pinned(
        api_version="serving.kserve.io/v1beta1",
        kind="InferenceService",
        repository="kserve/kserve",
        tag="v0.20.0",
        path="config/crd/full/serving.kserve.io_inferenceservices.yaml",
        sha256="57c3bf13f77de94678bf2ae3748056ec071ad2b9e88d6a28f44fb4710758fcff",
        crd=f"{_KSERVE}/crd/serving.kserve.io_inferenceservices.yaml",
        strict=f"{_KSERVE}/strict/serving.kserve.io/inferenceservice_v1beta1.json",
    ),
    Pinned(
        api_version="argoproj.io/v1alpha1",
        kind="Application",
        repository="argoproj/argo-cd",
        tag="v3.5.1",
        path="manifests/crds/application-crd.yaml",  # in argo-cd's repository, not this one
        sha256="5dde0e229249b6b707beb98674c1deae3949d5c319a6c45b9f5a80c99618e40c",
        crd="argo-cd/v3.5.1/crd/application-crd.yaml",
        strict="argo-cd/v3.5.1/strict/argoproj.io/application_v1alpha1.json",
    ),
    Pinned(
        api_version="monitoring.coreos.com/v1",
        kind="PodMonitor",
        repository="prometheus-operator/prometheus-operator",
        tag="v0.93.0",
        path="example/prometheus-operator-crd-full/monitoring.coreos.com_podmonitors.yaml",
        sha256="45a93443daa687d3654f7e9631909ff7edcdf3ec09c5e60251b74aa2722aee5d",
        crd=f"{_PROMETHEUS}/crd/monitoring.coreos.com_podmonitors.yaml",
        strict=f"{_PROMETHEUS}/strict/monitoring.coreos.com/podmonitor_v1.json",
    ),
    Pinned(
        api_version="monitoring.coreos.com/v1",
        kind="PrometheusRule",
        repository="prometheus-operator/prometheus-operator",
        tag="v0.93.0",
        path="example/prometheus-operator-crd-full/monitoring.coreos.com_prometheusrules.yaml",
        sha256="78be98554b9c8506ab2b4f4feb91c5f3a56e536a0a510f3a8e876a459970d56d",
        crd=f"{_PROMETHEUS}/crd/monitoring.coreos.com_prometheusrules.yaml",
        strict=f"{_PROMETHEUS}/strict/monitoring.coreos.com/prometheusrule_v1.json",
    ),
    Pinned(
        api_version="sparkoperator.k8s.io/v1beta2",
        kind="ScheduledSparkApplication",
        repository="kubeflow/spark-operator",
        tag="v2.5.2",
        path="config/crd/bases/sparkoperator.k8s.io_scheduledsparkapplications.yaml",
        sha256="5dc6654b2ad9157421ddf177737795420088fbe70338e45602bacf22ce25cc99",
        crd=f"{_SPARK_OPERATOR}/crd/sparkoperator.k8s.io_scheduledsparkapplications.yaml",
        strict=f"{_SPARK_OPERATOR}/strict/sparkoperator.k8s.io/"
        "scheduledsparkapplication_v1beta2.json",
    ),
    Pinned(
        api_version="keda.sh/v1alpha1",
        kind="ScaledObject",
        repository="kedacore/keda",
        tag="v2.20.2",
        path="config/crd/bases/keda.sh_scaledobjects.yaml",
        sha256="af35555862a83933b074af14ad439c4b4ceabaf4daa3e9338e9b23e36d308d80",
        crd=f"{_KEDA}/crd/keda.sh_scaledobjects.yaml",
        strict=f"{_KEDA}/strict/keda.sh/scaledobject_v1alpha1.json",
    ),
    Pinned(
        api_version="autoscaling.k8s.io/v1",
        kind="VerticalPodAutoscaler",
        repository="kubernetes/autoscaler",
        tag="vertical-pod-autoscaler-1.7.1",
        path="vertical-pod-autoscaler/deploy/vpa-v1-crd-gen.yaml",
        sha256="92240d0f43a78bc9d64ce70825e84e0cd32d2793b0b605df4772cdcfc36d3fca",
        crd=f"{_VPA}/crd/vpa-v1-crd-gen.yaml",
        strict=f"{_VPA}/strict/autoscaling.k8s.io/verticalpodautoscaler_v1.json",
    ),
)
_BY_KIND = {(p.api_version, p.kind): p for p in PINNED}


@dataclass(frozen=True)
class SchemaSource:
    """Where schemas are looked for, in order, and whether they may be downloaded.

    `required`: a schema that cannot be had is a validation problem (in GitHub Actions, which
    reaches GitHub, or wherever `MODELOPS_REQUIRE_SCHEMAS=true`); elsewhere, a laptop or a CI
    machine that cannot reach GitHub, the check is skipped with a note.
    """

    folders: tuple[Path, ...]
    cache: Path
    base_url: str | None
    required: bool = False

    def describe(self, pinned: Pinned) -> str:
        """How a user gets `pinned`'s schema onto this machine."""
        fetch = (
            f"or let this machine download it (sha256-checked, cached in {self.cache})"
            if self.base_url
            else "or unset MODELOPS_SCHEMAS_URL (now off) so that it is downloaded and cached"
        )
        return f"set MODELOPS_SCHEMAS to a folder holding {pinned.strict}, {fetch}"


def schema_source(root: Path) -> SchemaSource:
    """The schema source for a project at `root`, from the environment (see the module doc)."""
    folders = []
    configured = os.environ.get("MODELOPS_SCHEMAS", "").strip()
    if configured:
        folders.append(Path(configured))
    folders.append(root.resolve().parent / "shared" / "schemas")
    url = os.environ.get("MODELOPS_SCHEMAS_URL", "").strip()
    return SchemaSource(
        folders=tuple(folders),
        cache=_cache_dir(),
        base_url=None if url.lower() in _OFF else (url or DEFAULT_BASE_URL),
        required=_is_true("MODELOPS_REQUIRE_SCHEMAS") or _is_true("GITHUB_ACTIONS"),
    )


def pinned_for(api_version: str, kind: str) -> Pinned | None:
    """The pinned schema of a custom kind, or None for a kind we do not pin (core kinds)."""
    return _BY_KIND.get((api_version, kind))


def load(pinned: Pinned, source: SchemaSource) -> JSONObject:
    """The strict JSON schema of `pinned`: from the first folder that has it, else downloaded.

    Raises:
        SchemaError: it is nowhere here and could not be downloaded, or the download was
            refused; the message says what happened and how to get it.
    """
    for folder in source.folders:
        path = folder / pinned.strict
        if path.is_file():
            return _read_json(path)
    if _cached(pinned, source.cache):
        return _read_json(source.cache / pinned.strict)
    schema = derive(pinned, crd_bytes(pinned, source))
    # A read-only cache costs a download next time, never the check itself.
    with contextlib.suppress(OSError):
        commit({source.cache / pinned.strict: bytes_writer(json.dumps(schema).encode())})
    return schema


def crd_bytes(pinned: Pinned, source: SchemaSource) -> bytes:
    """The pinned upstream CRD file: from the first folder or cache that has it, else downloaded.

    Raises:
        SchemaError: nowhere here with the pinned sha256 and not downloadable.
    """
    for folder in (*source.folders, source.cache):
        with contextlib.suppress(OSError):
            data = (folder / pinned.crd).read_bytes()
            if hashlib.sha256(data).hexdigest() == pinned.sha256:
                return data
    if source.base_url is None:
        raise SchemaError(
            f"{pinned.crd} is not in {', '.join(map(str, source.folders))} nor in the cache, "
            "and downloads are off (MODELOPS_SCHEMAS_URL=off)"
        )
    data = download(pinned, base_url=source.base_url)
    with contextlib.suppress(OSError):
        commit({source.cache / pinned.crd: bytes_writer(data)})
    return data


def download(pinned: Pinned, *, base_url: str) -> bytes:
    """The upstream file, refused unless its sha256 is the pinned one.

    Raises:
        SchemaError: unreachable, too large, or not the pinned bytes.
    """
    url = pinned.url(base_url)
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise SchemaError(f"MODELOPS_SCHEMAS_URL must be an http(s) URL, got {base_url!r}")
    from urllib.request import urlopen  # 40 ms of imports, paid only when downloading

    try:
        with urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
            data: bytes = response.read(MAX_DOWNLOAD_BYTES + 1)
    except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
        raise SchemaError(f"could not download {url} ({_reason(exc)})") from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise SchemaError(f"refused {url}: larger than {MAX_DOWNLOAD_BYTES} bytes")
    digest = hashlib.sha256(data).hexdigest()
    if digest != pinned.sha256:
        raise SchemaError(
            f"refused {url}: its sha256 is {digest}, not the pinned {pinned.sha256} (the file "
            "changed upstream or on the way); nothing was cached"
        )
    return data


def derive(pinned: Pinned, data: bytes) -> JSONObject:
    """The strict JSON schema of a pinned CRD file's bytes."""
    try:
        schema = storage_schema(
            data.decode("utf-8"), helm_template=pinned.helm_template, kind=pinned.kind
        )
    except (CrdError, UnicodeDecodeError) as exc:
        raise SchemaError(f"the {pinned.kind} CRD of {pinned.repository}: {exc}") from None
    return strict(
        schema,
        close_root=pinned.close_root,
        int_or_string_one_of=pinned.int_or_string_one_of,
    )


def _cached(pinned: Pinned, cache: Path) -> bool:
    """The cache holds the derived schema and the pinned CRD bytes it came from."""
    try:
        crd = (cache / pinned.crd).read_bytes()
    except OSError:
        return False
    return (cache / pinned.strict).is_file() and hashlib.sha256(crd).hexdigest() == pinned.sha256


def _is_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _read_json(path: Path) -> JSONObject:
    try:
        loaded: JSONObject = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaError(
            f"{path}: unreadable schema ({exc}); delete it to fetch it again"
        ) from None
    return loaded


def _cache_dir() -> Path:
    configured = os.environ.get("MODELOPS_SCHEMAS_CACHE", "").strip()
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "modelops" / "schemas"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__

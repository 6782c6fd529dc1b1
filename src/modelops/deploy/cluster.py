"""What an empty cluster needs before the generated manifests apply to it.

The generated manifests use custom kinds (SeldonDeployment, PodMonitor, Application, ...) and
name their namespaces; an API server refuses them until the CRDs and namespaces exist. This
writes both, the CRDs exactly as pinned upstream (`schemas.PINNED`, sha256-checked), so that a
throwaway cluster can take every generated object in a server-side dry run: `pr.yml`'s cluster
job does that on GitHub's runners, where Docker runs kind (runbooks/deploy.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

from modelops.deploy.crd import definitions
from modelops.deploy.schemas import Pinned, SchemaSource, crd_bytes, pinned_for
from modelops.errors import CrdError, DeployError, SchemaError
from modelops.io import JSONObject, commit, tree_writer
from modelops.paths import GENERATED_DIRS

NAMESPACES_FILE = "namespaces.yaml"


def generated_objects(root: Path) -> Iterator[JSONObject]:
    """Every Kubernetes object in the generated folders (plain rule files are not objects)."""
    for folder in GENERATED_DIRS:
        for path in sorted((root / folder).rglob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if isinstance(document, dict) and "apiVersion" in document and "kind" in document:
                    yield document


def custom_kinds(objects: Iterable[JSONObject]) -> tuple[Pinned, ...]:
    """The pinned CRDs of the custom kinds among `objects`, each once, in a stable order."""
    found = {pinned_for(o["apiVersion"], o["kind"]) for o in objects}
    return tuple(sorted((p for p in found if p is not None), key=lambda p: (p.crd, p.kind)))


def namespaces(objects: Iterable[JSONObject]) -> tuple[str, ...]:
    """The namespaces `objects` live in or (Argo CD Applications) deploy to, sorted."""
    names: set[str] = set()
    for obj in objects:
        names.add(obj.get("metadata", {}).get("namespace", ""))
        if obj["kind"] == "Application":
            names.add(obj.get("spec", {}).get("destination", {}).get("namespace", ""))
    return tuple(sorted(name for name in names if name))


def prerequisite_files(
    objects: list[JSONObject], crd_files: dict[Pinned, bytes]
) -> dict[Path, str]:
    """File name -> YAML: one file per CRD (`crd-<name>.yaml`) and one of the namespaces.

    A pinned file that holds several CRDs (VPA ships its checkpoint kind beside it) gives all
    of them: the controller that serves the kind needs them together.
    """
    files: dict[Path, str] = {}
    for pinned, data in crd_files.items():
        try:
            found = definitions(data.decode("utf-8"), helm_template=pinned.helm_template)
        except (CrdError, UnicodeDecodeError) as exc:
            raise SchemaError(f"the {pinned.kind} CRD of {pinned.repository}: {exc}") from None
        for definition in found:
            name = definition["metadata"]["name"]
            files[Path(f"crd-{name}.yaml")] = yaml.safe_dump(definition, sort_keys=False)
    listed = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        for name in namespaces(objects)
    ]
    files[Path(NAMESPACES_FILE)] = yaml.safe_dump_all(listed, sort_keys=False)
    return files


def write_prerequisites(root: Path, out: Path, source: SchemaSource) -> tuple[Path, ...]:
    """Write the CRDs and namespaces the generated manifests under `root` need into `out`.

    Raises:
        DeployError: nothing is generated yet (no release).
        SchemaError: a CRD cannot be had (the message says how to get it).
        Either way `out` is left as it was.
    """
    objects = list(generated_objects(root))
    if not objects:
        raise DeployError(
            "no generated manifests under manifests/ yet: they appear with the first release "
            "(`modelops release deploy`, or a merge to main); nothing needs a cluster before that"
        )
    crd_files = {pinned: crd_bytes(pinned, source) for pinned in custom_kinds(objects)}
    files = prerequisite_files(objects, crd_files)
    commit({out: tree_writer(files)})
    return tuple(sorted(out / name for name in files))

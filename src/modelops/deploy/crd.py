"""Turn a CustomResourceDefinition into the JSON schema that validates its objects.

Pure functions: the CRD's text in, a schema out. `storage_schema` takes the `openAPIV3Schema` of
the version the API server stores; `strict` closes every object that lists its properties, so
a misspelt field is an error instead of being pruned silently by the API server.
"""

from __future__ import annotations

import yaml

from modelops import yamltext
from modelops.errors import CrdError
from modelops.io import JSONObject

_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def storage_schema(
    text: str, *, helm_template: bool = False, kind: str | None = None
) -> JSONObject:
    """The `openAPIV3Schema` of the storage version of a CRD in `text`.

    `helm_template`: the file is a Helm chart template (Seldon ships its CRD that way); its
    `{{- ... }}` control lines are dropped first, the quoted `{{ ... }}` values stay as text.
    `kind`: the CRD of that kind, for files that hold several (VPA's); default the first.
    """
    documents = definitions(text, helm_template=helm_template)
    chosen = [d for d in documents if kind is None or d["spec"]["names"]["kind"] == kind]
    if not chosen:
        raise CrdError(f"no CustomResourceDefinition of kind {kind} in the file")
    versions = [v for v in chosen[0]["spec"]["versions"] if v.get("storage")]
    if len(versions) != 1:
        raise CrdError(f"expected one storage version, found {len(versions)}")
    schema: JSONObject = versions[0]["schema"]["openAPIV3Schema"]
    return schema


def definitions(text: str, *, helm_template: bool = False) -> list[JSONObject]:
    """The CustomResourceDefinitions in `text`, as an API server would take them.

    A Helm template's control lines are dropped, and so are the labels and annotations whose
    values are template expressions (`'{{ .Release.Name }}'` is no valid label value); the
    rest of each definition is kept as upstream wrote it.
    """
    if helm_template:
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("{{-"))
    try:
        documents = [d for d in yaml.load_all(text, Loader=yamltext.LOADER) if d]
    except yaml.YAMLError as exc:
        raise CrdError(f"not valid YAML ({exc})") from None
    found = [d for d in documents if d.get("kind") == "CustomResourceDefinition"]
    if not found:
        raise CrdError("no CustomResourceDefinition in the file")
    for definition in found:
        metadata = definition.get("metadata", {})
        for field in ("labels", "annotations"):
            values = metadata.get(field) or {}
            kept = {k: v for k, v in values.items() if "{{" not in str(v)}
            if kept:
                metadata[field] = kept
            else:
                metadata.pop(field, None)
    return found


def strict(
    schema: JSONObject, *, close_root: bool = True, int_or_string_one_of: bool = True
) -> JSONObject:
    """A copy of `schema` with `additionalProperties: false` on each object listing properties.

    An object marked `x-kubernetes-preserve-unknown-fields` stays open: the API server keeps
    the fields it does not list (KServe's InferenceService `status`), so they are no typo.

    `close_root=False` leaves the top level open and `int_or_string_one_of=False` keeps
    int-or-string fields as the CRD writes them (`anyOf`), as kubeconform's openapi2jsonschema
    does; otherwise such fields also get `oneOf: [integer, string]`.
    """

    def close(node: object, *, root: bool) -> object:
        if isinstance(node, list):
            return [close(item, root=False) for item in node]
        if not isinstance(node, dict):
            return node
        out = {
            # A field may be called "properties": the mapping of names is never a schema itself.
            key: {name: close(field, root=False) for name, field in value.items()}
            if key == "properties" and isinstance(value, dict)
            else close(value, root=False)
            for key, value in node.items()
        }
        if int_or_string_one_of and out.get("x-kubernetes-int-or-string") is True:
            out["oneOf"] = [dict(option) for option in _INT_OR_STRING]
        listed = "properties" in out and "additionalProperties" not in out
        kept = out.get("x-kubernetes-preserve-unknown-fields") is True
        if listed and not kept and (close_root or not root):
            out["additionalProperties"] = False
        return out

    closed = close(schema, root=True)
    assert isinstance(closed, dict), "a dict closes to a dict"
    return closed

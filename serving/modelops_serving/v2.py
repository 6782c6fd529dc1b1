"""The Open Inference Protocol (KServe's "V2" REST protocol, also Triton's, MLServer's and Seldon
Core 2's), translated to and from the one request the server checks and scores.

A V2 request is typed tensors; the server's model takes rows of named columns. The mapping:

- **Inputs.** One tensor per input column, named like the column (`GET /v2/models/<model>`
  lists them), of shape `[rows]` or `[rows, 1]` (MLServer sends a pandas column as `[rows, 1]`),
  `data` flat or nested in row-major order. A categorical input is `BYTES` (strings); a numeric
  one `FP64`, `FP32`, `FP16`, an integer type, or `BOOL` (true is 1). Every value must be of its
  tensor's datatype; `null` is a missing value in any tensor (JSON has no NaN; NaN and infinity
  are refused as in Seldon's protocol). An A/B experiment's unit (`BYTES` or a number) and
  covariate (a number) are tensors too. One 2-D tensor of every column is refused: a numeric
  type cannot carry the categorical columns, nor `BYTES` the numbers, so it is never unambiguous
  here; the per-column form is what pandas-based clients send anyway.
- **Outputs.** `predict_proba` (`FP64`, `[rows, classes]`: the Seldon answer's rows, classes in
  the order of the metadata's `parameters.classes`), `probability` (`FP64`, `[rows]`: the
  positive class's) and `label` (`BYTES`, `[rows]`: the positive class where `probability` is at
  least the deployment's `threshold`, else the other); in an experiment also `variants` and
  `model_versions` (`BYTES`, `[rows]`: each row's variant and its model_version). A request's
  `outputs` may pick some of them.
- **Parameters.** The answer's `parameters` are the Seldon answer's `meta.tags` that hold one
  value (`model_version`, `model_hash`, `data_version`, `model_kind`, `prediction_id`,
  `experiment`): the protocol's parameters are single values, so per-row tags are tensors.
  A request's parameters (MLServer's `content_type`, Triton's `binary_data_output`) and an
  input's are accepted and not used: every answer is JSON.

`parse` turns a request into the Seldon request `validation.to_batch` checks, so both protocols
share every check, limit, error reason, telemetry series and prediction id; `answer` turns the
Seldon answer back. `request_body` builds a V2 request from rows (for clients and benchmarks)
and `feedback` the Seldon feedback message for a V2 prediction (feedback has Seldon's route
only). Standard library only besides the server's validation, so the pipeline imports it too.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelops_contract.experiment import MODEL_VERSIONS_TAG, VARIANTS_TAG

from modelops_serving import quote
from modelops_serving.validation import Fields, RequestError, check_row_count

PREFIX = "/v2"
PLATFORM = "scikit-learn"
SERVER_NAME = "modelops"
BINARY_HEADER = "Inference-Header-Content-Length"
"""Triton's binary tensor data extension: tensors as raw bytes after the JSON. Not supported."""
PROBABILITIES, PROBABILITY, LABEL = "predict_proba", "probability", "label"
OUTPUTS = (PROBABILITIES, PROBABILITY, LABEL)
EXPERIMENT_OUTPUTS = (VARIANTS_TAG, MODEL_VERSIONS_TAG)
"""The per-row tags of an experiment's answer, as tensors of the same names."""
INPUT_DATATYPES = {"number": "FP64", "string": "BYTES"}
"""The datatype each kind of input is described with (`/metadata`, `/v2/models/<model>`)."""
UNIT = "unit"
"""The kind `parse` gives an experiment's unit field: a string or a number."""
FIELDS = Fields(
    names="'inputs[*].name'",
    row_at="row {row} of the inputs",
    value_at="the input '{column}' at row {row}",
)
"""How refusals name the parts of a V2 request (`validation.Fields`)."""

_INTEGERS = {
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
}
_FLOATS = {"FP16": 65504.0, "FP32": 3.4028234663852886e38, "FP64": sys.float_info.max}
DATATYPES = ("BOOL", *_INTEGERS, *_FLOATS, "BYTES")
"""The protocol's tensor datatypes (its BF16 has no JSON form)."""
_DATATYPE_SET = frozenset(DATATYPES)
_NUMERIC = frozenset(("BOOL", *_INTEGERS, *_FLOATS))
_CHECKED_BY_TO_BATCH = {"BYTES": "string", "FP64": "number"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
TENSOR_FORM = '{"name": "<input>", "shape": [<rows>], "datatype": "FP64", "data": [...]}'


@dataclass(frozen=True)
class Inference:
    """A V2 inference request, parsed: the Seldon request of its inputs, and what to answer."""

    request: dict[str, Any]
    outputs: tuple[str, ...]
    id: str | None


def is_v2(path: str) -> bool:
    """Whether a request path is the Open Inference Protocol's (its errors are `{"error"}`)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def is_infer(path: str) -> bool:
    """Whether a path is an inference endpoint: `/v2/models/<m>[/versions/<v>]/infer` (its
    routes take a trailing slash too)."""
    parts = path.removesuffix("/").split("/")
    return (
        len(parts) in (5, 7)
        and parts[1:3] == ["v2", "models"]
        and parts[-1] == "infer"
        and (len(parts) == 5 or parts[4] == "versions")
    )


def valid_name(name: str) -> bool:
    """A model name that is one URL path segment: letters, digits, `.`, `_`, `-`."""
    return _NAME.fullmatch(name) is not None


def check_model(asked: str, asked_version: str | None, *, name: str, version: str) -> None:
    """Refuse (404, `unknown_model`) a path naming another model, or another version."""
    if asked != name:
        raise RequestError(
            f"no model {quote.name(asked)} here: this server serves {name!r}, at /v2/models/{name}",
            status=404,
            reason="unknown_model",
        )
    if asked_version is not None and asked_version != version:
        raise RequestError(
            f"model {name!r} has no version {quote.name(asked_version)}: it serves version "
            f"{version!r}; name that one, or leave the version out (/v2/models/{name}/infer)",
            status=404,
            reason="unknown_model",
        )


def input_metadata(kinds: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Each input's tensor metadata, in the model's order, from (name, kind) pairs."""
    return [
        {"name": name, "datatype": INPUT_DATATYPES[kind], "shape": [-1]} for name, kind in kinds
    ]


def outputs_of(*, experiment: bool) -> tuple[str, ...]:
    """The outputs a model answers with (and a request may ask for)."""
    return OUTPUTS + EXPERIMENT_OUTPUTS if experiment else OUTPUTS


def model_metadata(
    *,
    name: str,
    version: str,
    kinds: Sequence[tuple[str, str]],
    classes: Sequence[str],
    experiment: bool,
    parameters: Mapping[str, Any],
) -> dict[str, Any]:
    """`GET /v2/models/<model>`: the protocol's model metadata, with this server's parameters."""
    shapes = {PROBABILITIES: [-1, len(classes)]}
    datatypes = {PROBABILITIES: "FP64", PROBABILITY: "FP64"}
    return {
        "name": name,
        "versions": [version],
        "platform": PLATFORM,
        "inputs": input_metadata(kinds),
        "outputs": [
            {
                "name": output,
                "datatype": datatypes.get(output, "BYTES"),
                "shape": shapes.get(output, [-1]),
            }
            for output in outputs_of(experiment=experiment)
        ],
        "parameters": {"classes": list(classes), **parameters},
    }


def parse(
    payload: Any, *, kinds: Mapping[str, str], available: Sequence[str], max_rows: int
) -> Inference:
    """A V2 inference request as the Seldon request the server checks, and what to answer.

    `kinds` gives the kind (`number`, `string`, or `UNIT`) of each input the server knows: a
    tensor of another datatype is refused. Tensors of other names pass on, for `to_batch` to
    refuse by name as it refuses Seldon's `data.names`.

    Raises:
        RequestError: what is wrong and where (`'inputs[2]'`, `the input 'age'`), and the fix.
    """
    if not isinstance(payload, dict):
        raise RequestError(
            f'the body must be an inference request, {{"inputs": [{TENSOR_FORM}, ...]}}',
            reason="no_inputs",
        )
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError(
            f"'id' must be a string, got {quote.excerpt(request_id)}", reason="invalid_message"
        )
    if not isinstance(payload.get("parameters", {}), dict):
        raise RequestError("'parameters' must be an object", reason="invalid_message")
    outputs = _outputs(payload.get("outputs"), available)
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(
            f"the request needs 'inputs', a list of tensors, one per input: send {{\"inputs\": "
            f"[{TENSOR_FORM}, ...]}} (GET /v2/models/<model> lists the inputs)",
            reason="no_inputs",
        )
    names: list[str] = []
    columns: list[list[Any]] = []
    rows = -1
    for position, tensor in enumerate(inputs):
        name, datatype, shape = _header(tensor, position)
        if rows < 0:
            rows = shape[0]
            if rows == 0:
                raise RequestError(
                    f"{_input(name)} has shape {shape}: send at least one row",
                    reason="no_rows",
                )
            check_row_count(rows, max_rows=max_rows)
        elif shape[0] != rows:
            raise RequestError(
                f"{_input(name)} has {shape[0]} rows and {quote.name(names[0])} "
                f"has {rows}: every input holds the same rows",
                reason="shape_mismatch",
            )
        values = _values(tensor, name, shape)
        kind = kinds.get(name)
        _fits(name, datatype, kind)
        # `to_batch` checks each value of an input as it checks Seldon's (strings, finite
        # numbers); here only what a datatype narrows further (integers, ranges, booleans).
        checked = _CHECKED_BY_TO_BATCH.get(datatype) == kind
        columns.append(values if checked else _typed(values, datatype, name))
        names.append(name)
    return Inference(
        request={
            "data": {"names": names, "ndarray": [list(row) for row in zip(*columns, strict=True)]}
        },
        outputs=outputs,
        id=request_id,
    )


def row_count(payload: Any) -> int:
    """A request's rows as its first tensor's shape says, when it says (for the counters)."""
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    first = inputs[0] if isinstance(inputs, list) and inputs else None
    shape = first.get("shape") if isinstance(first, dict) else None
    if isinstance(shape, list) and shape and type(shape[0]) is int and shape[0] >= 0:
        return shape[0]
    return 0


def answer(
    seldon: Mapping[str, Any],
    *,
    model_name: str,
    inference: Inference,
    positive_label: str,
    threshold: float,
) -> dict[str, Any]:
    """The V2 answer of the Seldon answer to `inference.request`."""
    classes: list[str] = seldon["data"]["names"]
    rows: list[list[float]] = seldon["data"]["ndarray"]
    tags: Mapping[str, Any] = seldon["meta"]["tags"]
    positive = classes.index(positive_label)
    negative = next(label for label in classes if label != positive_label)
    count = len(rows)
    tensors: list[dict[str, Any]] = []
    for name in inference.outputs:
        if name == PROBABILITIES:
            flat = [value for row in rows for value in row]
            tensors.append(_tensor(name, "FP64", [count, len(classes)], flat))
        elif name == PROBABILITY:
            tensors.append(_tensor(name, "FP64", [count], [row[positive] for row in rows]))
        elif name == LABEL:
            labels = [positive_label if row[positive] >= threshold else negative for row in rows]
            tensors.append(_tensor(name, "BYTES", [count], labels))
        else:
            tensors.append(_tensor(name, "BYTES", [count], list(tags[name])))
    body: dict[str, Any] = {
        "model_name": model_name,
        "model_version": tags["model_version"],
        "outputs": tensors,
        "parameters": {k: v for k, v in tags.items() if isinstance(v, str | int | float)},
    }
    if inference.id is not None:
        body["id"] = inference.id
    return body


def request_body(
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    datatypes: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """A V2 inference request of rows: one tensor per column, shape [rows], None as null.

    A column's datatype is `datatypes[name]` (the metadata's inputs give them), else its values'
    (strings BYTES, integers INT64, other numbers FP64, booleans BOOL).

    Raises:
        ValueError: a column whose datatype is neither given nor told by its values.
    """
    inputs = []
    for index, name in enumerate(names):
        values = [row[index] for row in rows]
        datatype = (datatypes or {}).get(name) or _datatype_of(values, name)
        inputs.append(_tensor(name, datatype, [len(values)], values))
    body: dict[str, Any] = {"inputs": inputs}
    if request_id is not None:
        body["id"] = request_id
    return body


def feedback(
    request: Mapping[str, Any],
    answer: Mapping[str, Any],
    truth: Sequence[Any],
    *,
    classes: Sequence[str],
) -> dict[str, Any]:
    """Seldon's feedback message for a V2 prediction: the request's rows, the answer's class
    probabilities and prediction id (`classes`: the metadata's `parameters.classes`), and one
    truth per row. Needs the answer's `predict_proba`; raises ValueError without it."""
    everything = outputs_of(experiment=True)
    inference = parse(request, kinds={}, available=everything, max_rows=sys.maxsize)
    tensor = next((o for o in answer.get("outputs", ()) if o.get("name") == PROBABILITIES), None)
    if tensor is None:
        raise ValueError(f"the answer has no {PROBABILITIES!r}: ask for it (or for every output)")
    width = len(classes)
    flat = tensor["data"]
    probabilities = [flat[start : start + width] for start in range(0, len(flat), width)]
    return {
        "request": inference.request,
        "response": {
            "data": {"names": list(classes), "ndarray": probabilities},
            "meta": {"tags": dict(answer.get("parameters", {}))},
        },
        "truth": {"data": {"ndarray": [[value] for value in truth]}},
    }


def _outputs(requested: Any, available: Sequence[str]) -> tuple[str, ...]:
    """The outputs a request asks for, in the server's order; all of them when none is named."""
    if requested is None or requested == []:
        return tuple(available)
    if not isinstance(requested, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested
    ):
        raise RequestError(
            "'outputs' must be a list of objects with a 'name' each, or left out for all",
            reason="invalid_message",
        )
    names = {o["name"] for o in requested}
    unknown = sorted(names - set(available))
    if unknown:
        raise RequestError(
            f"'outputs' asks for {quote.name(unknown[0])}: this model answers "
            f"{', '.join(available)}",
            reason="unknown_output",
        )
    return tuple(name for name in available if name in names)


def _header(tensor: Any, position: int) -> tuple[str, str, list[int]]:
    """A tensor's name, datatype and shape, checked: one input column, [rows] or [rows, 1]."""
    if not isinstance(tensor, dict):
        raise RequestError(
            f"'inputs[{position}]' must be a tensor: {TENSOR_FORM}", reason="bad_tensor"
        )
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError(
            f"'inputs[{position}]' needs a 'name', the input it holds: {TENSOR_FORM}",
            reason="bad_tensor",
        )
    datatype = tensor.get("datatype")
    if type(datatype) is not str or datatype not in _DATATYPE_SET:
        if not isinstance(datatype, str):
            raise RequestError(
                f"{_input(name)} needs a 'datatype': {TENSOR_FORM}", reason="bad_tensor"
            )
        raise RequestError(
            f"{_input(name)} has datatype {quote.name(datatype)}: the protocol's are "
            f"{', '.join(DATATYPES)}",
            reason="unknown_datatype",
        )
    shape = tensor.get("shape")
    if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape):
        raise RequestError(
            f"{_input(name)} needs a 'shape', a list of whole numbers: [rows] or [rows, 1]",
            reason="bad_tensor",
        )
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise RequestError(
            f"{_input(name)} has shape {quote.excerpt(shape)}: each input is a tensor of its "
            "own, of shape [rows] or [rows, 1]; one tensor of several inputs is not taken, send "
            "one per input",
            reason="shape_mismatch",
        )
    if type(tensor.get("parameters", {})) is not dict:
        raise RequestError(
            f"{_input(name)} has 'parameters' that are not an object", reason="bad_tensor"
        )
    return name, datatype, shape


def _input(name: str) -> str:
    """How a refusal names a tensor: `the input <name>` (quoted as a client's name is)."""
    return f"the input {quote.name(name)}"


def _values(tensor: Mapping[str, Any], name: str, shape: list[int]) -> list[Any]:
    """A tensor's data, flat in row-major order (flat or nested), one value per row."""
    data = tensor.get("data")
    if not isinstance(data, list):
        raise RequestError(
            f"{_input(name)} needs 'data', a list of its values in row-major order",
            reason="bad_tensor",
        )
    # Nesting is bounded by the body's (body.MAX_DEPTH); each pass is linear in the values.
    while any(type(value) is list for value in data):
        flat: list[Any] = []
        for value in data:
            if type(value) is list:
                flat.extend(value)
            else:
                flat.append(value)
        data = flat
    if len(data) != shape[0]:
        raise RequestError(
            f"{_input(name)} has {len(data)} values for its shape {shape}: send one value per row",
            reason="shape_mismatch",
        )
    return data


def _fits(name: str, datatype: str, kind: str | None) -> None:
    """Refuse a datatype that cannot carry the input: text in numbers, numbers in text."""
    if kind == "string" and datatype != "BYTES":
        fix = "BYTES (strings)"
    elif kind == "number" and datatype not in _NUMERIC:
        fix = "FP64 (or FP32, FP16, an integer type, or BOOL)"
    elif kind == UNIT and datatype == "BOOL":
        fix = "BYTES or a number type (a unit is a string or a number)"
    else:
        return
    what = {"string": "categorical", "number": "numeric", UNIT: "the experiment's unit"}[kind]
    raise RequestError(
        f"{_input(name)} is {what}: send it as {fix}, not {datatype}",
        reason="datatype_mismatch",
    )


def _typed(values: list[Any], datatype: str, name: str) -> list[Any]:
    """The values, each checked against the datatype (null passes); BOOL as 1 and 0."""
    if datatype == "BYTES":
        bad = next((i for i, v in enumerate(values) if v is not None and type(v) is not str), -1)
        what = "a string"
    elif datatype == "BOOL":
        bad = next((i for i, v in enumerate(values) if v is not None and type(v) is not bool), -1)
        what = "true or false"
        if bad < 0:
            return [None if v is None else int(v) for v in values]
    elif datatype in _INTEGERS:
        low, high = _INTEGERS[datatype]
        bad = next(
            (
                i
                for i, v in enumerate(values)
                if v is not None and (type(v) is not int or not low <= v <= high)
            ),
            -1,
        )
        what = f"an integer from {low} to {high}"
    else:
        largest = _FLOATS[datatype]
        bad = next(
            (
                i
                for i, v in enumerate(values)
                if v is not None
                and (type(v) not in (int, float) or (abs(v) > largest and abs(v) != float("inf")))
            ),
            -1,
        )
        what = "a number" if datatype == "FP64" else f"a number within ±{largest:.5g}"
    if bad >= 0:
        raise RequestError(
            f"{_input(name)} at row {bad} is {quote.excerpt(values[bad])}, not "
            f"{what}: every value of a {datatype} tensor is {what}, or null for a missing value",
            reason="datatype_mismatch",
        )
    return values


def _tensor(name: str, datatype: str, shape: list[int], data: list[Any]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def _datatype_of(values: Sequence[Any], name: str) -> str:
    kinds = {type(value) for value in values if value is not None}
    if kinds == {str}:
        return "BYTES"
    if kinds == {bool}:
        return "BOOL"
    if kinds == {int}:
        return "INT64"
    if kinds and kinds <= {int, float}:
        return "FP64"
    raise ValueError(
        f"column {name!r} has values of no single datatype ({sorted(k.__name__ for k in kinds)}):"
        " name its datatype (the metadata's inputs list each one)"
    )

"""The Open Inference Protocol's pure conversions (`modelops_serving.v2`), in process.

Given V2 requests as KServe's, Triton's and MLServer's clients send them, when parsed, then each
becomes the Seldon request the server already checks (and the checks name V2's parts); a request
the protocol or the model cannot take is refused with its reason and a message that says the
fix; a Seldon answer becomes the V2 answer; a table becomes a V2 request, and a V2 prediction
Seldon's feedback message. Over HTTP: test_v2_protocol.py.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from modelops_contract.experiment import MODEL_VERSIONS_TAG, VARIANTS_TAG
from modelops_serving import v2
from modelops_serving.artifact import Column
from modelops_serving.validation import RequestError, to_batch

from tests.serving.test_http import _random_json

COLUMNS = (Column("plan", "string"), Column("age", "number"), Column("calls", "number"))
KINDS: dict[str, str] = {c.name: c.kind for c in COLUMNS}
ALL = v2.outputs_of(experiment=False)


def _tensor(name: str, datatype: str, data: list[Any], shape: list[int] | None = None) -> Any:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def _request(**changes: Any) -> dict[str, Any]:
    """Two rows of the three inputs, one tensor per column, as MLServer sends a frame."""
    body: dict[str, Any] = {
        "inputs": [
            _tensor("plan", "BYTES", ["basic", None]),
            _tensor("age", "FP64", [[30.5], [41.0]], [2, 1]),
            _tensor("calls", "INT64", [2, 0]),
        ]
    }
    return {**body, **changes}


def _parse(payload: Any, *, kinds: dict[str, str] = KINDS, max_rows: int = 10) -> v2.Inference:
    return v2.parse(payload, kinds=kinds, available=ALL, max_rows=max_rows)


def _refused(payload: Any, **options: Any) -> RequestError:
    with pytest.raises(RequestError) as caught:
        _parse(payload, **options)
    return caught.value


def test_one_tensor_per_column_becomes_the_seldon_request_the_server_checks() -> None:
    inference = _parse(_request(id="req-7"))
    assert inference.request == {
        "data": {
            "names": ["plan", "age", "calls"],
            "ndarray": [["basic", 30.5, 2], [None, 41.0, 0]],
        }
    }
    assert inference.outputs == ALL, "no 'outputs': every output"
    assert inference.id == "req-7"
    batch = to_batch(inference.request, COLUMNS, max_rows=10, fields=v2.FIELDS)
    assert batch.columns["calls"].tolist() == [2.0, 0.0]
    assert batch.rows_with_missing == 1


def test_bool_is_one_and_zero_and_null_is_missing_in_any_datatype() -> None:
    inference = _parse(
        {
            "inputs": [
                _tensor("plan", "BYTES", ["basic", "premium", None]),
                _tensor("age", "FP32", [None, 1.5, 2]),
                _tensor("calls", "BOOL", [True, False, None]),
            ]
        }
    )
    rows = inference.request["data"]["ndarray"]
    assert [row[2] for row in rows] == [1, 0, None]
    assert [type(row[2]) for row in rows[:2]] == [int, int], "not bools: to_batch refuses those"
    assert [row[1] for row in rows] == [None, 1.5, 2]


def test_tensors_may_come_in_any_order_and_unknown_names_pass_on_for_to_batch() -> None:
    shuffled = {"inputs": list(reversed(_request()["inputs"]))}
    assert _parse(shuffled).request["data"]["names"] == ["calls", "age", "plan"]
    extra = {"inputs": [*_request()["inputs"], _tensor("customer_id", "BYTES", ["c1", "c2"])]}
    request = _parse(extra).request
    with pytest.raises(RequestError) as caught:
        to_batch(request, COLUMNS, max_rows=10, fields=v2.FIELDS)
    assert caught.value.reason == "too_many_names"
    assert caught.value.message.startswith("'inputs[*].name' has 4 names")


def test_the_shared_checks_name_the_v2_parts_of_the_request() -> None:
    missing = _parse({"inputs": _request()["inputs"][:2]}).request
    with pytest.raises(RequestError) as caught:
        to_batch(missing, COLUMNS, max_rows=10, fields=v2.FIELDS)
    assert caught.value.reason == "missing_name"
    assert caught.value.message.startswith(
        "'inputs[*].name' does not match the model's inputs (missing calls)"
    )
    infinite = _parse(_request()).request
    infinite["data"]["ndarray"][0][1] = float("inf")
    with pytest.raises(RequestError) as caught:
        to_batch(infinite, COLUMNS, max_rows=10, fields=v2.FIELDS)
    assert caught.value.reason == "not_finite"
    assert caught.value.message.startswith("the input 'age' at row 0 is inf")


def _inputs(*tensors: Any) -> dict[str, Any]:
    return {"inputs": list(tensors)}


GOOD_PLAN = _tensor("plan", "BYTES", ["basic"])


@pytest.mark.parametrize(
    ("payload", "reason", "status", "expected"),
    [
        ([1], "no_inputs", 400, "the body must be an inference request"),
        ({}, "no_inputs", 400, "the request needs 'inputs', a list of tensors"),
        ({"inputs": []}, "no_inputs", 400, "the request needs 'inputs'"),
        (_request(id=7), "invalid_message", 400, "'id' must be a string, got 7"),
        (_request(parameters=[1]), "invalid_message", 400, "'parameters' must be an object"),
        (_request(outputs="label"), "invalid_message", 400, "'outputs' must be a list"),
        (
            _request(outputs=[{"name": "score"}]),
            "unknown_output",
            400,
            "'outputs' asks for score: this model answers predict_proba, probability, label",
        ),
        (_inputs([1]), "bad_tensor", 400, "'inputs[0]' must be a tensor"),
        (_inputs({"datatype": "FP64"}), "bad_tensor", 400, "'inputs[0]' needs a 'name'"),
        (
            _inputs(_tensor("age", "FLOAT", [1])),
            "unknown_datatype",
            400,
            "the input age has datatype FLOAT: the protocol's are BOOL, UINT8",
        ),
        (
            _inputs({**_tensor("age", "FP64", [1]), "shape": "1"}),
            "bad_tensor",
            400,
            "the input age needs a 'shape', a list of whole numbers",
        ),
        (
            _inputs(_tensor("age", "FP64", [[1, 2, 3]], [1, 3])),
            "shape_mismatch",
            400,
            "the input age has shape [1, 3]: each input is a tensor of its own",
        ),
        (
            _inputs(_tensor("age", "FP64", [1, 2, 3], [2])),
            "shape_mismatch",
            400,
            "the input age has 3 values for its shape [2]: send one value per row",
        ),
        (
            _inputs(GOOD_PLAN, _tensor("age", "FP64", [1, 2])),
            "shape_mismatch",
            400,
            "the input age has 2 rows and plan has 1: every input holds the same rows",
        ),
        (
            _inputs({**_tensor("age", "FP64", [1]), "data": "1"}),
            "bad_tensor",
            400,
            "the input age needs 'data', a list of its values",
        ),
        (_inputs(_tensor("age", "FP64", [], [0])), "no_rows", 400, "send at least one row"),
        (
            _inputs(_tensor("age", "FP64", [1.0] * 11)),
            "too_many_rows",
            413,
            "the batch has 11 rows, over the limit of 10: split it",
        ),
        (
            _inputs(_tensor("age", "BYTES", ["30"])),
            "datatype_mismatch",
            400,
            "the input age is numeric: send it as FP64 (or FP32, FP16, an integer type, or BOOL)",
        ),
        (
            _inputs(_tensor("plan", "INT64", [3])),
            "datatype_mismatch",
            400,
            "the input plan is categorical: send it as BYTES (strings), not INT64",
        ),
        (
            _inputs(_tensor("age", "INT64", [1, 1.5])),
            "datatype_mismatch",
            400,
            "the input age at row 1 is 1.5, not an integer from",
        ),
        (
            _inputs(_tensor("age", "UINT8", [256])),
            "datatype_mismatch",
            400,
            "the input age at row 0 is 256, not an integer from 0 to 255",
        ),
        (
            _inputs(_tensor("age", "FP32", [1e39])),
            "datatype_mismatch",
            400,
            "the input age at row 0 is 1e+39, not a number within ±3.4028e+38",
        ),
        (
            _inputs(_tensor("extra", "BYTES", ["a", 3])),
            "datatype_mismatch",
            400,
            "the input extra at row 1 is 3, not a string: every value of a BYTES tensor is a "
            "string, or null for a missing value",
        ),
        (
            _inputs(_tensor("extra", "FP64", [True])),
            "datatype_mismatch",
            400,
            "the input extra at row 0 is True, not a number",
        ),
        (
            _inputs(_tensor("age", "BOOL", [1])),
            "datatype_mismatch",
            400,
            "the input age at row 0 is 1, not true or false",
        ),
    ],
)
def test_a_request_the_protocol_or_the_model_cannot_take_says_why(
    payload: Any, reason: str, status: int, expected: str
) -> None:
    refused = _refused(payload)
    assert (refused.reason, refused.status) == (reason, status), refused.message
    assert expected in refused.message, refused.message


@pytest.mark.parametrize(
    ("tensor", "reason", "expected"),
    [
        (
            _tensor("age", "FP64", [30, True]),
            "not_a_number",
            "the input 'age' at row 1 must be a number or null, got True",
        ),
        (
            _tensor("plan", "BYTES", ["basic", 3]),
            "not_a_string",
            "the input 'plan' at row 1 must be a string or null, got 3",
        ),
    ],
)
def test_an_inputs_values_are_checked_as_seldons_are(
    tensor: Any, reason: str, expected: str
) -> None:
    """FP64 numbers and BYTES strings of the model's inputs: `to_batch`'s own checks."""
    others = [t for t in _request()["inputs"] if t["name"] != tensor["name"]]
    refused = _outcome({"inputs": [*others, tensor]})
    assert refused is not None
    assert (refused.reason, refused.message) == (reason, expected)


def test_an_experiments_unit_may_be_text_or_a_number_but_not_a_bool() -> None:
    kinds = {**KINDS, "customer_id": v2.UNIT}
    units = _tensor("customer_id", "INT64", [42, 43])
    request = _parse({"inputs": [*_request()["inputs"], units]}, kinds=kinds).request
    assert [row[-1] for row in request["data"]["ndarray"]] == [42, 43]
    refused = _refused(
        {"inputs": [*_request()["inputs"], _tensor("customer_id", "BOOL", [True, False])]},
        kinds=kinds,
    )
    assert refused.reason == "datatype_mismatch"
    assert "the input customer_id is the experiment's unit: send it as BYTES" in refused.message


def _seldon_answer(**tags: Any) -> dict[str, Any]:
    return {
        "data": {"names": ["0", "1"], "ndarray": [[0.75, 0.25], [0.5, 0.5], [0.1, 0.9]]},
        "meta": {"tags": {"model_version": "abc123", "prediction_id": "1.2.3.4", **tags}},
    }


def test_the_seldon_answer_becomes_the_v2_answer_with_label_at_the_threshold() -> None:
    inference = v2.Inference(request={}, outputs=ALL, id="req-1")
    answer = v2.answer(
        _seldon_answer(), model_name="churn", inference=inference, positive_label="1", threshold=0.5
    )
    assert answer["model_name"] == "churn"
    assert answer["model_version"] == "abc123"
    assert answer["id"] == "req-1"
    assert answer["parameters"] == {"model_version": "abc123", "prediction_id": "1.2.3.4"}
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["predict_proba"] == {
        "name": "predict_proba",
        "datatype": "FP64",
        "shape": [3, 2],
        "data": [0.75, 0.25, 0.5, 0.5, 0.1, 0.9],
    }
    assert outputs["probability"]["data"] == [0.25, 0.5, 0.9]
    assert outputs["label"] == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [3],
        "data": ["0", "1", "1"],
    }, "a probability at the threshold is positive, as telemetry counts it"


def test_an_experiments_per_row_tags_are_tensors_and_its_name_a_parameter() -> None:
    seldon = _seldon_answer(
        experiment="offer",
        **{VARIANTS_TAG: ["stable", "b", "b"], MODEL_VERSIONS_TAG: ["v1", "v2", "v2"]},
    )
    wanted = (v2.PROBABILITY, VARIANTS_TAG, MODEL_VERSIONS_TAG)
    answer = v2.answer(
        seldon,
        model_name="churn",
        inference=v2.Inference(request={}, outputs=wanted, id=None),
        positive_label="1",
        threshold=0.95,
    )
    assert "id" not in answer, "no id asked: none answered"
    assert [o["name"] for o in answer["outputs"]] == list(wanted)
    assert answer["outputs"][1]["data"] == ["stable", "b", "b"]
    assert answer["outputs"][2] == {
        "name": MODEL_VERSIONS_TAG,
        "datatype": "BYTES",
        "shape": [3],
        "data": ["v1", "v2", "v2"],
    }
    assert answer["parameters"]["experiment"] == "offer"
    assert VARIANTS_TAG not in answer["parameters"], "parameters hold single values"


def test_outputs_are_answered_in_the_servers_order_whatever_the_request_asks() -> None:
    asked = [{"name": "label"}, {"name": "probability", "parameters": {"binary_data": True}}]
    assert _parse(_request(outputs=asked)).outputs == ("probability", "label")


def test_a_table_becomes_a_request_the_server_parses_back_into_its_rows() -> None:
    names = ["plan", "age", "calls", "flag"]
    rows: list[list[Any]] = [["basic", 30.5, 2, True], [None, None, 0, False]]
    body = v2.request_body(names, rows, request_id="r1")
    assert [(t["name"], t["datatype"], t["shape"]) for t in body["inputs"]] == [
        ("plan", "BYTES", [2]),
        ("age", "FP64", [2]),
        ("calls", "INT64", [2]),
        ("flag", "BOOL", [2]),
    ]
    assert body["id"] == "r1"
    typed = v2.request_body(names[:3], [r[:3] for r in rows], datatypes={"calls": "FP64"})
    assert typed["inputs"][2]["datatype"] == "FP64", "a datatype given wins"
    parsed = _parse(typed).request["data"]
    assert parsed == {"names": names[:3], "ndarray": [r[:3] for r in rows]}
    with pytest.raises(ValueError, match="'age' has values of no single datatype"):
        v2.request_body(["age"], [[None], [None]])
    with pytest.raises(ValueError, match="'mixed'"):
        v2.request_body(["mixed"], [["a"], [1]])


def test_a_v2_prediction_becomes_seldons_feedback_message() -> None:
    request = _request()
    answer = v2.answer(
        _seldon_answer(),
        model_name="churn",
        inference=v2.Inference(request={}, outputs=ALL, id=None),
        positive_label="1",
        threshold=0.5,
    )
    message = v2.feedback(request, answer, ["1", "0", "1"], classes=["0", "1"])
    assert message["request"] == _parse(request).request
    assert message["response"] == {
        "data": {"names": ["0", "1"], "ndarray": [[0.75, 0.25], [0.5, 0.5], [0.1, 0.9]]},
        "meta": {"tags": {"model_version": "abc123", "prediction_id": "1.2.3.4"}},
    }
    assert message["truth"] == {"data": {"ndarray": [["1"], ["0"], ["1"]]}}
    without = {**answer, "outputs": [o for o in answer["outputs"] if o["name"] == "label"]}
    with pytest.raises(ValueError, match="the answer has no 'predict_proba'"):
        v2.feedback(request, without, ["1"], classes=["0", "1"])


@pytest.mark.parametrize(
    ("path", "v2_path", "infer"),
    [
        ("/v2", True, False),
        ("/v2/health/ready", True, False),
        ("/v2/models/churn/infer", True, True),
        ("/v2/models/churn/infer/", True, True),
        ("/v2/models/churn/versions/abc/infer", True, True),
        ("/v2/models/churn/versions/infer", True, False),
        ("/v2/models/churn/ready", True, False),
        ("/v2x/models/churn/infer", False, False),
        ("/api/v1.0/predictions", False, False),
    ],
)
def test_which_paths_are_the_protocols_and_which_infer(
    path: str, v2_path: bool, infer: bool
) -> None:
    assert v2.is_v2(path) is v2_path
    assert v2.is_infer(path) is infer


@pytest.mark.parametrize(
    ("name", "valid"),
    [("churn", True), ("modelops-classifier", True), ("m.v2_a", True), ("", False), ("a/b", False)],
)
def test_a_model_name_is_one_path_segment(name: str, valid: bool) -> None:
    assert v2.valid_name(name) is valid


def test_another_model_or_version_is_a_404_that_names_the_served_one() -> None:
    v2.check_model("churn", None, name="churn", version="abc")
    v2.check_model("churn", "abc", name="churn", version="abc")
    with pytest.raises(RequestError) as caught:
        v2.check_model("other", None, name="churn", version="abc")
    assert (caught.value.status, caught.value.reason) == (404, "unknown_model")
    assert "no model other here: this server serves 'churn', at /v2/models/churn" in str(
        caught.value
    )
    with pytest.raises(RequestError) as caught:
        v2.check_model("churn", "old", name="churn", version="abc")
    assert "has no version old: it serves version 'abc'" in caught.value.message


def test_the_metadata_describes_inputs_outputs_and_the_servers_parameters() -> None:
    metadata = v2.model_metadata(
        name="churn",
        version="abc",
        kinds=[(c.name, c.kind) for c in COLUMNS],
        classes=["0", "1"],
        experiment=True,
        parameters={"positive_label": "1"},
    )
    assert metadata["versions"] == ["abc"]
    assert metadata["inputs"][:2] == [
        {"name": "plan", "datatype": "BYTES", "shape": [-1]},
        {"name": "age", "datatype": "FP64", "shape": [-1]},
    ]
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == [
        ("predict_proba", "FP64", [-1, 2]),
        ("probability", "FP64", [-1]),
        ("label", "BYTES", [-1]),
        (VARIANTS_TAG, "BYTES", [-1]),
        (MODEL_VERSIONS_TAG, "BYTES", [-1]),
    ]
    assert metadata["parameters"] == {"classes": ["0", "1"], "positive_label": "1"}


def test_row_count_reads_the_first_tensors_shape_when_it_can() -> None:
    assert v2.row_count(_request()) == 2
    assert v2.row_count({"inputs": [{"shape": ["2"]}]}) == 0
    assert v2.row_count([]) == 0


FUZZ_REQUESTS = 3000


def mutated(randomness: random.Random, good: dict[str, Any]) -> Any:
    """A valid V2 request with up to three random mutations: of its fields, its tensors and
    their values."""
    payload = json.loads(json.dumps(good))
    tensors = payload["inputs"]
    for _ in range(randomness.randint(0, 3)):
        tensor = randomness.choice(tensors) if tensors else {}
        action = randomness.randrange(8)
        if action == 0:
            tensor[randomness.choice(["name", "shape", "datatype", "data", "parameters"])] = (
                _random_json(randomness, depth=2)
            )
        elif action == 1 and isinstance(tensor.get("data"), list) and tensor["data"]:
            tensor["data"][randomness.randrange(len(tensor["data"]))] = _random_json(
                randomness, depth=1
            )
        elif action == 2:
            tensor["datatype"] = randomness.choice(v2.DATATYPES)
        elif action == 3:
            tensor["shape"] = randomness.choice([[0], [2], [1, 1], [1, 2], [3, 1], [], [-1]])
        elif action == 4 and tensors:
            tensors.pop(randomness.randrange(len(tensors)))
        elif action == 5:
            payload[randomness.choice(["id", "parameters", "outputs", "inputs"])] = _random_json(
                randomness, depth=2
            )
        elif action == 6:
            tensors.append(json.loads(json.dumps(tensor)))
        else:
            return _random_json(randomness, depth=3)
    return payload


def _outcome(payload: Any) -> RequestError | None:
    """None when the request passes every check, else its refusal; anything else raises."""
    try:
        inference = _parse(payload)
        to_batch(inference.request, COLUMNS, max_rows=10, fields=v2.FIELDS)
    except RequestError as refused:
        return refused
    return None


def test_random_requests_are_answered_or_refused_never_an_exception() -> None:
    randomness = random.Random(22)
    good = _request()
    answered = 0
    for _ in range(FUZZ_REQUESTS):
        payload = mutated(randomness, good)
        refused = _outcome(payload)
        if refused is None:
            answered += 1
        else:
            assert refused.status in (400, 413), refused.message
            assert len(refused.message) < 2000
    assert 0 < answered < FUZZ_REQUESTS, "both answers and refusals were tried"

"""The Open Inference Protocol (V2) on the real microservice, driven by Triton's own client.

`tritonclient.http` (NVIDIA's client for the protocol, not written here) checks health, reads
the metadata and infers over loopback against the server Seldon's protocol is served from:

- health and metadata answer as the protocol says, and describe the served model;
- the same rows get the same probabilities, tags and telemetry increments through V2 as through
  Seldon's protocol, and a V2 prediction's truth counts through Seldon's feedback route;
- a wrong model or version, a wrong datatype, a shape mismatch, a missing input, NaN, binary
  tensor data, too many rows, an oversized body and malformed JSON are each refused with the
  protocol's `{"error": ...}`, the fix in the message, and counted by reason;
- an experiment server assigns each V2 row by its unit tensor, as by Seldon's unit column;
- a model name that is not a path segment stops the server before it is ready.
"""

from __future__ import annotations

import http.client
import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from modelops_contract import FEEDBACK_KEY_ENV, REQUEST_DURATION, Experiment, assign
from modelops_serving import v2
from modelops_serving.artifact import content_hash, read_artifact
from modelops_serving.body import body_limit
from modelops_serving.launch import PARAMETERS_ENV, Server
from tritonclient.utils import InferenceServerException

from modelops.data import features
from modelops.prepared import load_prepared
from tests.serving.conftest import SERVING_BIN, serving
from tests.serving.experiment_models import UNIT, alone
from tests.serving.test_http import _send
from tests.serving.test_telemetry import Samples, _scrape, _value
from tests.serving.test_v2_conversion import mutated

MODEL = "modelops-classifier"
"""The default model name: what the Seldon metadata and /v2/models/<name> call the model."""
FEEDBACK_KEY = "tests-only-v2-feedback-key-0123456789abcdef"
EXPERIMENT_MODEL = "churn-offer"


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("v2") / "server.log"
    yield from serving(
        Server(
            SERVING_BIN,
            model_dir,
            workers=2,
            log_file=log,
            model_hash=content_hash(model_dir),
            extra_env={FEEDBACK_KEY_ENV: FEEDBACK_KEY},
        ),
        log,
    )


@pytest.fixture
def client(server: Server) -> Iterator[triton.InferenceServerClient]:
    connected = triton.InferenceServerClient(url=f"127.0.0.1:{server.http_port}")
    try:
        yield connected
    finally:
        connected.close()


@pytest.fixture(scope="module")
def frame(served_project: Path) -> pd.DataFrame:
    """Test rows without a missing value: Triton's JSON tensors cannot hold null."""
    prepared = load_prepared(served_project / "data" / "prepared")
    return features(prepared.test, prepared.schema).dropna().head(50).reset_index(drop=True)


def _kinds(model_dir: Path) -> dict[str, str]:
    return {column.name: column.kind for column in read_artifact(model_dir).columns}


def _inputs(frame: pd.DataFrame, kinds: dict[str, str]) -> list[triton.InferInput]:
    """One tensor per column, as pandas-based clients send a frame: text as BYTES, numbers as
    FP64, a whole-number column as INT64, and one column shaped [rows, 1] as MLServer sends."""
    inputs = []
    for position, name in enumerate(frame.columns):
        values = frame[name].to_numpy()
        if kinds[name] == "string":
            array, datatype = values.astype(object), "BYTES"
        elif np.all(np.mod(values.astype(float), 1) == 0):
            array, datatype = values.astype(np.int64), "INT64"
        else:
            array, datatype = values.astype(np.float64), "FP64"
        if position == 1:
            array = array.reshape(-1, 1)
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=False)
        inputs.append(tensor)
    return inputs


def _rows(frame: pd.DataFrame) -> list[list[Any]]:
    return frame.astype(object).to_numpy().tolist()


def _refusal(call: Any) -> tuple[int, str]:
    """The status and message of a refusal, as tritonclient reads the protocol's error body."""
    with pytest.raises(InferenceServerException) as caught:
        call()
    return int(caught.value.status()), str(caught.value.message())


def _deltas(after: Samples, before: Samples) -> Samples:
    """Every modelops_ sample that moved, except time (the durations' sums and buckets)."""
    moved = {}
    for key, value in after.items():
        name = key[0]
        timed = name.startswith(REQUEST_DURATION.name) and not name.endswith("_count")
        if not timed and value != before.get(key, 0.0):
            moved[key] = value - before.get(key, 0.0)
    return moved


def test_health_answers_as_the_protocol_says(
    client: triton.InferenceServerClient, server: Server
) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    _, seldon = server.get("/api/v1.0/metadata")
    assert client.is_model_ready(MODEL, model_version=seldon["versions"][0])
    assert not client.is_model_ready("another-model")
    assert not client.is_model_ready(MODEL, model_version="0123456789ab")
    assert client.get_server_metadata() == {
        "name": "modelops",
        "version": "0.1.0",
        "extensions": [],
    }
    assert server.get("/v2/health/ready") == (200, {"ready": True})
    assert server.get("/v2/health/live") == (200, {"live": True})


def test_metadata_describes_the_served_model_as_seldons_does(
    client: triton.InferenceServerClient, server: Server, model_dir: Path
) -> None:
    metadata = client.get_model_metadata(MODEL)
    _, seldon = server.get("/api/v1.0/metadata")
    assert metadata["name"] == seldon["name"] == MODEL
    assert metadata["versions"] == seldon["versions"] == [content_hash(model_dir)[:12]]
    assert metadata["platform"] == "scikit-learn"
    assert metadata["inputs"] == seldon["inputs"], "one tensor per input, typed as Seldon's"
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == [
        ("predict_proba", "FP64", [-1, 2]),
        ("probability", "FP64", [-1]),
        ("label", "BYTES", [-1]),
    ]
    parameters = metadata["parameters"]
    assert parameters["classes"] == seldon["outputs"][0]["schema"]["names"] == ["0", "1"]
    assert parameters["threshold"] == 0.5
    assert parameters["max_body_bytes"] == seldon["custom"]["max_body_bytes"]
    status, message = _refusal(lambda: client.get_model_metadata("another-model"))
    assert status == 404
    assert (
        message
        == f"no model another-model here: this server serves '{MODEL}', at /v2/models/{MODEL}"
    )


def test_v2_and_seldon_give_the_same_rows_the_same_answer_and_count_them_alike(
    client: triton.InferenceServerClient, server: Server, frame: pd.DataFrame, model_dir: Path
) -> None:
    names, rows = list(frame.columns), _rows(frame)
    start = _scrape(server)
    status, seldon = server.post({"data": {"names": names, "ndarray": rows}})
    assert status == 200, seldon
    middle = _scrape(server)
    result = client.infer(MODEL, _inputs(frame, _kinds(model_dir)), request_id="rows-50")
    end = _scrape(server)

    answer = result.get_response()
    expected = np.array(seldon["data"]["ndarray"])
    np.testing.assert_array_equal(result.as_numpy("predict_proba"), expected)
    np.testing.assert_array_equal(result.as_numpy("probability"), expected[:, 1])
    labels = np.where(expected[:, 1] >= 0.5, "1", "0")
    assert result.as_numpy("label").tolist() == labels.tolist()
    assert answer["model_name"] == MODEL
    assert answer["id"] == "rows-50"
    tags = seldon["meta"]["tags"]
    assert answer["model_version"] == tags["model_version"]
    parameters = answer["parameters"]
    assert {k: v for k, v in parameters.items() if k != "prediction_id"} == {
        k: v for k, v in tags.items() if k != "prediction_id"
    }
    assert parameters["prediction_id"] != tags["prediction_id"], "each answer its own id"

    seldon_moved, v2_moved = _deltas(middle, start), _deltas(end, middle)
    assert v2_moved == seldon_moved, "a V2 prediction counts exactly as a Seldon one"
    ok = {"endpoint": "predict", "outcome": "ok"}
    assert _value(v2_moved, "modelops_requests_total", **ok) == 1
    assert _value(v2_moved, "modelops_rows_total", **ok) == len(rows)


def test_a_v2_predictions_truth_counts_through_seldons_feedback_route(
    client: triton.InferenceServerClient, server: Server, frame: pd.DataFrame, model_dir: Path
) -> None:
    head = frame.head(5)
    answer = client.infer(MODEL, _inputs(head, _kinds(model_dir))).get_response()
    truth = ["1", "0", "0", "1", "0"]
    # The rows as the client sent them, in the request form `v2.feedback` reads.
    sent = v2.request_body(list(head.columns), _rows(head))
    message = v2.feedback(sent, answer, truth, classes=["0", "1"])
    before = _scrape(server)
    status, body = server.post_to("/api/v1.0/feedback", message)
    assert status == 200, body
    after = _scrape(server)
    moved = _deltas(after, before)
    assert _value(moved, "modelops_labels_total") == 5
    changed = json.loads(json.dumps(message))
    changed["response"]["data"]["ndarray"][0] = [0.5, 0.5]
    status, body = server.post_to("/api/v1.0/feedback", changed)
    assert status == 403, "the id covers the V2 answer's probabilities"


def test_a_version_in_the_path_must_be_the_served_one(
    client: triton.InferenceServerClient, server: Server, frame: pd.DataFrame, model_dir: Path
) -> None:
    _, seldon = server.get("/api/v1.0/metadata")
    served = seldon["versions"][0]
    inputs = _inputs(frame.head(2), _kinds(model_dir))
    assert client.infer(MODEL, inputs, model_version=served).get_response()["model_version"] == (
        served
    )
    status, message = _refusal(lambda: client.infer(MODEL, inputs, model_version="v0"))
    assert status == 404
    assert message.startswith(f"model '{MODEL}' has no version v0: it serves version '{served}'")


def _without(inputs: list[triton.InferInput], name: str) -> list[triton.InferInput]:
    return [tensor for tensor in inputs if tensor.name() != name]


def _tensor(name: str, array: np.ndarray, datatype: str) -> triton.InferInput:
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=False)
    return tensor


def test_bad_requests_are_refused_in_the_protocols_shape_saying_why(
    client: triton.InferenceServerClient, server: Server, frame: pd.DataFrame, model_dir: Path
) -> None:
    kinds = _kinds(model_dir)
    good = _inputs(frame.head(3), kinds)
    numeric = next(name for name, kind in kinds.items() if kind == "number")
    category = next(name for name, kind in kinds.items() if kind == "string")
    texts = frame[numeric].head(3).astype(str).to_numpy().astype(object)
    not_a_number = frame[numeric].head(3).to_numpy(dtype=np.float64, copy=True)
    not_a_number[1] = np.nan
    binary = triton.InferInput(numeric, [3], "FP64")
    binary.set_data_from_numpy(frame[numeric].head(3).to_numpy(dtype=np.float64))  # binary_data
    cases: list[tuple[str, list[triton.InferInput], str, int, str]] = [
        ("another-model", good, "unknown_model", 404, "no model another-model here"),
        (
            MODEL,
            [*_without(good, numeric), _tensor(numeric, texts, "BYTES")],
            "datatype_mismatch",
            400,
            f"the input {numeric} is numeric: send it as FP64",
        ),
        (
            MODEL,
            [*_without(good, category), _tensor(category, np.array([1, 2, 3]), "INT64")],
            "datatype_mismatch",
            400,
            f"the input {category} is categorical: send it as BYTES (strings), not INT64",
        ),
        (
            MODEL,
            [*_without(good, numeric), _tensor(numeric, np.array([1.0, 2.0]), "FP64")],
            "shape_mismatch",
            400,
            f"the input {numeric} has 2 rows and",
        ),
        (
            MODEL,
            _without(good, numeric),
            "missing_name",
            400,
            f"'inputs[*].name' does not match the model's inputs (missing {numeric})",
        ),
        (
            MODEL,
            [*_without(good, numeric), _tensor(numeric, not_a_number, "FP64")],
            "not_finite",
            400,
            f"the input '{numeric}' at row 1 is nan: NaN and infinity are not numbers here; "
            "send null for a missing value",
        ),
        (
            MODEL,
            [*_without(good, numeric), binary],
            "not_json",
            415,
            "binary tensor data (Inference-Header-Content-Length) is not supported",
        ),
    ]
    for model, inputs, reason, expected_status, expected in cases:
        before = _scrape(server)
        status, message = _refusal(lambda m=model, i=inputs: client.infer(m, i))
        assert (status, message[: len(expected)]) == (expected_status, expected), reason
        after = _scrape(server)
        counted = {"endpoint": "predict", "outcome": reason}
        assert _value(_deltas(after, before), "modelops_requests_total", **counted) == 1, reason
    assert client.is_server_ready(), "the server keeps serving"


def test_too_many_rows_an_oversized_body_and_malformed_json_are_refused(
    server: Server, frame: pd.DataFrame, model_dir: Path
) -> None:
    path = f"/v2/models/{MODEL}/infer"
    names, rows = list(frame.columns), _rows(frame)
    many = v2.request_body(names, (rows * 21)[:1001])
    status, body = server.post_to(path, many)
    assert (status, body) == (
        413,
        {"error": "the batch has 1001 rows, over the limit of 1000: split it"},
    )
    limit = body_limit(1000, inputs=len(names), classes=2)
    huge = v2.request_body(names, [[*rows[0][:-1], "x" * limit]], datatypes={names[-1]: "BYTES"})
    status, body, _ = _send(server, json.dumps(huge).encode(), path=path)
    assert status == 413
    assert body["error"].startswith(f"the request body is over {limit} bytes")
    status, body = server.post_to(path, None, raw=b'{"inputs": [}')
    assert status == 400
    assert body["error"].startswith("the body is not valid JSON")
    status, body = server.post_to(
        path, None, raw=b"inputs", headers=[("Content-Type", "text/plain")]
    )
    assert (status, body) == (
        415,
        {"error": "send the body as JSON, with Content-Type: application/json"},
    )
    status, body = server.get("/v2/nowhere")
    assert status == 404
    assert set(body) == {"error"}


def test_a_thousand_random_v2_requests_get_no_5xx_and_each_refusal_is_the_protocols(
    server: Server, frame: pd.DataFrame
) -> None:
    good = v2.request_body(list(frame.columns), _rows(frame.head(2)))
    randomness = random.Random(20261206)
    statuses: Counter[int] = Counter()
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        for _ in range(1000):
            body = json.dumps(mutated(randomness, good), allow_nan=True).encode()
            connection.request(
                "POST", f"/v2/models/{MODEL}/infer", body, {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            answer = json.loads(response.read())
            statuses[response.status] += 1
            assert response.status < 500, f"{response.status} for {body[:300]!r}"
            assert response.status == 200 or set(answer) == {"error"}, answer
    finally:
        connection.close()
    assert statuses[200] > 100, f"the fuzz also sends valid requests: {statuses}"
    assert server.get("/v2/health/ready") == (200, {"ready": True})


@pytest.fixture(scope="module")
def experiment_server(
    models: Path, experiment: Experiment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One replica of the experiment, its model named by the `model_name` parameter."""
    parameters = [
        {"name": "experiment", "type": "STRING", "value": experiment.to_json()},
        {"name": "model_name", "type": "STRING", "value": EXPERIMENT_MODEL},
    ]
    log = tmp_path_factory.mktemp("v2-experiment") / "server.log"
    environment = {PARAMETERS_ENV: json.dumps(parameters), FEEDBACK_KEY_ENV: FEEDBACK_KEY}
    yield from serving(
        Server(SERVING_BIN, models, workers=1, log_file=log, extra_env=environment), log
    )


def test_an_experiment_assigns_each_v2_row_by_its_unit_tensor(
    experiment_server: Server,
    experiment: Experiment,
    frame: pd.DataFrame,
    model_dir: Path,
    models: Path,
) -> None:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{experiment_server.http_port}")
    try:
        metadata = client.get_model_metadata(EXPERIMENT_MODEL)
        rows = frame.head(40)
        units = np.array([f"v2-unit-{index}" for index in range(40)], dtype=object)
        inputs = [*_inputs(rows, _kinds(model_dir)), _tensor(UNIT, units, "BYTES")]
        result = client.infer(EXPERIMENT_MODEL, inputs)
        numbered = [
            *_inputs(rows.head(2), _kinds(model_dir)),
            _tensor(UNIT, np.array([42, 43]), "INT64"),
        ]
        by_number = client.infer(EXPERIMENT_MODEL, numbered)
    finally:
        client.close()
    assert metadata["parameters"]["experiment_unit"] == UNIT
    assert [o["name"] for o in metadata["outputs"]][-2:] == ["variants", "model_versions"]
    variants = result.as_numpy("variants").tolist()
    assert variants == [assign(u, salt=experiment.salt, split=experiment.split) for u in units]
    assert set(variants) == {"stable", "b"}
    version = {v.name: v.model_version for v in experiment.variants}
    assert result.as_numpy("model_versions").tolist() == [version[v] for v in variants]
    names = list(rows.columns)
    stable, b = alone(model_dir, names, _rows(rows)), alone(models / "b", names, _rows(rows))
    expected = np.where(np.array(variants)[:, None] == "b", b, stable)
    np.testing.assert_allclose(result.as_numpy("predict_proba"), expected, rtol=1e-12, atol=0)
    answer = result.get_response()
    assert answer["model_name"] == EXPERIMENT_MODEL
    assert answer["parameters"]["experiment"] == experiment.name
    # 42 as an INT64 unit is the unit "42" of Seldon's protocol.
    status, seldon = experiment_server.post(
        {
            "data": {
                "names": [*names, UNIT],
                "ndarray": [
                    [*row, u] for row, u in zip(_rows(rows.head(2)), ["42", "43"], strict=True)
                ],
            }
        }
    )
    assert status == 200, seldon
    assert by_number.as_numpy("variants").tolist() == seldon["meta"]["tags"]["variants"]


def test_a_model_name_that_is_not_a_path_segment_stops_the_server(
    model_dir: Path, tmp_path: Path
) -> None:
    parameters = [{"name": "model_name", "type": "STRING", "value": "churn/v2"}]
    log = tmp_path / "server.log"
    bad = Server(
        SERVING_BIN,
        model_dir,
        workers=1,
        log_file=log,
        extra_env={PARAMETERS_ENV: json.dumps(parameters)},
    )
    with pytest.raises(RuntimeError, match="the server exited"):
        bad.start(ready_within=60)
    assert "model_name (or $MODELOPS_MODEL_NAME) must be letters, digits" in log.read_text()

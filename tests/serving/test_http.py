"""The real microservice, from the serving environment, over real HTTP on loopback.

One server process for the module (two gunicorn workers, as in production, verifying the model
hash): predictions match the model in-process, bad requests get a 4xx that quotes at most an
excerpt and is logged as a warning, bodies at the size limit are refused within a second, the
server keeps serving, a fuzz run finds no 5xx, and the metrics endpoint exposes the custom
metrics. A second server with an injected fault shows what an unexpected error looks like.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from modelops_serving.artifact import content_hash
from modelops_serving.body import body_limit, too_large
from modelops_serving.launch import Server

from modelops.data import features
from modelops.prepared import load_prepared
from tests.serving.conftest import SERVING_BIN
from tests.serving.processes import alive, wait_for_listeners

FUZZ_REQUESTS = 3000
MAX_ROWS = 1000  # ModelServer's default max_batch_rows
# The body limit for the default model (14 inputs, 2 classes) at that many rows: the server's
# metadata says the same (a test below checks it).
BODY_LIMIT = body_limit(MAX_ROWS, inputs=14, classes=2)
FAULTY_DIR = Path(__file__).parent / "faulty"


@pytest.fixture(scope="module")
def project(served_project: Path) -> Path:
    return served_project


@pytest.fixture(scope="module")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs") / "server.log"


@pytest.fixture(scope="module")
def server(model_dir: Path, server_log: Path) -> Iterator[Server]:
    running = Server(
        SERVING_BIN, model_dir, workers=2, log_file=server_log, model_hash=content_hash(model_dir)
    )
    running.start()
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, f"the server did not stop cleanly:\n{server_log.read_text()[-2000:]}"


def _rows(project: Path, count: int) -> tuple[list[str], list[list[Any]], pd.DataFrame]:
    prepared = load_prepared(project / "data" / "prepared")
    frame = features(prepared.test, prepared.schema).head(count)
    rows = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return list(frame.columns), rows, frame


def _good(project: Path) -> dict[str, Any]:
    names, rows, _ = _rows(project, 1)
    return {"data": {"names": names, "ndarray": rows}}


def test_the_server_becomes_ready_well_within_its_startup_probe(server: Server) -> None:
    # A bound against a hang, not a timing: on an idle machine it is ready in about 2 s
    # (benchmarks/results/serving.md); the test machine runs other tests beside it (12-18 s at
    # load 4-6 was seen). The pod's startup probe allows 5 minutes.
    assert server.started_seconds < 60, f"ready after {server.started_seconds:.1f} s"


def test_predictions_over_http_equal_the_model_in_process(server: Server, project: Path) -> None:
    names, rows, frame = _rows(project, 100)
    status, body = server.post({"data": {"names": names, "ndarray": rows}})
    assert status == 200, body
    local = mlflow.sklearn.load_model(str(project / "models" / "model"))
    np.testing.assert_allclose(body["data"]["ndarray"], local.predict_proba(frame), rtol=1e-12)
    assert body["data"]["names"] == [str(c) for c in local.classes_]
    assert "metrics" not in body["meta"], "custom metrics stay on /metrics"


def test_inputs_may_come_in_any_order_when_named(server: Server, project: Path) -> None:
    names, rows, _ = _rows(project, 3)
    shuffled = list(reversed(range(len(names))))
    _, in_order = server.post({"data": {"names": names, "ndarray": rows}})
    status, reordered = server.post(
        {
            "data": {
                "names": [names[i] for i in shuffled],
                "ndarray": [[row[i] for i in shuffled] for row in rows],
            }
        }
    )
    assert status == 200
    assert reordered["data"] == in_order["data"]


def test_responses_say_which_model_and_data_answered(server: Server, project: Path) -> None:
    model_dir = project / "models" / "model"
    card = json.loads((model_dir / "modelops.json").read_text())
    _, body = server.post(_good(project))
    tags = body["meta"]["tags"]
    assert tags["model_hash"] == content_hash(model_dir)
    assert tags["model_version"] == tags["model_hash"][:12]
    assert tags["data_version"] == card["data_version"]
    assert tags["model_kind"] == "hist_gradient_boosting"


def test_health_and_metadata_describe_the_model(server: Server, project: Path) -> None:
    status, health = server.get("/health/status")
    assert status == 200
    assert health["jsonData"]["status"] == "ok"
    status, metadata = server.get("/api/v1.0/metadata")
    assert status == 200
    names, _, _ = _rows(project, 1)
    assert metadata["outputs"][0]["schema"]["names"] == ["0", "1"]
    # Typed per input (JSON, not a JSON string inside JSON), in the order of a row's values.
    assert [i["name"] for i in metadata["inputs"]] == names
    types = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert types["plan"] == "BYTES", metadata["inputs"]
    assert types["age"] == "FP64", metadata["inputs"]
    assert all(i["shape"] == [-1] for i in metadata["inputs"])
    assert metadata["custom"]["max_batch_rows"] == str(MAX_ROWS)
    assert metadata["custom"]["max_body_bytes"] == str(BODY_LIMIT), "derived from the rows"


BAD_REQUESTS: list[tuple[str, bytes | None, Any, int, str]] = [
    ("malformed JSON", b'{"data": {"ndarray": [[1, 2]', None, 400, "the body is not valid JSON"),
    ("missing data", None, {"rows": []}, 400, "the request needs a 'data' object"),
    ("empty batch", None, {"data": {"ndarray": []}}, 400, "'data.ndarray' is empty"),
    (
        "wrong number of features",
        None,
        {"data": {"ndarray": [[1, 2, 3]]}},
        400,
        "each row needs 14 values",
    ),
    (
        "unknown and missing names",
        None,
        {"data": {"names": ["plann"], "ndarray": [[1]]}},
        400,
        "unknown plann",
    ),
    (
        "string in a numeric field",
        None,
        "age=thirty",
        400,
        "['age']' must be a number or null, got 'thirty'",
    ),
    ("NaN", None, "age=NaN", 400, "NaN and infinity are not numbers here"),
    ("infinity", None, "age=Infinity", 400, "is inf"),
    ("batch over the limit", None, "rows=1001", 413, "over the limit of 1000"),
]


@pytest.mark.parametrize(
    ("case", "raw", "payload", "status", "message"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS]
)
def test_a_bad_request_gets_a_4xx_that_says_why_and_the_server_keeps_serving(
    server: Server,
    project: Path,
    case: str,
    raw: bytes | None,
    payload: Any,
    status: int,
    message: str,
) -> None:
    if isinstance(payload, str):  # a mutation of a good request
        payload = _mutate(_good(project), payload)
    got, body = server.post(payload, raw=raw)
    assert got == status, f"{case}: {got} {body}"
    assert message in body["status"]["info"], body
    assert server.post(_good(project))[0] == 200, "the next good request is answered"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_size_limit_gets_413(server: Server, chunked: bool) -> None:
    """The server answers as soon as it knows and closes the connection: it does not read on.

    A chunked body (no Content-Length) is read up to the limit, not further (seldon-core's old
    werkzeug 2.2 read it all into memory first).
    """
    body = b'{"data": {"ndarray": [' + b"[1]," * (BODY_LIMIT // 4) + b"[1]]}}"
    status, answer, _ = _send(server, body, chunked=chunked)
    assert status == 413, answer
    assert answer["status"]["info"] == too_large(BODY_LIMIT, max_rows=MAX_ROWS)
    assert answer["status"]["info"] == (
        f"the request body is over {BODY_LIMIT} bytes, the limit for 1000 rows "
        "(max_batch_rows): send fewer rows per request, or raise max_batch_rows"
    )


def test_a_feedback_of_extra_rows_is_refused_before_it_is_read(
    server: Server, project: Path
) -> None:
    """Given a 2.5 MB feedback (21,500 rows, half of the old 5 MiB limit), then the server
    answers 413 from its Content-Length at once. Before, seldon-core converted it to protobuf
    first and held the worker for 2.45 s (6.9 s on a busy machine) before its row count was
    checked."""
    names, rows, _ = _rows(project, 1)
    request = {"data": {"names": names, "ndarray": rows * 21_500}}
    feedback = {"request": request, "truth": {"data": {"ndarray": [[1]] * 21_500}}}
    body = json.dumps(feedback).encode()
    assert 2_400_000 < len(body) < 2_600_000, len(body)
    status, answer, seconds = _send(server, body, path="/api/v1.0/feedback", timeout=30)
    assert status == 413, answer
    assert seconds < 0.5, f"413 after {seconds:.2f} s"


def test_feedback_costs_no_more_per_row_than_the_prediction(server: Server, project: Path) -> None:
    """Given 1000-row predictions, when each one's truth comes back, then feedback costs the
    same order as the prediction: the fastest of seven each (the least disturbed by other work
    on the machine), within 3x. This guards against the path it replaced: seldon-core's
    protobuf conversion made feedback ten times slower (377 ms against 39 ms). A feedback body
    carries the request and the response, so it parses about twice the JSON; the measured
    ratio, on an idle machine, is `benchmarks/results/serving.md`'s (bench_serving)."""
    names, test_rows, _ = _rows(project, MAX_ROWS)
    rows = (test_rows * 2)[:MAX_ROWS]  # the test set has 600
    request = {"data": {"names": names, "ndarray": rows}}
    truth = {"data": {"ndarray": [[1]] * len(rows)}}
    predict, feedback = [], []
    for _ in range(7):
        started = time.perf_counter()
        status, answer = server.post(request)
        predict.append(time.perf_counter() - started)
        assert status == 200, answer
        started = time.perf_counter()
        status, reply = server.post_to(
            "/api/v1.0/feedback", {"request": request, "response": answer, "truth": truth}
        )
        feedback.append(time.perf_counter() - started)
        assert status == 200, reply
    assert min(feedback) <= 3 * min(predict), (
        f"feedback {min(feedback) * 1000:.0f} ms, prediction {min(predict) * 1000:.0f} ms"
    )


BIG_BODY_SHAPES = [
    "a huge names list",
    "many short repeated names",
    "a huge row",
    "a huge string value",
    "rows over the batch limit",
    "deep nesting",
]


@pytest.fixture(scope="module")
def big_bodies(project: Path) -> dict[str, tuple[bytes, int]]:
    """Bodies of the largest size the server accepts, each shaped to stress one check, and
    the status each must get."""
    _, rows, _ = _rows(project, 1)
    row = json.dumps(rows[0]).encode()
    all_but_last = json.dumps(rows[0][:-1]).encode()[:-1]  # the last input is a number
    shapes = {
        "a huge names list": (
            b'{"data": {"names": [' + b"".join(b'"n%07d",' % i for i in range(BODY_LIMIT // 11)),
            b'"n"], "ndarray": [[1]]}}',
        ),
        "many short repeated names": (
            b'{"data": {"names": [' + b'"a",' * (BODY_LIMIT // 4),
            b'"a"], "ndarray": [[1]]}}',
        ),
        "a huge row": (b'{"data": {"ndarray": [[' + b"1," * (BODY_LIMIT // 2), b"1]]}}"),
        "a huge string value": (
            b'{"data": {"ndarray": [' + all_but_last + b', "' + b"x" * BODY_LIMIT,
            b'"]]}}',
        ),
        "rows over the batch limit": (
            b'{"data": {"ndarray": [' + (row + b",") * (BODY_LIMIT // len(row)),
            row + b"]}}",
        ),
        "deep nesting": (b"[" * BODY_LIMIT, b""),
    }
    # Where the repeated part may be cut and keep the JSON valid (anywhere, for the others).
    boundaries = {
        "rows over the batch limit": b"],",
        "a huge string value": b"",
        "deep nesting": b"",
    }
    bodies = {}
    for shape, (head, tail) in shapes.items():
        body = head[: BODY_LIMIT - len(tail)]
        boundary = boundaries.get(shape, b",")
        if boundary:
            body = body[: body.rindex(boundary) + len(boundary)]
        body += tail
        assert BODY_LIMIT - 256 <= len(body) <= BODY_LIMIT, (shape, len(body))
        bodies[shape] = (body, 413 if shape == "rows over the batch limit" else 400)
    assert set(bodies) == set(BIG_BODY_SHAPES)
    return bodies


@pytest.mark.parametrize("shape", BIG_BODY_SHAPES)
def test_a_body_at_the_size_limit_is_refused_within_a_second(
    server: Server, project: Path, big_bodies: dict[str, tuple[bytes, int]], shape: str
) -> None:
    """Validation is linear in the request: no shape of body makes a worker work for long.

    Before, `data.names` was checked with list searches: about 1 MiB of names held a worker
    for 23.6 s.
    """
    body, expected = big_bodies[shape]
    status, answer, seconds = _send(server, body, timeout=10)
    assert status == expected, answer
    assert seconds < 1.0, f"{shape}: {status} after {seconds:.2f} s"
    assert len(json.dumps(answer)) < 1000, f"the answer quotes the request: {answer}"
    assert server.post(_good(project))[0] == 200, "the next good request is answered"


def test_a_refusal_quotes_only_an_excerpt_and_is_logged_as_a_warning(
    server: Server, project: Path, server_log: Path
) -> None:
    marker = f"bad-{uuid.uuid4().hex[:12]}"
    payload = _mutate(_good(project), f"age={marker}{'x' * 100_000}")
    status, body = server.post(payload)
    info = body["status"]["info"]
    assert status == 400
    excerpt = repr(marker + "x" * 100)[:40] + "…"  # the first 40 characters of its repr
    assert info == f"'data.ndarray[0]['age']' must be a number or null, got {excerpt}"
    assert _logged(server_log, marker) == ["WARNING"], "a client error is a warning"


def test_a_refusal_by_seldon_core_itself_is_capped_and_logged_as_a_warning(
    server: Server, server_log: Path
) -> None:
    """seldon-core's own messages quote whole requests ("Invalid request data type: {...}")."""
    marker = f"bad-{uuid.uuid4().hex[:12]}"
    status, body = server.post_to("/transform-output", {"x": marker + "y" * 100_000})
    info = body["status"]["info"]
    assert status == 400
    assert info.startswith("Invalid request data type:")
    assert marker in info
    assert len(info) <= 301, info
    assert info.endswith("…")
    assert _logged(server_log, marker) == ["WARNING"]


def test_bad_json_in_seldon_cores_json_argument_is_a_400(server: Server) -> None:
    status, body = server.get("/predict?json=%7Bnot-json")
    assert status == 400, body
    assert body["status"]["info"].startswith("the 'json' parameter is not valid JSON (Expecting")


def test_an_unexpected_error_gets_a_generic_500_and_the_log_has_the_traceback(
    model_dir: Path, project: Path, tmp_path: Path
) -> None:
    """A fault injected into predict_raw (tests/serving/faulty) stands for a bug."""
    log = tmp_path / "faulty.log"
    secret = f"secret-{uuid.uuid4().hex}"
    failing = _good(project) | {"meta": {"tags": {"fail": secret}}}
    with Server(
        SERVING_BIN,
        model_dir,
        workers=1,
        log_file=log,
        server_class="faulty_server.FaultyServer",
        extra_env={"PYTHONPATH": str(FAULTY_DIR)},
    ) as faulty:
        status, body = faulty.post(failing)
        assert faulty.post(_good(project))[0] == 200, "the server keeps serving"
        time.sleep(0.8)  # workers write their counts every 0.5 s (telemetry.FLUSH_SECONDS)
        connection = http.client.HTTPConnection("127.0.0.1", faulty.metrics_port, timeout=10)
        connection.request("GET", "/prometheus")
        scraped = connection.getresponse().read().decode()
        connection.close()
    assert re.search(
        r'^modelops_requests_total\{endpoint="predict",model_version="\w+",'
        r'outcome="server_error"\} 1\.0$',
        scraped,
        re.MULTILINE,
    ), "a 500 is counted as server_error"
    assert status == 500
    assert secret not in json.dumps(body), "no exception text reaches the client"
    info = body["status"]["info"]
    found = re.fullmatch(
        r"internal error ([0-9a-f]{12}): the server could not answer; its log has the details",
        info,
    )
    assert found, info
    text = log.read_text()
    assert f"ERROR:  error {found[1]} answering POST /api/v1.0/predictions" in text
    assert "Traceback (most recent call last)" in text
    assert f"RuntimeError: {secret}" in text


def test_the_server_listens_on_loopback_only(server: Server) -> None:
    """REST and metrics (seldon-core alone binds them to 0.0.0.0), and no gRPC server: the
    executor calls the model over REST, and gRPC parsed network protobuf before our checks."""
    assert server.process is not None
    group = server.process.pid
    found = wait_for_listeners(lambda: alive(group=group), 2, within=30)
    time.sleep(1.0)  # a gRPC server, were one started, would be listening by now
    found = wait_for_listeners(lambda: alive(group=group), 2, within=30)
    assert len(found) == 2, f"REST and metrics only should listen: {found}"
    assert {server.http_port, server.metrics_port} == {port for _, port in found}
    assert {address for address, _ in found} == {"127.0.0.1"}, found


def test_a_body_that_is_not_json_gets_415(server: Server, project: Path) -> None:
    status, body = server.post(None, raw=b"age=3", headers=[("Content-Type", "text/plain")])
    assert status == 415
    assert "Content-Type: application/json" in body["status"]["info"]


def test_thousands_of_random_payloads_get_no_5xx(server: Server, project: Path) -> None:
    good = _good(project)
    randomness = random.Random(20261126)
    statuses: dict[int, int] = {}
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        for _ in range(FUZZ_REQUESTS):
            body = _fuzz_body(randomness, good)
            connection.request(
                "POST", "/api/v1.0/predictions", body, {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1
            assert response.status < 500, f"{response.status} for {body[:300]!r}"
    finally:
        connection.close()
    assert statuses.get(200, 0) > 100, f"the fuzz should also send valid requests: {statuses}"
    assert server.process is not None
    assert server.process.poll() is None, "the server still runs"
    assert server.post(good)[0] == 200


def test_the_metrics_endpoint_exposes_the_custom_metrics(server: Server, project: Path) -> None:
    """Seldon's own path (/metrics here) and /prometheus answer the same series, at once.

    Exact counts are checked in test_telemetry.py.
    """
    names, rows, _ = _rows(project, 20)
    rows[0][names.index("region")] = None
    assert server.post({"data": {"names": names, "ndarray": rows}})[0] == 200
    time.sleep(0.8)  # workers write their counts every 0.5 s (telemetry.FLUSH_SECONDS)
    for path in ("/metrics", "/prometheus"):
        connection = http.client.HTTPConnection("127.0.0.1", server.metrics_port, timeout=10)
        connection.request("GET", path)
        text = connection.getresponse().read().decode()
        connection.close()
        assert 'modelops_predictions_total{class="0"' in text, path
        assert "modelops_score_bucket{" in text, path
        assert 'modelops_feature_bin_total{bin="__missing__",feature="region"' in text, path
        assert "modelops_requests_total{" in text, path


def _send(
    server: Server,
    body: bytes,
    *,
    chunked: bool = False,
    timeout: float = 30,
    path: str = "/api/v1.0/predictions",
) -> tuple[int, Any, float]:
    """POST raw bytes; (status, decoded answer, seconds until the whole answer was read).

    Reads the answer even when the server answered before taking the whole body (it then
    closes the connection, and sending the rest fails).
    """
    connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    started = time.perf_counter()
    try:
        if chunked:
            connection.putrequest("POST", path)
            for key, value in {**headers, "Transfer-Encoding": "chunked"}.items():
                connection.putheader(key, value)
            connection.endheaders()
            for start in range(0, len(body), 65536):
                part = body[start : start + 65536]
                connection.send(b"%x\r\n%s\r\n" % (len(part), part))
            connection.send(b"0\r\n\r\n")
        else:
            connection.request("POST", path, body, headers)
    except (BrokenPipeError, ConnectionResetError):
        pass  # answered early: the answer is waiting
    try:
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    return response.status, json.loads(answer), time.perf_counter() - started


def _logged(log: Path, marker: str) -> list[str]:
    """The levels of the log lines that mention `marker`."""
    levels = []
    for line in log.read_text(errors="replace").splitlines():
        if marker in line:
            found = re.search(r" - (DEBUG|INFO|WARNING|ERROR|CRITICAL):  ", line)
            levels.append(found[1] if found else "?")
    return levels


def _mutate(good: dict[str, Any], how: str) -> dict[str, Any]:
    payload = json.loads(json.dumps(good))
    names, row = payload["data"]["names"], payload["data"]["ndarray"][0]
    field, value = how.split("=")
    if field == "rows":
        payload["data"]["ndarray"] = [row] * int(value)
    else:
        row[names.index(field)] = {"NaN": float("nan"), "Infinity": float("inf")}.get(value, value)
    return payload


def _fuzz_body(randomness: random.Random, good: dict[str, Any]) -> bytes:
    """A random request: junk bytes, random JSON, or a valid request with random mutations."""
    choice = randomness.random()
    if choice < 0.1:
        return bytes(randomness.getrandbits(8) for _ in range(randomness.randint(0, 200)))
    if choice < 0.3:
        return json.dumps(_random_json(randomness, depth=3)).encode()
    payload = json.loads(json.dumps(good))
    data = payload["data"]
    row = data["ndarray"][0]
    for _ in range(randomness.randint(0, 3)):
        action = randomness.randrange(6)
        if action == 0 and row:
            row[randomness.randrange(len(row))] = _random_json(randomness, depth=1)
        elif action == 1:
            data["ndarray"] = [
                list(row) for _ in range(randomness.choice([0, 1, 2, 50, 999, 1001]))
            ]
        elif action == 2 and data.get("names"):
            randomness.shuffle(data["names"])
        elif action == 3:
            data.pop(randomness.choice(["names", "ndarray"]), None)
        elif action == 4 and row:
            row.pop()
        elif action == 5:
            payload = {randomness.choice(["data", "meta", "x"]): _random_json(randomness, depth=2)}
    return json.dumps(payload, allow_nan=True).encode()


def _random_json(randomness: random.Random, *, depth: int) -> Any:
    kinds = ["int", "float", "str", "null", "bool", "big"] + (["list", "dict"] if depth else [])
    kind = randomness.choice(kinds)
    if kind == "int":
        return randomness.randint(-(10**6), 10**6)
    if kind == "float":
        return randomness.choice(
            [randomness.uniform(-1e6, 1e6), float("nan"), float("inf"), -0.0, 1e308]
        )
    if kind == "str":
        return "".join(
            chr(randomness.randint(32, 0x2FFF)) for _ in range(randomness.randint(0, 20))
        )
    if kind == "bool":
        return randomness.random() < 0.5
    if kind == "big":
        return randomness.choice([10**400, -(10**30), 2**63])
    if kind == "list":
        return [_random_json(randomness, depth=depth - 1) for _ in range(randomness.randint(0, 4))]
    if kind == "dict":
        return {
            randomness.choice(["data", "ndarray", "names", "k"]): _random_json(
                randomness, depth=depth - 1
            )
            for _ in range(randomness.randint(0, 3))
        }
    return None

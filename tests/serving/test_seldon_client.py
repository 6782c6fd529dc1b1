"""seldon-core's own Python client against the real microservice, over loopback.

Given a running server, when `SeldonClient` (run in the serving environment: the pipeline's
environment has no seldon-core) predicts and sends feedback, then it gets the same answer as a
plain HTTP POST (its own prediction id), and its feedback with a truth, which carries the answer
it got, is counted like any other.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modelops_contract import PREDICTION_ID_TAG
from modelops_serving.launch import Server

from modelops.data import features
from modelops.prepared import load_prepared
from tests.serving.conftest import SERVING_BIN

CALLS = Path(__file__).parent / "clients" / "seldon_client_calls.py"


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[Server]:
    with Server(SERVING_BIN, model_dir, workers=1) as running:
        yield running


def _feedback_rows(server: Server) -> float:
    time.sleep(0.8)  # workers write their counts every 0.5 s (telemetry.FLUSH_SECONDS)
    url = f"http://127.0.0.1:{server.metrics_port}/prometheus"
    with urllib.request.urlopen(url, timeout=10) as answer:
        lines = answer.read().decode().splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("modelops_feedback_rows_total{")
    )


def test_seldons_client_gets_what_a_plain_post_gets(served_project: Path, server: Server) -> None:
    prepared = load_prepared(served_project / "data" / "prepared")
    frame = features(prepared.test, prepared.schema).head(4)
    names = list(frame.columns)
    rows: list[list[Any]] = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    truth = [[1], [0], [0], [1]]
    before = _feedback_rows(server)

    done = subprocess.run(
        [
            str(SERVING_BIN / "python"),
            str(CALLS),
            json.dumps({"port": server.http_port, "names": names, "rows": rows, "truth": truth}),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    calls = json.loads(done.stdout.strip().splitlines()[-1])

    status, plain = server.post({"data": {"names": names, "ndarray": rows}})
    assert status == 200
    predicted = calls["predict"]
    assert predicted["success"], predicted
    assert predicted["response"]["data"]["names"] == plain["data"]["names"]
    np.testing.assert_array_equal(
        predicted["response"]["data"]["ndarray"], plain["data"]["ndarray"]
    )
    # The same model's tags; each answer has its own prediction id, which the feedback sends back.
    tags = {k: v for k, v in plain["meta"]["tags"].items() if k != PREDICTION_ID_TAG}
    client_tags = dict(predicted["response"]["meta"]["tags"])
    assert client_tags.pop(PREDICTION_ID_TAG) != plain["meta"]["tags"][PREDICTION_ID_TAG]
    assert client_tags == tags

    # microservice_feedback has no truth parameter: the server refuses it, saying what it needs.
    without = calls["feedback_without_truth"]
    assert not without["success"]
    assert "the feedback needs 'truth'" in without["response"]["status"]["info"]

    with_truth = calls["feedback"]
    assert with_truth["success"], with_truth
    assert with_truth["response"]["meta"]["tags"] == tags
    assert _feedback_rows(server) == before + len(truth)

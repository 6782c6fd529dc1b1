"""The server's telemetry, scraped from the real microservice's /prometheus over loopback.

Given a known set of rows (with an unseen category, missing values and values exactly on a
profile cut) and feedback, sent to a server with two workers, when /prometheus is scraped, then
every feature-bin, outcome, score-bucket and confusion count equals what this test computes
in-process from the same rows and profile.json, with the pipeline's own binning
(`modelops.telemetry.profile.bin_index`) and the model loaded by MLflow. Workers write their
counts every 0.5 s: every scrape here waits 0.8 s, and the counts are exact within 2 s of the
last request.
"""

from __future__ import annotations

import calendar
import copy
import json
import math
import re
import shutil
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from modelops_contract import (
    EXPERIMENT_SERIES,
    FEEDBACK_KEY_ENV,
    FEEDBACK_SCORE,
    LE,
    MISSING,
    OTHER,
    PREDICTION_ID_TAG,
    REQUEST_DURATION,
    SCORE,
    SCORE_GRID,
    SERIES,
    UNSEEN,
)
from modelops_serving.artifact import content_hash, read_artifact
from modelops_serving.launch import PARAMETERS_ENV, Server
from modelops_serving.prediction_ids import answer_digest, rows_digest, signer
from modelops_serving.validation import to_batch
from prometheus_client.parser import text_string_to_metric_families

from modelops.data import features
from modelops.params import LATENCY_BOUNDS
from modelops.prepared import load_prepared
from modelops.telemetry.profile import (
    ReferenceProfile,
    bin_index,
)
from tests.serving.conftest import SERVING_BIN

FAULTY_DIR = Path(__file__).parent / "faulty"
BUSINESS = {
    "true_positive": 100.0,
    "false_positive": -20.0,
    "true_negative": 1.5,
    "false_negative": -80.0,
}
UNSEEN_PLAN = "platinum-never-seen"
FEEDBACK_KEY = "tests-only-feedback-key-0123456789abcdef"
"""The deployment's key (a Secret's value in a cluster): what every replica signs with."""
SETTLE_SECONDS = 0.8  # telemetry.FLUSH_SECONDS (0.5) and some slack
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def profile(model_dir: Path) -> ReferenceProfile:
    return ReferenceProfile.from_dict(json.loads((model_dir / "profile.json").read_text()))


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("telemetry") / "server.log"
    running = Server(
        SERVING_BIN,
        model_dir,
        workers=2,
        log_file=log,
        extra_env={"MODELOPS_BUSINESS_VALUE": json.dumps(BUSINESS), FEEDBACK_KEY_ENV: FEEDBACK_KEY},
    )
    running.start()
    try:
        yield running
    finally:
        assert running.stop() == 0, log.read_text()[-2000:]


@pytest.fixture(scope="module")
def rows(served_project: Path, profile: ReferenceProfile) -> tuple[list[str], list[list[Any]]]:
    """60 test rows, with an unseen category, missing values and values on a cut."""
    prepared = load_prepared(served_project / "data" / "prepared")
    frame = features(prepared.test, prepared.schema).head(60)
    names = list(frame.columns)
    table = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    numeric = profile.numeric[0]
    for index, row in enumerate(table):
        if index % 7 == 0:
            row[names.index("plan")] = UNSEEN_PLAN
        if index % 5 == 1:
            row[names.index(numeric.name)] = None
        if index % 5 == 2:
            row[names.index(numeric.name)] = numeric.cuts[index % len(numeric.cuts)]
        if index % 11 == 3:
            row[names.index(profile.categorical[-1].name)] = None
    return names, table


def _scrape(server: Server) -> Samples:
    """/prometheus once the workers have written what they counted (every FLUSH_SECONDS)."""
    time.sleep(SETTLE_SECONDS)
    url = f"http://127.0.0.1:{server.metrics_port}/prometheus"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("modelops_")
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def _series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def _expected_bins(
    profile: ReferenceProfile, names: list[str], table: list[list[Any]]
) -> Counter[tuple[str, str]]:
    """(feature, bin) -> rows, by the pipeline's definition of the profile's bins."""
    expected: Counter[tuple[str, str]] = Counter()
    for numeric in profile.numeric:
        values = [row[names.index(numeric.name)] for row in table]
        known = np.array([v for v in values if v is not None], dtype=np.float64)
        for index in bin_index(numeric.cuts, known).tolist():
            expected[(numeric.name, numeric.bins[index])] += 1
        expected[(numeric.name, MISSING)] += sum(v is None for v in values)
    for categorical in profile.categorical:
        for row in table:
            value = row[names.index(categorical.name)]
            label = (
                MISSING
                if value is None
                else value
                if value in categorical.categories
                else OTHER
                if value in categorical.other
                else UNSEEN
            )
            expected[(categorical.name, label)] += 1
    return expected


def _cumulative(cuts: tuple[float, ...], scores: np.ndarray) -> dict[str, float]:
    buckets = {repr(float(c)): float(np.sum(scores <= c)) for c in cuts}
    buckets["+Inf"] = float(scores.size)
    return buckets


def _buckets(samples: Samples, name: str, **labels: str) -> dict[str, float]:
    wanted = set(labels.items())
    return {
        dict(found)["le"]: v
        for (n, found), v in samples.items()
        if n == f"{name}_bucket" and wanted <= found
    }


def _le(bound: str) -> str:
    return "+Inf" if bound in ("+Inf", "inf") else repr(float(bound))


def test_every_count_equals_the_profile_binning_in_process(
    server: Server,
    model_dir: Path,
    profile: ReferenceProfile,
    rows: tuple[list[str], list[list[Any]]],
) -> None:
    names, table = rows
    version = content_version(model_dir)
    # Given: the rows in batches of 20, then one by one, spread over both workers.
    batches = [table[0:20], table[20:40], table[40:55]] + [[row] for row in table[55:]]
    answers = []
    for batch in batches:
        status, body = server.post({"data": {"names": names, "ndarray": batch}})
        assert status == 200, body
        answers.extend(body["data"]["ndarray"])
    # ...and refusals of three kinds (the last one with 1001 rows).
    bad = [
        ({"data": {"names": names, "ndarray": []}}, "no_rows", 0),
        ({"data": {"names": ["plann"], "ndarray": [[1]]}}, "unknown_name", 1),
        ({"data": {"names": names, "ndarray": [table[0]] * 1001}}, "too_many_rows", 1001),
    ]
    for payload, _, _ in bad:
        assert server.post(payload)[0] in (400, 413)
    last_request = time.monotonic()

    # When: /prometheus is scraped, with no further traffic.
    samples = _scrape(server)
    assert time.monotonic() - last_request < 2.0, "counts are current within 2 s"

    # Then: the scores are the model's, and every count is what the profile gives.
    model = mlflow.sklearn.load_model(str(model_dir))
    frame = pd.DataFrame(table, columns=names)
    for column in frame.columns:
        if column in {n.name for n in profile.numeric}:
            frame[column] = frame[column].astype("float64")
    local = model.predict_proba(frame)
    np.testing.assert_allclose(answers, local, rtol=1e-12)
    scores = np.asarray(answers)[:, 1]

    expected_bins = _expected_bins(profile, names, table)
    got_bins = {
        (dict(labels)["feature"], dict(labels)["bin"]): value
        for labels, value in _series(samples, "modelops_feature_bin_total").items()
    }
    assert {k: v for k, v in got_bins.items() if v} == {k: v for k, v in expected_bins.items() if v}
    assert set(got_bins) >= set(expected_bins), "every bin has a series, zero or not"
    assert got_bins[("plan", UNSEEN)] == sum(1 for i in range(60) if i % 7 == 0)
    assert sum(got_bins[(profile.numeric[0].name, b)] for b in profile.numeric[0].bins) == 60 - 12

    expected_score = {_le(k): v for k, v in _cumulative(SCORE_GRID, scores).items()}
    got_score = {_le(k): v for k, v in _buckets(samples, "modelops_score").items()}
    assert got_score == expected_score
    assert _value(samples, "modelops_score_count") == 60
    assert _value(samples, "modelops_score_sum") == pytest.approx(float(scores.sum()), rel=1e-12)

    assert _value(samples, "modelops_predictions_total", **{"class": "1"}) == np.sum(scores >= 0.5)
    assert _value(samples, "modelops_predictions_total", **{"class": "0"}) == np.sum(scores < 0.5)

    outcomes = {
        (dict(k)["endpoint"], dict(k)["outcome"]): v
        for k, v in _series(samples, "modelops_requests_total").items()
    }
    assert outcomes[("predict", "ok")] == len(batches)
    for _, reason, _ in bad:
        assert outcomes[("predict", reason)] == 1, (reason, outcomes)
    rows_by = {
        (dict(k)["endpoint"], dict(k)["outcome"]): v
        for k, v in _series(samples, "modelops_rows_total").items()
    }
    assert rows_by[("predict", "ok")] == 60
    assert rows_by[("predict", "too_many_rows")] == 1001
    assert _value(samples, "modelops_request_duration_seconds_count", endpoint="predict") == (
        len(batches) + len(bad)
    )
    assert all(dict(labels)["model_version"] == version for (_, labels) in samples)


def content_version(model_dir: Path) -> str:
    return content_hash(model_dir)[:12]


def _truth(count: int, offset: int) -> list[str]:
    return ["1" if (i + offset) % 3 == 0 else "0" for i in range(count)]


def test_feedback_counts_the_confusion_matrix_labels_scores_and_business_value(
    server: Server,
    model_dir: Path,
    profile: ReferenceProfile,
    rows: tuple[list[str], list[list[Any]]],
) -> None:
    names, table = rows
    before = _scrape(server)
    sent: list[tuple[list[list[Any]], list[str]]] = []
    for start, numbers in ((0, True), (25, False)):
        batch, truth = table[start : start + 25], _truth(25, start)
        request = {"data": {"names": names, "ndarray": batch}}
        _, answer = server.post(request)
        labels: list[Any] = [[int(t)] for t in truth] if numbers else [[t] for t in truth]
        status, body = server.post_to(
            "/api/v1.0/feedback",
            {
                "request": request,
                "response": answer,
                "truth": {"data": {"ndarray": labels}},
                "reward": 1,
            },
        )
        assert status == 200, body
        assert body["meta"]["tags"]["model_version"] == content_version(model_dir)
        sent.append((batch, truth))
    after = _scrape(server)

    all_rows = [row for batch, _ in sent for row in batch]
    actual = np.array([t for _, truth in sent for t in truth])
    _, answer = server.post({"data": {"names": names, "ndarray": all_rows}})
    scores = np.asarray(answer["data"]["ndarray"])[:, 1]
    predicted = np.where(scores >= 0.5, "1", "0")

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    for a in ("0", "1"):
        assert delta("modelops_labels_total", **{"class": a}) == np.sum(actual == a)
        for p in ("0", "1"):
            expected = np.sum((actual == a) & (predicted == p))
            assert delta("modelops_feedback_rows_total", actual=a, predicted=p) == expected, (a, p)
        got = {_le(k): v for k, v in _buckets(after, "modelops_feedback_score", actual=a).items()}
        old = {_le(k): v for k, v in _buckets(before, "modelops_feedback_score", actual=a).items()}
        want = {_le(k): v for k, v in _cumulative(profile.score.cuts, scores[actual == a]).items()}
        assert {k: got[k] - old.get(k, 0.0) for k in got} == want, a
    cells = {
        "true_positive": np.sum((actual == "1") & (predicted == "1")),
        "false_positive": np.sum((actual == "0") & (predicted == "1")),
        "true_negative": np.sum((actual == "0") & (predicted == "0")),
        "false_negative": np.sum((actual == "1") & (predicted == "0")),
    }
    values = [BUSINESS[k] * n for k, n in cells.items()]
    assert delta("modelops_business_value_total", sign="gain") == pytest.approx(
        sum(v for v in values if v > 0)
    )
    assert delta("modelops_business_value_total", sign="cost") == pytest.approx(
        -sum(v for v in values if v < 0)
    )
    assert delta("modelops_requests_total", endpoint="feedback", outcome="ok") == 2
    assert delta("modelops_rows_total", endpoint="feedback", outcome="ok") == 50


def _signed(answer: dict[str, Any], request: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """`answer` with a prediction id for `request` signed with the deployment's key, as
    another predictor of the deployment (stable, for a shadow) would have signed it."""
    columns = to_batch(request, read_artifact(model_dir).columns, max_rows=1000).columns
    scores = np.asarray(answer["data"]["ndarray"], dtype=np.float64)
    deployment = signer(FEEDBACK_KEY, max_age_days=1)
    prediction_id = deployment.issue(
        rows_digest(columns), answer_digest(answer["data"]["names"], scores), now=time.time()
    )
    return {**answer, "meta": {"tags": {PREDICTION_ID_TAG: prediction_id}}}


def test_feedback_with_the_answer_a_client_got_counts_agreement_and_rank_order(
    server: Server, model_dir: Path, rows: tuple[list[str], list[list[Any]]]
) -> None:
    # A shadow gets stable's feedback, with stable's answer inside, signed by stable with the
    # deployment's key; here stable's answer is this model's own answer with a few rows'
    # scores flipped around 0.5, so both the rows that disagree and the pairs that swap order
    # are known exactly. Then this model's own answer: it agrees with itself on every row.
    names, table = rows
    batch = table[:10]
    request = {"data": {"names": names, "ndarray": batch}}
    _, answer = server.post(request)
    own = np.asarray(answer["data"]["ndarray"])[:, 1]
    other = own.copy()
    other[:3] = 1.0 - other[:3]
    stable = _signed(
        {"data": {"names": ["0", "1"], "ndarray": [[1 - x, x] for x in other]}}, request, model_dir
    )
    before = _scrape(server)
    truth = {"data": {"ndarray": [[t] for t in _truth(10, 0)]}}
    for response in (stable, answer):
        status, reply = server.post_to(
            "/api/v1.0/feedback", {"request": request, "response": response, "truth": truth}
        )
        assert status == 200, reply
    after = _scrape(server)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    agree = int(np.sum((own >= 0.5) == (other >= 0.5)))
    assert delta("modelops_answer_agreement_rows_total", agree="true") == agree + 10
    assert delta("modelops_answer_agreement_rows_total", agree="false") == 10 - agree
    first, second = np.triu_indices(10, k=1)
    order = np.sign(own[first] - own[second]) * np.sign(other[first] - other[second])
    itself = np.sign(own[first] - own[second]) ** 2
    assert delta("modelops_answer_pairs_total", order="concordant") == np.sum(order > 0) + np.sum(
        itself > 0
    )
    assert delta("modelops_answer_pairs_total", order="discordant") == np.sum(order < 0)
    assert np.sum(order < 0) > 0, "the flipped rows change the order of some pairs"


def _nested(levels: int) -> Any:
    value: Any = [0]
    for _ in range(levels):
        value = [value]
    return value


def _forged(answer: dict[str, Any]) -> dict[str, Any]:
    """`answer` with its first row's scores swapped: what the server never answered."""
    rows = [list(row) for row in answer["data"]["ndarray"]]
    rows[0] = rows[0][::-1]
    return {**answer, "data": {**answer["data"], "ndarray": rows}}


def _never_issued(answer: dict[str, Any]) -> dict[str, Any]:
    """`answer` with an id of the right form that no server issued (another MAC)."""
    version, issued, nonce, mac = answer["meta"]["tags"][PREDICTION_ID_TAG].split(".")
    forged = f"{version}.{issued}.{nonce}.{'A' * len(mac)}"
    return {**answer, "meta": {"tags": {**answer["meta"]["tags"], PREDICTION_ID_TAG: forged}}}


TWO_TRUTHS = {"data": {"ndarray": [[1], [0]]}}
# (case, body from the request and the answer it got, status, reason, message)
BAD_FEEDBACK: list[tuple[str, Any, int, str, str]] = [
    ("no truth", lambda r, a: {"request": r, "response": a}, 400, "no_truth", "needs 'truth'"),
    (
        "truth not a class",
        lambda r, a: {"request": r, "response": a, "truth": {"data": {"ndarray": [[2], [0]]}}},
        400,
        "truth_not_a_class",
        "'truth.data.ndarray[0]' is [2]: a truth is the true class, one of 0, 1",
    ),
    (
        "row count mismatch",
        lambda r, a: {"request": r, "response": a, "truth": {"data": {"ndarray": [[1]]}}},
        400,
        "truth_rows_mismatch",
        "'truth.data.ndarray' has 1 rows and 'request' has 2",
    ),
    (
        "a request the model cannot score",
        lambda r, a: {
            "request": {"data": {"ndarray": [[1, 2], [3, 4]]}},
            "response": a,
            "truth": TWO_TRUTHS,
        },
        400,
        "wrong_row_length",
        "in the feedback's 'request': 'data.ndarray[0]' has 2 values",
    ),
    (
        "no request",
        lambda r, a: {"response": a, "truth": TWO_TRUTHS},
        400,
        "no_request",
        "needs 'request'",
    ),
    (
        "not a feedback message",
        lambda r, a: {"request": r, "response": a, "truht": {}},
        400,
        "invalid_message",
        "is not Seldon's Feedback message (unknown 'truht')",
    ),
    (
        "a reward that is not a number",
        lambda r, a: {"request": r, "response": a, "truth": TWO_TRUTHS, "reward": "lots"},
        400,
        "invalid_message",
        "('reward' is 'lots')",
    ),
    (
        "no prediction id (an empty response)",
        lambda r, a: {"request": r, "response": {}, "truth": TWO_TRUTHS},
        400,
        "no_prediction_id",
        "with its 'meta.tags.prediction_id': send back what the prediction answered",
    ),
    (
        "a forged answer",
        lambda r, a: {"request": r, "response": _forged(a), "truth": TWO_TRUTHS},
        403,
        "unverified_prediction",
        "'response' is not an answer this deployment gave to 'request'",
    ),
    (
        "rows that were never predicted",
        lambda r, a: {
            "request": {"data": {**r["data"], "ndarray": r["data"]["ndarray"][::-1]}},
            "response": a,
            "truth": TWO_TRUTHS,
        },
        403,
        "unverified_prediction",
        "its meta.tags.prediction_id does not match them",
    ),
    (
        "an id never issued",
        lambda r, a: {"request": r, "response": _never_issued(a), "truth": TWO_TRUTHS},
        403,
        "unverified_prediction",
        "'response' is not an answer this deployment gave to 'request'",
    ),
    (
        "nested 600 deep",
        lambda r, a: {"request": {"data": {"ndarray": _nested(600)}}, "truth": TWO_TRUTHS},
        400,
        "too_deeply_nested",
        "the body is nested more than 32 levels deep",
    ),
    (
        "an integer above the largest double",
        lambda r, a: {"request": r, "response": a, "truth": {"data": {"ndarray": [[10**400]]}}},
        400,
        "number_too_large",
        "the body has an integer of 401 digits, beyond the largest number",
    ),
]


def test_bad_feedback_is_refused_naming_the_field_and_counted_by_reason_only(
    server: Server, rows: tuple[list[str], list[list[Any]]]
) -> None:
    """Given a prediction's request and answer, when feedback is sent that is malformed, that
    is about rows or an answer the server did not give, or that seldon-core's protobuf parser
    failed on (a 500 before), then each gets a 4xx naming what is wrong and only the refusals
    are counted, each by its reason. One scrape before and one after all of them."""
    names, table = rows
    request = {"data": {"names": names, "ndarray": table[:2]}}
    _, answer = server.post(request)
    before = _scrape(server)
    for case, build, status, _, message in BAD_FEEDBACK:
        got, body = server.post_to("/api/v1.0/feedback", build(request, answer))
        assert got == status, (case, body)
        assert message in body["status"]["info"], (case, body)
    after = _scrape(server)
    for reason, times in Counter(reason for _, _, _, reason, _ in BAD_FEEDBACK).items():
        counted = _value(after, "modelops_requests_total", endpoint="feedback", outcome=reason)
        earlier = _value(before, "modelops_requests_total", endpoint="feedback", outcome=reason)
        assert counted == earlier + times, reason
    for name in (
        "modelops_feedback_rows_total",
        "modelops_labels_total",
        "modelops_feedback_score_count",
    ):
        assert _value(after, name) == _value(before, name), f"{name} counted a refusal"


def test_each_predictions_truth_counts_once_whichever_worker_gets_it(
    server: Server, rows: tuple[list[str], list[list[Any]]]
) -> None:
    """Given one prediction, when its feedback is sent four times to a server of two workers
    (each connection goes to either), then the first is counted and the others get 409."""
    names, table = rows
    request = {"data": {"names": names, "ndarray": table[:3]}}
    _, answer = server.post(request)
    feedback = {"request": request, "response": answer, "truth": {"data": {"ndarray": [[1]] * 3}}}
    before = _scrape(server)
    answers = [server.post_to("/api/v1.0/feedback", feedback) for _ in range(4)]
    after = _scrape(server)
    assert [status for status, _ in answers] == [200, 409, 409, 409], answers
    assert "this prediction's truth was counted already" in answers[1][1]["status"]["info"]
    assert _value(after, "modelops_labels_total") - _value(before, "modelops_labels_total") == 3
    refused = "modelops_requests_total"
    assert (
        _value(after, refused, outcome="duplicate_feedback")
        - _value(before, refused, outcome="duplicate_feedback")
        == 3
    )


def test_the_model_is_described_by_info_and_training_time(server: Server, model_dir: Path) -> None:
    samples = _scrape(server)
    card = json.loads((model_dir / "modelops.json").read_text())
    info = _series(samples, "modelops_model_info")
    assert len(info) == 1, info
    labels = dict(next(iter(info)))
    assert labels["data_version"] == card["data_version"]
    assert labels["trained_at"] == card["trained_at"]
    assert next(iter(info.values())) == 1.0, "max over workers, not a sum"
    trained = _value(samples, "modelops_model_trained_timestamp_seconds")
    expected = calendar.timegm(time.strptime(card["trained_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert trained == expected


def test_every_series_is_exposed_as_the_contract_declares_it(
    server: Server, profile: ReferenceProfile, rows: tuple[list[str], list[list[Any]]]
) -> None:
    """Given a model with a profile and business values, after a prediction and a feedback,
    /prometheus has exactly the contract's families (an experiment's aside: none runs), each of
    its kind, with its labels, and the histograms on their buckets: the latency objective's
    bounds, the score grid, the cuts."""
    names, table = rows
    request = {"data": {"names": names, "ndarray": table[:3]}}
    status, answer = server.post(request)
    assert status == 200
    truth = {"data": {"ndarray": [["1"], ["0"], ["1"]]}}
    feedback = {"request": request, "response": answer, "truth": truth}
    assert server.post_to("/api/v1.0/feedback", feedback)[0] == 200
    time.sleep(SETTLE_SECONDS)
    url = f"http://127.0.0.1:{server.metrics_port}/prometheus"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()

    types = dict(re.findall(r"^# TYPE (modelops_\S+) (\S+)$", text, flags=re.MULTILINE))
    served = [series for series in SERIES if series not in EXPERIMENT_SERIES]
    assert types == {series.family: series.kind for series in served}
    of_sample = {name: series for series in served for name in series.samples}
    bounds: dict[str, set[float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("modelops_"):
                continue
            series = of_sample.get(sample.name)
            assert series is not None, f"{sample.name} is not a sample of a contract series"
            expected = set(series.labels) | ({LE} if sample.name.endswith("_bucket") else set())
            assert set(sample.labels) == expected, (sample.name, sample.labels)
            if LE in sample.labels:
                bounds.setdefault(series.name, set()).add(float(sample.labels[LE]))
    assert bounds == {
        REQUEST_DURATION.name: {*LATENCY_BOUNDS, math.inf},
        SCORE.name: {*SCORE_GRID, math.inf},
        FEEDBACK_SCORE.name: {*profile.score.cuts, math.inf},
    }


def test_a_model_without_a_profile_still_serves_without_bin_series(
    model_dir: Path, rows: tuple[list[str], list[list[Any]]], tmp_path: Path
) -> None:
    old = tmp_path / "old-model"
    shutil.copytree(model_dir, old)
    (old / "profile.json").unlink()
    card = json.loads((old / "modelops.json").read_text())
    del card["trained_at"]
    (old / "modelops.json").write_text(json.dumps(card))
    names, table = rows
    log = tmp_path / "old.log"
    with Server(SERVING_BIN, old, workers=1, log_file=log) as running:
        status, _ = running.post({"data": {"names": names, "ndarray": table[:5]}})
        samples = _scrape(running)
    assert status == 200
    assert _value(samples, "modelops_predictions_total") == 5
    assert _value(samples, "modelops_requests_total", outcome="ok") == 1
    assert not _series(samples, "modelops_feature_bin_total")
    assert not _buckets(samples, "modelops_score")
    assert not _series(samples, "modelops_model_trained_timestamp_seconds")
    assert log.read_text().count("profile.json: not found") == 1


def test_a_telemetry_failure_still_answers_and_is_counted(
    model_dir: Path, rows: tuple[list[str], list[list[Any]]], tmp_path: Path
) -> None:
    """The faulty server's recorder raises on every prediction (tests/serving/faulty)."""
    names, table = rows
    log = tmp_path / "broken.log"
    with Server(
        SERVING_BIN,
        model_dir,
        workers=1,
        log_file=log,
        server_class="faulty_server.BrokenTelemetryServer",
        extra_env={"PYTHONPATH": str(FAULTY_DIR)},
    ) as running:
        answers = [running.post({"data": {"names": names, "ndarray": table[:3]}}) for _ in range(3)]
        samples = _scrape(running)
    assert [status for status, _ in answers] == [200, 200, 200]
    assert _value(samples, "modelops_telemetry_errors_total") == 3
    assert _value(samples, "modelops_requests_total", outcome="ok") == 3, "the rest still counts"
    assert log.read_text().count("telemetry failed (builtins.RuntimeError)") == 1, "logged once"


def test_telemetry_off_records_nothing_of_ours(
    model_dir: Path, rows: tuple[list[str], list[list[Any]]], tmp_path: Path
) -> None:
    names, table = rows
    parameters = [{"name": "telemetry", "type": "STRING", "value": "off"}]
    with Server(
        SERVING_BIN, model_dir, workers=1, extra_env={PARAMETERS_ENV: json.dumps(parameters)}
    ) as running:
        assert running.post({"data": {"names": names, "ndarray": table[:3]}})[0] == 200
        samples = _scrape(running)
    assert not samples


def test_an_invalid_business_value_stops_the_server_with_why(
    model_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "invalid.log"
    bad = copy.deepcopy(BUSINESS)
    bad["true_positive"] = "a lot"  # type: ignore[assignment]
    server = Server(
        SERVING_BIN,
        model_dir,
        workers=1,
        log_file=log,
        extra_env={"MODELOPS_BUSINESS_VALUE": json.dumps(bad)},
    )
    with pytest.raises(RuntimeError, match="the server exited"):
        server.start(ready_within=60)
    assert "business_value.true_positive must be a finite number, got 'a lot'" in log.read_text()


def test_a_worker_writes_what_it_counted_when_it_exits(
    model_dir: Path, rows: tuple[list[str], list[list[Any]]], tmp_path: Path
) -> None:
    """Given background writes that never come, when gunicorn replaces the worker after every
    request (GUNICORN_MAX_REQUESTS=1), then each worker's exit writes its request's counts."""
    names, table = rows
    with Server(
        SERVING_BIN,
        model_dir,
        workers=1,
        log_file=tmp_path / "restart.log",
        server_class="faulty_server.NeverFlushingServer",
        extra_env={"PYTHONPATH": str(FAULTY_DIR), "GUNICORN_MAX_REQUESTS": "1"},
    ) as running:
        for _ in range(3):
            assert running.post({"data": {"names": names, "ndarray": table[:2]}})[0] == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            samples = _scrape(running)
            if _value(samples, "modelops_requests_total") >= 3:
                break
    assert _value(samples, "modelops_requests_total", outcome="ok") == 3
    assert _value(samples, "modelops_predictions_total") == 6
    assert "Autorestarting worker" in (tmp_path / "restart.log").read_text()

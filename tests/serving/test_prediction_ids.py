"""Prediction ids in process: what an id proves, when it stops proving it, and the pod's memory
of counted ids (the HTTP tests in test_telemetry.py send them through the real server)."""

from __future__ import annotations

import logging
import multiprocessing
import time

import numpy as np
import pytest
from modelops_serving.prediction_ids import (
    CLOCK_SKEW_SECONDS,
    RecentIds,
    answer_digest,
    rows_digest,
    signer,
)
from modelops_serving.validation import RequestError

KEY = "k" * 40
NOW = 1_800_000_000.0
ROWS = rows_digest({"age": np.array([31.0, np.nan]), "plan": ["basic", None]})
ANSWER = answer_digest(["0", "1"], np.array([[0.9, 0.1], [0.2, 0.8]]))


def _refused(call: object) -> RequestError:
    with pytest.raises(RequestError) as refused:
        call()  # type: ignore[operator]
    return refused.value


def test_an_id_proves_its_rows_and_answer_to_any_holder_of_the_key() -> None:
    # Given an id issued by one replica, when another replica with the same key verifies it,
    # then it is accepted, and its MAC identifies the prediction.
    issued = signer(KEY, max_age_days=1).issue(ROWS, ANSWER, now=NOW)
    mac = signer(KEY, max_age_days=1).verify(issued, ROWS, ANSWER, now=NOW + 60)
    assert len(mac) == 32
    assert issued.startswith(f"1.{int(NOW)}.")
    assert issued != signer(KEY, max_age_days=1).issue(ROWS, ANSWER, now=NOW), "a nonce each"


@pytest.mark.parametrize(
    "change",
    ["other rows", "other answer", "other key", "malformed", "truncated mac"],
)
def test_an_id_for_other_rows_another_answer_or_key_is_refused_403(change: str) -> None:
    deployment = signer(KEY, max_age_days=1)
    issued = deployment.issue(ROWS, ANSWER, now=NOW)
    rows, answer, verifier, given = ROWS, ANSWER, deployment, issued
    if change == "other rows":
        rows = rows_digest({"age": np.array([32.0, np.nan]), "plan": ["basic", None]})
    elif change == "other answer":
        answer = answer_digest(["0", "1"], np.array([[0.1, 0.9], [0.2, 0.8]]))
    elif change == "other key":
        verifier = signer("another-deployments-key-0123456789abcdef", max_age_days=1)
    elif change == "malformed":
        given = "not-an-id"
    else:
        given = issued[:-1]
    refused = _refused(lambda: verifier.verify(given, rows, answer, now=NOW))
    assert (refused.status, refused.reason) == (403, "unverified_prediction")
    assert "'response' is not an answer this deployment gave to 'request'" in refused.message


def test_an_id_older_than_the_max_age_or_from_the_future_is_refused_403() -> None:
    deployment = signer(KEY, max_age_days=2)
    issued = deployment.issue(ROWS, ANSWER, now=NOW)
    deployment.verify(issued, ROWS, ANSWER, now=NOW + 2 * 86400)  # the last second it counts
    late = _refused(lambda: deployment.verify(issued, ROWS, ANSWER, now=NOW + 2 * 86400 + 1))
    assert (late.status, late.reason) == (403, "prediction_expired")
    assert "feedback is taken for 2 days (feedback_max_age_days)" in late.message
    early = _refused(
        lambda: deployment.verify(issued, ROWS, ANSWER, now=NOW - 1 - CLOCK_SKEW_SECONDS)
    )
    assert early.reason == "prediction_expired"


def test_rows_digest_is_the_rows_as_scored_whatever_their_json_spelling() -> None:
    # Given the same rows named in another order, with 1 for 1.0 and -0.0 for 0.0 (JSON
    # encoders differ), then the digest is the same; a value or a kind that differs is not.
    base = {"a": np.array([1.0, 0.0]), "b": ["x", None]}
    assert rows_digest(base) == rows_digest({"b": ["x", None], "a": np.array([1, -0.0])})
    assert rows_digest(base) != rows_digest({"a": np.array([1.0, 0.5]), "b": ["x", None]})
    assert rows_digest(base) != rows_digest({"a": np.array([1.0, 0.0]), "b": ["y", None]})
    assert rows_digest({"a": ["1"]}) != rows_digest({"a": np.array([1.0])})


def test_without_a_key_the_server_signs_with_its_own_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        own = signer("", max_age_days=1)
    assert "no MODELOPS_FEEDBACK_KEY: prediction ids are signed with a key made for" in caplog.text
    issued = own.issue(ROWS, ANSWER, now=NOW)
    assert _refused(lambda: signer(KEY, max_age_days=1).verify(issued, ROWS, ANSWER, now=NOW))


@pytest.mark.parametrize(
    ("key", "age", "message"),
    [
        ("short", 1.0, "MODELOPS_FEEDBACK_KEY has 5 characters; it needs at least 32"),
        (KEY, 0.0, "feedback_max_age_days must be above 0"),
    ],
)
def test_a_short_key_or_no_max_age_is_refused(key: str, age: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        signer(key, max_age_days=age)


def _record(ids: RecentIds, mac: bytes) -> None:
    ids.first_time(mac)


def test_recent_ids_refuse_a_repeat_in_any_process_of_the_pod() -> None:
    # Given the table made before a fork (as gunicorn forks workers after the server is
    # built), when a child process records an id, then the parent finds it recorded.
    ids = RecentIds()
    first, second = b"\x01" * 32, b"\x02" * 32
    child = multiprocessing.get_context("fork").Process(target=_record, args=(ids, first))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    assert ids.first_time(first) is False, "recorded by the other process"
    assert ids.first_time(second) is True
    assert ids.first_time(second) is False


def test_an_id_is_forgotten_only_after_a_full_bucket_of_later_ids() -> None:
    ids = RecentIds()
    # Ids that share their first four bytes land in one bucket.
    same_bucket = [b"\x07\x00\x00\x00" + bytes([n]) * 28 for n in range(RecentIds.SLOTS + 1)]
    assert ids.first_time(same_bucket[0])
    for mac in same_bucket[1 : RecentIds.SLOTS]:
        assert ids.first_time(mac)
    assert not ids.first_time(same_bucket[0]), "still remembered with the bucket full"
    assert ids.first_time(same_bucket[RecentIds.SLOTS])
    assert ids.first_time(same_bucket[0]), "the oldest of the bucket was replaced"


def test_checking_an_id_is_quick() -> None:
    ids = RecentIds()
    started = time.perf_counter()
    for n in range(2000):
        ids.first_time(n.to_bytes(32, "little"))
    assert (time.perf_counter() - started) / 2000 < 0.001, "well under a millisecond each"

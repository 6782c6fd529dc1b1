"""Prediction ids: what makes feedback refer to a prediction this deployment made and answered.

Feedback drives the canary's quality and shadow criteria, the feedback alerts and the
retraining decision; before ids, anyone could send truth for rows never predicted, with an
answer of their choosing. Now every answer carries an id, `1.<issued>.<nonce>.<mac>`:

- `issued` (Unix seconds) and `nonce` (8 random bytes) make each prediction's id its own;
- `mac` is HMAC-SHA256, under the deployment's key, over them and two digests: of the rows the
  server scored (`rows_digest`) and of the answer it returned (`answer_digest`).

A server holding the same key (any replica or predictor of the deployment: the key comes from
one Secret) verifies, from the feedback alone, that its `request` and `response` are exactly a
request and answer the deployment signed: no state per prediction. `RecentIds` then remembers
the ids a pod counted, so a repeat is refused there; what that cannot catch is said in
serving/README.md#feedback.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import logging
import mmap
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from modelops_contract import FEEDBACK_KEY_ENV

from modelops_serving.validation import RequestError

logger = logging.getLogger(__name__)

VERSION = "1"
MIN_KEY_CHARS = 32
DEFAULT_MAX_AGE_DAYS = 30.0
CLOCK_SKEW_SECONDS = 300
"""How far in the future an id's time may be: replicas' clocks differ a little."""
_NONCE_BYTES = 8
_ID = re.compile(
    rf"{VERSION}\.([0-9]{{1,12}})\.([0-9a-f]{{{2 * _NONCE_BYTES}}})\.([A-Za-z0-9_-]{{43}})"
)
_DAY_SECONDS = 86400


@dataclass(frozen=True)
class Signer:
    """Issues and verifies prediction ids with one deployment's key."""

    key: bytes
    max_age_seconds: float

    def issue(self, rows: bytes, answer: bytes, *, now: float) -> str:
        """The id of a prediction whose scored rows and answer have these digests."""
        issued, nonce = int(now), secrets.token_hex(_NONCE_BYTES)
        return f"{VERSION}.{issued}.{nonce}.{_text(self._mac(issued, nonce, rows, answer))}"

    def verify(self, prediction_id: str, rows: bytes, answer: bytes, *, now: float) -> bytes:
        """The id's MAC (what identifies the prediction), once the id proves that this
        deployment answered `answer` for `rows`, recently enough.

        Raises:
            RequestError: 403 when the id was never issued for these rows and this answer (forged,
                changed, or signed with another key), or is older than `max_age_seconds`.
        """
        found = _ID.fullmatch(prediction_id)
        mac = _bytes(found[3]) if found else b""
        if not found or not hmac.compare_digest(
            mac, self._mac(int(found[1]), found[2], rows, answer)
        ):
            raise RequestError(
                "'response' is not an answer this deployment gave to 'request': its "
                "meta.tags.prediction_id does not match them (send the request and the whole "
                "response exactly as the prediction returned them)",
                status=403,
                reason="unverified_prediction",
            )
        age = now - int(found[1])
        if not -CLOCK_SKEW_SECONDS <= age <= self.max_age_seconds:
            raise RequestError(
                f"the prediction is {age / _DAY_SECONDS:.1f} days old; feedback is taken for "
                f"{self.max_age_seconds / _DAY_SECONDS:g} days (feedback_max_age_days)",
                status=403,
                reason="prediction_expired",
            )
        return mac

    def _mac(self, issued: int, nonce: str, rows: bytes, answer: bytes) -> bytes:
        message = f"modelops prediction {VERSION}\n{issued}\n{nonce}\n".encode() + rows + answer
        return hmac.digest(self.key, message, "sha256")


def signer(key_text: str, *, max_age_days: float) -> Signer:
    """The signer for a key given as text (the Secret's value); a key made for this process,
    with a warning, when none is given.

    Raises:
        ValueError: a key shorter than MIN_KEY_CHARS, or a max age that is not positive.
    """
    if not max_age_days > 0:
        raise ValueError(f"feedback_max_age_days must be above 0, got {max_age_days:g}")
    text = key_text.strip()
    if not text:
        logger.warning(
            "no %s: prediction ids are signed with a key made for this process, so feedback "
            "verifies on this server only, until it stops; give every replica the same key "
            "from a Secret (serving/README.md#feedback)",
            FEEDBACK_KEY_ENV,
        )
        return Signer(secrets.token_bytes(32), max_age_days * _DAY_SECONDS)
    if len(text) < MIN_KEY_CHARS:
        raise ValueError(
            f"{FEEDBACK_KEY_ENV} has {len(text)} characters; it needs at least {MIN_KEY_CHARS} "
            "(e.g. `openssl rand -hex 32`)"
        )
    return Signer(text.encode(), max_age_days * _DAY_SECONDS)


def rows_digest(columns: Mapping[str, Any]) -> bytes:
    """A digest of the rows as the model scores them: by input name (in any order the request
    named them), numbers as doubles (1 and 1.0 alike, missing as NaN), text as JSON."""
    names = sorted(columns)
    numeric = [name for name in names if isinstance(columns[name], np.ndarray)]
    text = [name for name in names if not isinstance(columns[name], np.ndarray)]
    rows = len(columns[names[0]]) if names else 0
    # + 0.0 makes -0.0 the same as 0.0: a JSON encoder may write either.
    numbers = np.array([columns[name] for name in numeric], dtype=np.float64) + 0.0
    digest = hashlib.sha256(json.dumps([numeric, text, rows]).encode())
    digest.update(numbers.tobytes())
    digest.update(json.dumps([list(columns[name]) for name in text]).encode())
    return digest.digest()


def answer_digest(classes: Sequence[str], scores: npt.NDArray[np.float64]) -> bytes:
    """A digest of an answer: its class names and the scores of each row, as doubles."""
    digest = hashlib.sha256(json.dumps([list(classes), list(scores.shape)]).encode())
    digest.update(np.ascontiguousarray(scores, dtype=np.float64).tobytes())
    return digest.digest()


class RecentIds:
    """The ids whose truth a pod counted lately, shared by all its processes.

    A table of BUCKETS x SLOTS ids (16 bytes of each MAC) in a memory-mapped temporary file,
    made before gunicorn forks its workers, so every worker (and the gRPC server) sees one
    table; a POSIX lock, which the kernel releases when a holder dies, guards each change. An
    id is forgotten when SLOTS later ids landed in its bucket: after about BUCKETS x SLOTS
    (262,144) counted feedback messages.
    """

    BUCKETS = 16384
    SLOTS = 16
    ID_BYTES = 16

    def __init__(self) -> None:
        # An unlinked file, open for the pod's life: the table's memory and the lock's target.
        self._fd, path = tempfile.mkstemp(prefix="modelops-feedback-ids-")
        Path(path).unlink()
        self._ids_bytes = self.BUCKETS * self.SLOTS * self.ID_BYTES
        size = self._ids_bytes + self.BUCKETS  # then one next-slot byte per bucket
        os.ftruncate(self._fd, size)
        self._table = mmap.mmap(self._fd, size)
        self._threads = threading.Lock()

    def first_time(self, mac: bytes) -> bool:
        """Record the id with this MAC; False when it was recorded already."""
        ident = mac[: self.ID_BYTES]
        bucket = int.from_bytes(ident[:4], "little") % self.BUCKETS
        start = bucket * self.SLOTS * self.ID_BYTES
        width = self.ID_BYTES
        with self._threads:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)  # the whole file, from its start
            try:
                block = self._table[start : start + self.SLOTS * width]
                if any(block[at : at + width] == ident for at in range(0, len(block), width)):
                    return False
                counter = self._ids_bytes + bucket
                slot = self._table[counter]
                self._table[start + slot * width : start + (slot + 1) * width] = ident
                self._table[counter] = (slot + 1) % self.SLOTS
                return True
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)


def _text(mac: bytes) -> str:
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _bytes(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=")
    except ValueError:
        return b""

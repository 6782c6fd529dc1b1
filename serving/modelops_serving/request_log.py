"""The sampled request log: a share of the rows the server scored, as JSON lines.

`modelops monitor --rows FILE` gates these rows against the training data (batch drift with
Deepchecks). Each line is one row: `{"at": ..., "model_version": ..., "score": ...,
"features": {name: value}}` (a missing value is null). Sampling is systematic from a random
start: of every n rows a worker scores, floor(n x rate + start) are written, so the log never
holds more than the rate asks (at most one row over it per worker), with no run of luck.
Lines go to a file (appended; each line in one write, so workers can share the file) or to
stdout for a log collector.

Each logged text value is cut at `LOGGED_VALUE_CHARS` characters, with a marker that says how
many were cut: a client's 5 MB string must not become a 5 MB log line. The model's own
categories are far shorter, so a cut value only ever stands for a category it never saw.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

REQUEST_LOG_ENV = "MODELOPS_REQUEST_LOG"
SAMPLE_RATE_ENV = "MODELOPS_REQUEST_LOG_SAMPLE_RATE"
STDOUT = "stdout"
LOGGED_VALUE_CHARS = 200


class RequestLog:
    """Writes a systematic sample of scored rows."""

    def __init__(self, target: str, rate: float, *, model_version: str) -> None:
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"request_log_sample_rate must be in (0, 1], got {rate}")
        self.target = target
        self.rate = rate
        self.model_version = model_version
        self._seen = 0
        self._phase = random.random()
        self._lock = threading.Lock()

    def rows(self, columns: Mapping[str, Sequence[Any]], scores: Sequence[float]) -> int:
        """Log the sampled rows of one scored batch; how many were written."""
        with self._lock:
            start = self._seen
            self._seen += len(scores)
            chosen = [
                index
                for index in range(len(scores))
                if self._taken(start + index + 1) > self._taken(start + index)
            ]
        if not chosen:
            return 0
        at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        names = list(columns)
        lines = "".join(
            json.dumps(
                {
                    "at": at,
                    "model_version": self.model_version,
                    "score": round(float(scores[i]), 6),
                    "features": {name: _plain(columns[name][i]) for name in names},
                },
                allow_nan=False,
            )
            + "\n"
            for i in chosen
        )
        self._write(lines)
        return len(chosen)

    def _taken(self, count: int) -> int:
        return math.floor(count * self.rate + self._phase)

    def _write(self, text: str) -> None:
        if self.target == STDOUT:
            _write_to(sys.stdout, text)
            return
        descriptor = os.open(self.target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, text.encode("utf-8"))
        finally:
            os.close(descriptor)


def from_settings(target: str, rate: Any, *, model_version: str) -> RequestLog | None:
    """The log the parameters (or environment) ask for; None when the rate is 0 or unset."""
    target = target or os.environ.get(REQUEST_LOG_ENV, "") or STDOUT
    given = rate if rate not in ("", None) else os.environ.get(SAMPLE_RATE_ENV, "0")
    try:
        value = float(given)
    except (TypeError, ValueError):
        raise ValueError(f"request_log_sample_rate must be a number, got {given!r}") from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ValueError(f"request_log_sample_rate must be between 0 and 1, got {value}")
    if value == 0.0:
        return None
    return RequestLog(target, value, model_version=model_version)


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float | int) and not isinstance(value, bool):
        number = float(value)
        return None if math.isnan(number) else (int(number) if number.is_integer() else number)
    item = getattr(value, "item", None)
    if callable(item):
        return _plain(item())
    return _capped(str(value))


def _capped(text: str) -> str:
    """`text`, or its first LOGGED_VALUE_CHARS characters and how many more there were."""
    if len(text) <= LOGGED_VALUE_CHARS:
        return text
    return f"{text[:LOGGED_VALUE_CHARS]}…[{len(text) - LOGGED_VALUE_CHARS} more characters]"


def _write_to(stream: TextIO, text: str) -> None:
    stream.write(text)
    stream.flush()

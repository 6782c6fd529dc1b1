"""The rehearsal's traffic: test rows replayed to the servers, their truth sent back later.

Run as `python -m modelops.rehearsal.traffic CONFIG` (what `modelops up` starts in the
background). Requests go to the canary with the canary's share of traffic and to stable
otherwise, each track's replicas taken in turn (a shadow gets a copy of each of stable's
requests, its answer ignored, and of stable's feedback, which carries stable's answer to
compare with), at a fixed rate, for a bounded time; the canary's share follows the release
file when the config names one. In an experiment the rows come from units that send again and
again (`rehearsal.units`). Each request's truth goes back to the track that answered it (its
next replica, as through a Service) through Seldon's feedback API after the label delay, as
ground truth arrives in production. Every call is appended to a ledger (JSON lines), so what
was sent can be compared with what Prometheus counted. SIGTERM stops it between calls.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TypedDict, cast

import numpy as np
import pandas as pd
import yaml

from modelops.io import JSONObject
from modelops.rehearsal import units
from modelops.rehearsal.plan import SHIFTED_CATEGORY

TIMEOUT_SECONDS = 10.0
WEIGHT_EVERY_SECONDS = 1.0


class Rows(TypedDict):
    """Rows as Seldon's JSON protocol carries them: column names, then one list per row."""

    names: list[str]
    ndarray: list[list[object]]
    """JSON values: numbers, text, or null for a missing value."""


class SeldonRequest(TypedDict):
    data: Rows


class Truths(TypedDict):
    ndarray: list[list[str]]


class TruthMessage(TypedDict):
    data: Truths


class Feedback(TypedDict):
    """Seldon's feedback message: the request, the server's answer, one true class per row."""

    request: SeldonRequest
    response: JSONObject
    """The whole answer, as received: its signed `meta.tags.prediction_id` is what makes the
    server count the truth (serving/README.md#feedback)."""
    truth: TruthMessage


@dataclass(frozen=True)
class Call:
    """One request or feedback as the ledger records it."""

    at: float
    kind: str
    track: str
    rows: int
    status: int


def requests_from(
    rows: pd.DataFrame, features: Sequence[str], label: str, *, per_request: int, seed: int
) -> Iterator[tuple[SeldonRequest, list[list[str]]]]:
    """Seldon requests of `per_request` rows each, with their truths, cycling through `rows`."""
    order = np.random.default_rng(seed).permutation(len(rows))
    shuffled = rows.iloc[order].reset_index(drop=True)
    start = 0
    while True:
        chunk = shuffled.iloc[start : start + per_request]
        if len(chunk) < per_request:
            chunk = pd.concat([chunk, shuffled.iloc[: per_request - len(chunk)]])
        start = (start + per_request) % len(shuffled)
        values = [
            [units.json_value(chunk[name].iloc[i]) for name in features] for i in range(len(chunk))
        ]
        truths = [[str(value)] for value in chunk[label]]
        yield {"data": {"names": list(features), "ndarray": values}}, truths


def shifted(request: SeldonRequest, shift: JSONObject) -> SeldonRequest:
    """`request` with `shift["feature"]` drifted: a number times the factor, any other value
    replaced by a category training never saw; a missing value stays missing."""
    names = request["data"]["names"]
    column = names.index(shift["feature"])
    factor = float(shift["factor"])
    rows: list[list[object]] = []
    for row in request["data"]["ndarray"]:
        value = row[column]
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = value * factor
        elif value is not None:
            value = SHIFTED_CATEGORY
        rows.append([*row[:column], value, *row[column + 1 :]])
    return {"data": {"names": names, "ndarray": rows}}


def release_weight(release_file: Path, current: float) -> float:
    """The canary's share of traffic in a release file now (0 without a canary): the split
    follows promotions and rollbacks as they are written. `current` while it cannot be read."""
    try:
        document = yaml.safe_load(release_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return current
    if not isinstance(document, dict):
        return current
    canary = document.get("canary")
    if not canary:
        return 0.0
    try:
        return float(canary["weight"]) / 100
    except (KeyError, TypeError, ValueError):
        return current


def feedback_body(
    request: SeldonRequest, response: JSONObject, truths: list[list[str]]
) -> Feedback:
    """Seldon's feedback message: the request, the answer, and one true class per row."""
    return {"request": request, "response": response, "truth": {"data": {"ndarray": truths}}}


def post(url: str, body: Mapping[str, object]) -> tuple[int, JSONObject]:
    """POST JSON; the status and the decoded answer (empty when it is not JSON)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
            return answer.status, _decoded(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, _decoded(error.read())
    except (urllib.error.URLError, OSError):
        return 0, {}


def run(config: JSONObject) -> int:
    """Send the traffic `config` describes (`processes.up` wrote it: `plan.traffic_config` and
    the `TrafficPlan`); 0 when it ran to its end (or was stopped)."""
    stopped = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    plan = config["plan"]
    servers: dict[str, list[str]] = {}  # a track's replicas, taken in turn as a Service would
    for server in config["servers"]:
        servers.setdefault(server["track"], []).append(server["url"])
    turns = dict.fromkeys(servers, 0)

    def to(track: str, path: str) -> str:
        turns[track] += 1
        return f"{servers[track][turns[track] % len(servers[track])]}{path}"

    rows = pd.read_parquet(config["rows_file"])
    seed, per_request = int(plan["seed"]), int(plan["rows_per_request"])
    settings = plan.get("units")
    stream: Iterator[tuple[SeldonRequest, list[list[str]]]]
    if not settings:
        stream = requests_from(
            rows, config["features"], config["label"], per_request=per_request, seed=seed
        )
    else:
        sending = units.units_of(rows, settings, np.random.default_rng([seed, 1]))
        print(f"traffic: {len(sending.values)} units, {sending.lost} lost", flush=True)
        made = units.unit_requests(
            rows,
            config["features"],
            config["label"],
            sending,
            settings,
            per_request=per_request,
            rng=np.random.default_rng([seed, 2]),
        )
        stream = cast(Iterator[tuple[SeldonRequest, list[list[str]]]], made)
    effect = np.random.default_rng([seed, 3])
    rng = np.random.default_rng(seed)
    shift = plan.get("shift")
    canary_share = plan["canary_percent"] / 100 if "canary" in servers else 0.0
    release_file = config.get("release_file")
    mirror = config.get("mirror")
    weight_checked = -math.inf
    interval = 1.0 / float(plan["requests_per_second"])
    delay = float(plan["label_delay_seconds"])
    started = time.monotonic()
    ends = started + float(plan["seconds"])
    waiting: deque[tuple[float, str, Feedback]] = deque()
    counts = {"predict": 0, "feedback": 0, "failed": 0}
    with Path(config["ledger"]).open("a", encoding="utf-8") as ledger:

        def record(kind: str, track: str, rows_sent: int, status: int) -> None:
            call = Call(round(time.time(), 3), kind, track, rows_sent, status)
            ledger.write(json.dumps(call.__dict__) + "\n")
            ledger.flush()
            counts[kind] += 1
            counts["failed"] += status != 200

        sent = 0
        while not stopped:
            now = time.monotonic()
            while waiting and waiting[0][0] <= now and not stopped:
                _, track, body = waiting.popleft()
                status, _ = post(to(track, "/api/v1.0/feedback"), body)
                record("feedback", track, len(body["truth"]["data"]["ndarray"]), status)
                if mirror and track == "stable":  # stable's answer inside: the shadow compares
                    copied, _ = post(to(mirror, "/api/v1.0/feedback"), body)
                    record("feedback", mirror, len(body["truth"]["data"]["ndarray"]), copied)
            if now >= ends and not waiting:
                break
            if release_file and now - weight_checked >= WEIGHT_EVERY_SECONDS:
                weight_checked = now
                canary_share = release_weight(Path(release_file), canary_share)
            due = started + sent * interval
            if now < ends and now >= due:
                track = "canary" if rng.random() < canary_share else "stable"
                request, truths = next(stream)
                if shift and 0 <= now - started - shift["at_seconds"] < shift["seconds"]:
                    request = shifted(request, shift)
                status, response = post(to(track, "/api/v1.0/predictions"), request)
                record("predict", track, len(truths), status)
                if mirror and track == "stable":  # as Seldon mirrors to a shadow predictor
                    copied, _ = post(to(mirror, "/api/v1.0/predictions"), request)
                    record("predict", mirror, len(truths), copied)
                if status == 200:
                    if settings:
                        truths = units.with_effect(truths, response, settings, effect.random)
                    waiting.append((now + delay, track, feedback_body(request, response, truths)))
                sent += 1
                continue
            next_feedback = waiting[0][0] if waiting else math.inf
            next_due = min(due if now < ends else math.inf, next_feedback)
            time.sleep(max(0.0, min(next_due - time.monotonic(), 0.5)))
    print(
        f"traffic: {counts['predict']} requests, {counts['feedback']} feedback messages, "
        f"{counts['failed']} failed",
        flush=True,
    )
    return 0


def _decoded(raw: bytes) -> JSONObject:
    try:
        loaded = json.loads(raw)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


if __name__ == "__main__":
    sys.exit(run(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))

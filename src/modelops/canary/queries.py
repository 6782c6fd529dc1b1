"""What the judge asks Prometheus (pure): the PromQL for a step, and its answers as counts.

Every count is `increase(...)` over the step so far, summed by `track` (the label the
PodMonitor, and the rehearsal, put on every series) in the environment's namespace. Each query
is built here once, so the verdict shows exactly the PromQL it was judged on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import modelops_contract as contract
from modelops_contract import (
    AGREE,
    BIN,
    CANARY,
    CELL,
    CONCORDANT,
    DISCORDANT,
    FALSE,
    FEATURE,
    OUTCOME,
    POSITIVE,
    SERVER_ERROR,
    STABLE,
    TRACK,
    TRUE,
)

from modelops.canary.evidence import TrackCounts
from modelops.telemetry.promql import Vector, cumulative_buckets, sample_value

TRACKS = (CANARY, STABLE)


def step_queries(
    namespace: str, seconds: float, tracks: Sequence[str] = TRACKS, *, label: str = TRACK
) -> dict[str, str]:
    """The PromQL of each kind of count, over the last `seconds` (at least one), per value of
    `label`: a track (the canary judge), or a model version (an experiment's variants)."""
    window = f"{max(math.ceil(seconds), 1)}s"
    selector = f'namespace="{namespace}", {label}=~"{"|".join(tracks)}"'
    predict = f'{selector}, endpoint="{contract.PREDICT}"'

    def increase(metric: str, by: str, where: str = selector) -> str:
        return f"sum by ({label}, {by}) (increase({metric}{{{where}}}[{window}]))"

    bins = contract.REFERENCE_BINS.name
    return {
        "requests": increase(contract.REQUESTS.total, "outcome", predict),
        "latency": increase(contract.REQUEST_DURATION.bucket, "le", predict),
        "scores": increase(contract.SCORE.bucket, "le"),
        "predictions": increase(contract.PREDICTIONS.total, "positive"),
        "features": increase(contract.FEATURE_BIN.total, "feature, bin"),
        "bins": f"max by ({label}, feature, bins) ({bins}{{{selector}}})",
        "feedback": increase(contract.FEEDBACK_ROWS.total, "cell"),
        "agreement": increase(contract.ANSWER_AGREEMENT.total, "agree"),
        "pairs": increase(contract.ANSWER_PAIRS.total, "order"),
    }


def covered_query(namespace: str, window: str) -> str:
    """Seconds of `window` that have request counts (a young deployment has less than the window):
    the plan divides by it, never by the whole window."""
    where = f'namespace="{namespace}", endpoint="{contract.PREDICT}"'
    series = f"sum({contract.REQUESTS.total}{{{where}}})"
    return f"time() - min_over_time(timestamp({series})[{window}:5s])"


def track_counts(answers: Mapping[str, Vector], track: str, *, label: str = TRACK) -> TrackCounts:
    """One track's counts from the answers to `step_queries` (missing series count as zero);
    `label` as the queries were grouped."""

    def rows(name: str) -> list[tuple[Mapping[str, str], float]]:
        found = []
        for sample in answers.get(name, ()):
            labels = sample.get("metric", {})
            if labels.get(label) == track:
                found.append((labels, sample_value(sample)))
        return found

    outcomes = rows("requests")
    features: dict[str, dict[str, float]] = {}
    for labels, value in rows("features"):
        features.setdefault(labels.get(FEATURE, ""), {})[labels.get(BIN, "")] = value
    predictions = rows("predictions")
    return TrackCounts(
        requests=sum(value for _, value in outcomes),
        server_errors=sum(v for labels, v in outcomes if labels.get(OUTCOME) == SERVER_ERROR),
        latency=cumulative_buckets(rows("latency")),
        scores=cumulative_buckets(rows("scores")),
        positive=sum(v for labels, v in predictions if labels.get(POSITIVE) == TRUE),
        predicted=sum(value for _, value in predictions),
        features=features,
        bins={labels.get(FEATURE, ""): labels.get(contract.BINS, "") for labels, _ in rows("bins")},
        cells={labels.get(CELL, ""): value for labels, value in rows("feedback")},
        agreement=_pair(rows("agreement"), AGREE, TRUE, FALSE),
        pairs=_pair(rows("pairs"), contract.ORDER, CONCORDANT, DISCORDANT),
    )


def _pair(
    rows: Sequence[tuple[Mapping[str, str], float]], label: str, first: str, second: str
) -> tuple[float, float]:
    counts = dict.fromkeys((first, second), 0.0)
    for labels, value in rows:
        if labels.get(label) in counts:
            counts[labels[label]] += value
    return counts[first], counts[second]

"""Reading Prometheus's answers (pure): instant vectors, scalars and cumulative buckets.

The canary judge and the drift monitor both read `increase()` answers the same way: a missing
or negative sample counts as zero, and buckets by `le` are made cumulative and monotone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

Sample: TypeAlias = Mapping[str, Any]
"""One sample as Prometheus's HTTP API returns it, {"metric": {...}, "value": [t, "v"]}: parsed
JSON whose fields are read defensively (a missing or malformed value counts as zero), so Any."""
Vector: TypeAlias = Sequence[Sample]
"""An instant vector: the samples of one answer."""


def increase_note(span: str) -> str:
    """What every count read with `increase()` over a `span` (a step, a window) is, said where
    counts are shown: Prometheus extrapolates each series' increase to the span's edges, so a
    count can be fractional and can move a little from one look at the same span to the next."""
    return (
        f"counts are Prometheus increase() over the {span}: extrapolated to its edges, so they "
        "can be fractional and move a little between looks"
    )


def scalar(vector: Vector) -> float:
    """The value of a one-element answer (0 when there is none)."""
    return sample_value(vector[0]) if vector else 0.0


def cumulative_buckets(
    rows: Sequence[tuple[Mapping[str, str], float]],
) -> tuple[tuple[float, float], ...]:
    """Cumulative buckets by `le`, summed over any other label, sorted by bound; counts made
    monotone (increase() extrapolates each bucket on its own, so neighbours can cross by a
    fraction)."""
    totals: dict[float, float] = {}
    for labels, value in rows:
        bound = float(labels.get("le", "nan"))
        if not math.isnan(bound):
            totals[bound] = totals.get(bound, 0.0) + value
    monotone, highest = [], 0.0
    for bound in sorted(totals):
        highest = max(highest, totals[bound])
        monotone.append((bound, highest))
    return tuple(monotone)


def sample_value(sample: Sample) -> float:
    """A sample's value; 0 for one that is missing, not finite or not positive."""
    try:
        value = float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0

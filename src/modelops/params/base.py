"""What the sections of `params.yaml` share: the frozen base model and durations.

Every model is frozen (params are read once, never changed) and forbids unknown keys, so a typo
is an error that names the key and the allowed ones instead of a knob silently ignored.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    """The base of every params model: immutable, and no key that is not declared."""

    model_config = ConfigDict(frozen=True, extra="forbid")


Duration: TypeAlias = Annotated[
    str,
    Field(
        pattern=r"^[1-9][0-9]*(m|h|d|w)$",
        description="A Prometheus duration in whole minutes, hours, days or weeks: 5m, 1h, 28d.",
    ),
]
StepDuration: TypeAlias = Annotated[
    str,
    Field(
        pattern=r"^[1-9][0-9]*(s|m|h|d|w)$",
        description="A duration in whole seconds, minutes, hours, days or weeks: 30s, 10m, 1d.",
    ),
]
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def duration_seconds(duration: str) -> int:
    """Seconds in a Duration or StepDuration such as `30s`, `1h` or `28d`."""
    return int(duration[:-1]) * _DURATION_SECONDS[duration[-1]]

"""What the sections of `params.yaml` share: the frozen base model, durations, Kubernetes names
and container resources (real-time and batch environments both size their containers).

Every model is frozen (params are read once, never changed) and forbids unknown keys, so a typo
is an error that names the key and the allowed ones instead of a knob silently ignored.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
"""A Kubernetes name that is one DNS label: a namespace, a Secret, an environment."""
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
"""A Kubernetes resource quantity: 250m, 1, 512Mi."""


class Frozen(BaseModel):
    """The base of every params model: immutable, and no key that is not declared."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ResourcesParams(Frozen):
    """Container requests and limits (Kubernetes quantities)."""

    cpu: str = Field("250m", pattern=QUANTITY)
    memory: str = Field("512Mi", pattern=QUANTITY)
    cpu_limit: str = Field("1", pattern=QUANTITY)
    memory_limit: str = Field("1Gi", pattern=QUANTITY)


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

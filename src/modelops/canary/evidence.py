"""What the canary judge reads (pure): each track's counts over a step, and the step itself.

`canary.queries` turns Prometheus's answers into these; `canary.criteria` tests them and
`canary.judge` decides. Counts scale (`TrackCounts.scaled`) so the judge and the plan can ask
what more traffic with the same shares would show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

"""The confusion-matrix cells feedback is counted in (`TrackCounts.cells`)."""


@dataclass(frozen=True)
class TrackCounts:
    """What one track did during the step, as the telemetry counted it."""

    requests: float = 0.0
    """Predict requests, every outcome."""
    server_errors: float = 0.0
    latency: tuple[tuple[float, float], ...] = ()
    """Predict latency histogram: (upper bound in seconds, cumulative count), +Inf last."""
    scores: tuple[tuple[float, float], ...] = ()
    """Positive-class score histogram on the server's fixed grid: (upper bound, cumulative)."""
    positive: float = 0.0
    predicted: float = 0.0
    """Rows predicted positive at the threshold, of all rows predicted."""
    features: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Rows per bin (label) per feature."""
    bins: Mapping[str, str] = field(default_factory=dict)
    """Each feature's bin definition (a fingerprint): features are compared bin by bin only
    when both tracks bin them the same way."""
    cells: Mapping[str, float] = field(default_factory=dict)
    """Feedback rows per confusion-matrix cell (true_positive, ...)."""
    agreement: tuple[float, float] = (0.0, 0.0)
    """Feedback rows whose class at the threshold agrees with the answer the client got, and
    rows that do not (for a shadow: against stable's answer)."""
    pairs: tuple[float, float] = (0.0, 0.0)
    """Concordant and discordant pairs of rows, this model's scores against the answer's."""

    def scaled(self, factor: float) -> TrackCounts:
        """The same shares with `factor` times the counts (what more traffic would show)."""
        return replace(
            self,
            requests=self.requests * factor,
            server_errors=self.server_errors * factor,
            latency=tuple((b, c * factor) for b, c in self.latency),
            scores=tuple((b, c * factor) for b, c in self.scores),
            positive=self.positive * factor,
            predicted=self.predicted * factor,
            features={
                name: {label: count * factor for label, count in bins.items()}
                for name, bins in self.features.items()
            },
            cells={cell: count * factor for cell, count in self.cells.items()},
            agreement=(self.agreement[0] * factor, self.agreement[1] * factor),
            pairs=(self.pairs[0] * factor, self.pairs[1] * factor),
        )

    @property
    def labels(self) -> float:
        return sum(self.cells.values())


@dataclass(frozen=True)
class Evidence:
    """Both tracks over the step, and the step itself."""

    canary: TrackCounts
    stable: TrackCounts
    step_seconds: float
    weight: int
    """The canary's share of traffic in this step, percent."""
    queries: Mapping[str, str] = field(default_factory=dict)
    """The PromQL each kind of count came from (shown beside each finding)."""
    shadow: bool = False
    """The new model is a shadow: it scored stable's very requests, so its answers are also
    compared row by row with stable's (from feedback that carries them)."""

"""The parity gate: the bundle's probabilities against the reference pipeline's, row by row."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# Rows of disagreement a parity report lists (their count is always complete).
SHOWN_DISAGREEMENTS = 5


@dataclass(frozen=True)
class Parity:
    """How far the bundle's scores are from the reference pipeline's, and the verdict."""

    rows: int
    test_rows: int
    edge_rows: int
    max_abs_diff: float
    mean_abs_diff: float
    worst_row: int
    disagreements: int
    disagreeing_rows: list[dict[str, Any]]
    tolerance: float
    threshold: float

    @property
    def passed(self) -> bool:
        """Within tolerance everywhere, and the same class at the threshold on every row."""
        return self.max_abs_diff <= self.tolerance and self.disagreements == 0

    def to_dict(self) -> dict[str, Any]:
        """`parity.json`."""
        return {**asdict(self), "passed": self.passed}

    def summary(self) -> str:
        """One line for the export's output and its refusal."""
        verdict = "pass" if self.passed else "FAIL"
        return (
            f"parity {verdict}: {self.rows} rows ({self.test_rows} test, {self.edge_rows} edge "
            f"cases), max |Δp| {self.max_abs_diff:.3g} (tolerance {self.tolerance:g}), mean "
            f"|Δp| {self.mean_abs_diff:.3g}, {self.disagreements} rows classed differently at "
            f"threshold {self.threshold:g}"
        )


def compare(
    bundle: npt.NDArray[np.float64],
    reference: npt.NDArray[np.float64],
    *,
    edge_rows: int,
    tolerance: float,
    threshold: float,
) -> Parity:
    """Parity of two probability vectors over the same rows (the last `edge_rows` edge cases)."""
    diff = np.abs(bundle - reference)
    differs = (bundle >= threshold) != (reference >= threshold)
    rows = np.flatnonzero(differs)
    shown = [
        {"row": int(row), "bundle": float(bundle[row]), "reference": float(reference[row])}
        for row in rows[:SHOWN_DISAGREEMENTS]
    ]
    return Parity(
        rows=len(diff),
        test_rows=len(diff) - edge_rows,
        edge_rows=edge_rows,
        max_abs_diff=float(diff.max()) if len(diff) else 0.0,
        mean_abs_diff=float(diff.mean()) if len(diff) else 0.0,
        worst_row=int(diff.argmax()) if len(diff) else -1,
        disagreements=len(rows),
        disagreeing_rows=shown,
        tolerance=tolerance,
        threshold=threshold,
    )

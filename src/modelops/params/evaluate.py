"""Section `evaluate`: the decision threshold, calibration and feature importance."""

from __future__ import annotations

from pydantic import Field

from modelops.params.base import Frozen


class EvaluateParams(Frozen):
    """Stage `evaluate`: metrics and plots on the test set."""

    threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="Positive-class probability at which we predict positive."
    )
    calibration_bins: int = Field(10, ge=2, le=100)
    importance_rows: int = Field(
        5000, ge=100, description="Test rows sampled for permutation feature importance."
    )
    importance_repeats: int = Field(5, ge=1, le=100)

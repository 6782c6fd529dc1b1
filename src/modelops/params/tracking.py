"""Section `tracking`: the MLflow experiment runs are logged to."""

from __future__ import annotations

from pydantic import Field

from modelops.params.base import Frozen


class TrackingParams(Frozen):
    """MLflow tracking. The server comes from MLFLOW_TRACKING_URI (default: local SQLite)."""

    experiment: str = Field("modelops", min_length=1)

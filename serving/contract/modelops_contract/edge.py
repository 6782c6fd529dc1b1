"""What a device of an edge environment reports: counts in the profile's bins, never raw rows.

A device keeps, since it installed its current bundle, how many rows it scored, how many it
predicted positive at the bundle's threshold, and how many fell in each bin of the reference
profile the bundle carries (per feature, and for the score), and pushes them to a Prometheus
Pushgateway with PUT under the grouping key job=`edge_job(<deploy.name>, <environment>)`,
device=<its device id>. Each push replaces that device's group; a device that lost its counts
(a restart, a new bundle) starts again from zero, which `increase()` reads as a counter reset.
Prometheus scrapes the Pushgateway with honor_labels, so `job` and `device` are the pushed ones;
readers sum over `device` and select the track a device runs (`stable` or `candidate`, as the
fleet manifest names them) and the bundle's model version.
"""

from __future__ import annotations

from typing import Final

from modelops_contract.fleet import F_CANDIDATE, F_STABLE
from modelops_contract.series import (
    BIN,
    FEATURE,
    MODEL_HASH,
    MODEL_VERSION,
    CounterSeries,
    GaugeSeries,
    Series,
)

DEVICE: Final = "device"
"""The grouping label of a device's push: its stable device id (the one its cohort is from)."""
TRACK: Final = "track"
"""Which bundle of the fleet manifest the device runs."""
TRACKS: Final = (F_STABLE, F_CANDIDATE)
BUNDLE: Final = "bundle"
"""The bundle archive's sha256, as the fleet manifest gives it."""


def edge_job(name: str, environment: str) -> str:
    """The `job` a device of `environment` pushes under (`deploy.name`-`environment`)."""
    return f"{name}-{environment}"


ROWS = CounterSeries(
    "modelops_edge_rows",
    "Rows a device scored with its current bundle",
    (MODEL_VERSION, TRACK),
)
POSITIVE_ROWS = CounterSeries(
    "modelops_edge_positive_rows",
    "Rows a device predicted positive at the bundle's threshold",
    (MODEL_VERSION, TRACK),
)
FEATURE_BIN = CounterSeries(
    "modelops_edge_feature_bin",
    "Rows a device scored per feature bin of the reference profile (profile.json)",
    (MODEL_VERSION, TRACK, FEATURE, BIN),
)
SCORE_BIN = CounterSeries(
    "modelops_edge_score_bin",
    "Rows a device scored per score bin of the reference profile",
    (MODEL_VERSION, TRACK, BIN),
)
BUNDLE_INFO = GaugeSeries(
    "modelops_edge_bundle_info",
    "The bundle a device runs (value 1): its model's content hash and the archive's sha256",
    (MODEL_VERSION, TRACK, MODEL_HASH, BUNDLE),
)
LAST_REPORT = GaugeSeries(
    "modelops_edge_last_report_timestamp_seconds",
    "When the device made this report (Unix seconds, the device's clock)",
    (MODEL_VERSION, TRACK),
)
SERIES: tuple[Series, ...] = (
    ROWS,
    POSITIVE_ROWS,
    FEATURE_BIN,
    SCORE_BIN,
    BUNDLE_INFO,
    LAST_REPORT,
)
"""Everything a device pushes."""

"""A batch run's output folder: the files beside the scores that the engine writes and readers
(`modelops score`, the monitor, people) open by name. Names starting with `_` are skipped by
Spark, pyarrow and pandas when they read the folder as a dataset.

A run also pushes its figures to a Prometheus Pushgateway: the series below."""

from __future__ import annotations

from modelops_contract.series import (
    BIN,
    FEATURE,
    MODEL_HASH,
    MODEL_VERSION,
    OUTCOME,
    REFERENCE_MISSING,
    REFERENCE_SCORE_SHARE,
    REFERENCE_SHARE,
    GaugeSeries,
    Series,
)

RECORD_FILE = "_run.json"
"""The run: model, input, rows in / scored / refused, timings, counts in the profile's bins."""
REFUSED_FILE = "_refused.parquet"
"""Rows the model could not take: the key column(s) and the reason."""
DRIFT_FILE = "_drift.json"
"""The run's drift, judged by `modelops score` against the reference profile."""
SHADOW_FILE = "_shadow.json"
"""In a candidate's output: the canary judge's verdict on its scores against stable's."""

# --- what a run pushes to a Prometheus Pushgateway ------------------------------------------------
# A run pushes these gauges under the grouping key job=<the batch objects' name>,
# namespace=<the environment's namespace> (`modelops-score --pushgateway`). A run that succeeds
# replaces the whole group; one that fails adds only its failure time, so the last good run's
# figures stay beside it. Prometheus scrapes the Pushgateway with honor_labels, so `job` and
# `namespace` are the pushed ones; the rules of a batch environment select on them.

ROWS_IN, ROWS_SCORED, ROWS_REFUSED = "in", "scored", "refused"
"""The `outcome` of modelops_batch_rows."""

LAST_SUCCESS = GaugeSeries(
    "modelops_batch_last_success_timestamp_seconds",
    "When the last successful run finished (Unix seconds)",
    (MODEL_VERSION,),
)
LAST_FAILURE = GaugeSeries(
    "modelops_batch_last_failure_timestamp_seconds",
    "When the last failed or interrupted run stopped (Unix seconds); absent after a success",
    (MODEL_VERSION,),
)
ROWS = GaugeSeries(
    "modelops_batch_rows",
    "Rows of the last successful run: read (in), scored, refused",
    (MODEL_VERSION, OUTCOME),
)
DURATION = GaugeSeries(
    "modelops_batch_duration_seconds",
    "How long the last successful run took, model loading included",
    (MODEL_VERSION,),
)
POSITIVE_RATE = GaugeSeries(
    "modelops_batch_positive_rate",
    "Share of the last successful run's rows predicted positive at the profile's threshold",
    (MODEL_VERSION,),
)
MODEL_INFO = GaugeSeries(
    "modelops_batch_model_info",
    "The model of the last successful run (value 1): its content hash",
    (MODEL_VERSION, MODEL_HASH),
)
FEATURE_BIN_ROWS = GaugeSeries(
    "modelops_batch_feature_bin_rows",
    "Rows of the last successful run per feature bin of the reference profile",
    (MODEL_VERSION, FEATURE, BIN),
)
SCORE_BIN_ROWS = GaugeSeries(
    "modelops_batch_score_bin_rows",
    "Rows of the last successful run per score bin of the reference profile",
    (MODEL_VERSION, BIN),
)
SERIES: tuple[Series, ...] = (
    LAST_SUCCESS,
    LAST_FAILURE,
    ROWS,
    DURATION,
    POSITIVE_RATE,
    MODEL_INFO,
    FEATURE_BIN_ROWS,
    SCORE_BIN_ROWS,
)
"""The batch run's own series."""
PUSHED: tuple[Series, ...] = (*SERIES, REFERENCE_SHARE, REFERENCE_MISSING, REFERENCE_SCORE_SHARE)
"""Everything a successful run pushes: its series and the profile's reference gauges (the
server's declarations), which its drift is judged against."""

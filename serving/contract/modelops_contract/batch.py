"""A batch run's output folder: the files beside the scores that the engine writes and readers
(`modelops score`, the monitor, people) open by name. Names starting with `_` are skipped by
Spark, pyarrow and pandas when they read the folder as a dataset."""

RECORD_FILE = "_run.json"
"""The run: model, input, rows in / scored / refused, timings, counts in the profile's bins."""
REFUSED_FILE = "_refused.parquet"
"""Rows the model could not take: the key column(s) and the reason."""
DRIFT_FILE = "_drift.json"
"""The run's drift, judged by `modelops score` against the reference profile."""

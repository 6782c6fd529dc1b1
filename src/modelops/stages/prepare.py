"""Stage `prepare`: load or generate the raw table, validate it against the schema, split it.

Writes `data/prepared/` (train.parquet, test.parquet, meta.json) and `metrics/data.json`, both at
once and only when every check passed. test.parquet also keeps the source's other columns for its
rows (never features): the champion gate scores a champion trained on them after a schema change.
"""

from __future__ import annotations

from pathlib import Path

from modelops import data
from modelops.io import bytes_writer, commit, json_bytes
from modelops.params import PrepareParams
from modelops.prepared import PrepareResult, dataset_writer
from modelops.sources import load_source


def run(params: PrepareParams, *, root: Path, out_dir: Path, metrics_file: Path) -> PrepareResult:
    """Load, validate and split the data, then write it (all outputs or none).

    Every problem of the data against `params.columns` is reported at once, in one `DataError`.
    """
    table = load_source(params, root=root)
    source = table.name
    resolved, frame = data.validate(table.frame, params.columns, source=source)
    schema_columns = list(frame.columns)
    # The test rows keep the source's other columns (dropped or unused ones): after a schema
    # change the champion is scored on the columns it was trained with, on the same rows.
    others = table.frame.loc[:, [c for c in table.frame.columns if c not in schema_columns]]
    train, test = data.split(
        frame.join(others.reset_index(drop=True)), resolved.schema, params.split
    )
    train = train.loc[:, schema_columns]
    label, positive = resolved.schema.label, resolved.schema.positive_label
    feature_cells = frame.loc[:, list(resolved.schema.features)]
    result = PrepareResult(
        source=source,
        schema=resolved.schema,
        data_hash=data.fingerprint(train, test.loc[:, schema_columns]),
        train_rows=len(train),
        test_rows=len(test),
        train_positive_rate=round(float((train[label] == positive).mean()), 6),
        test_positive_rate=round(float((test[label] == positive).mean()), 6),
        missing_fraction=round(float(feature_cells.isna().to_numpy().mean()), 6),
        notes=table.notes + resolved.notes,
    )

    commit(
        {
            out_dir: dataset_writer(train, test, result),
            metrics_file: bytes_writer(json_bytes(result.metrics())),
        }
    )
    return result

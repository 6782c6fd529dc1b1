"""Stage `prepare`: load or generate the raw table, validate it against the schema, split it.

Writes `data/prepared/` (train.parquet, test.parquet, meta.json) and `metrics/data.json`, both at
once and only when every check passed. test.parquet also keeps the source's other columns for its
rows (never features): the champion gate scores a champion trained on them after a schema change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pandas as pd

from modelops import data
from modelops.data import Schema
from modelops.errors import ModelopsError
from modelops.io import bytes_writer, commit, json_bytes
from modelops.params import PrepareParams
from modelops.sources import load_source

TRAIN_FILE = "train.parquet"
TEST_FILE = "test.parquet"
META_FILE = "meta.json"


@dataclass(frozen=True)
class PrepareResult:
    """What was prepared: provenance, schema and a data summary."""

    source: str
    schema: Schema
    data_hash: str
    train_rows: int
    test_rows: int
    train_positive_rate: float
    test_positive_rate: float
    missing_fraction: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored as `meta.json` beside the data."""
        return {
            "source": self.source,
            "schema": self.schema.to_dict(),
            "data_hash": self.data_hash,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "train_positive_rate": self.train_positive_rate,
            "test_positive_rate": self.test_positive_rate,
            "missing_fraction": self.missing_fraction,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        """Inverse of `to_dict`."""
        fields = {**raw, "schema": Schema.from_dict(raw["schema"]), "notes": tuple(raw["notes"])}
        return cls(**fields)

    def metrics(self) -> dict[str, Any]:
        """The data summary DVC tracks as metrics (`dvc metrics diff` shows its changes)."""
        return {
            "rows": {"train": self.train_rows, "test": self.test_rows},
            "positive_rate": {"train": self.train_positive_rate, "test": self.test_positive_rate},
            "features": {
                "categorical": len(self.schema.categorical),
                "numeric": len(self.schema.numeric),
            },
            "missing_fraction": self.missing_fraction,
        }


@dataclass(frozen=True)
class Prepared:
    """The prepared data as the later stages read it."""

    train: pd.DataFrame
    test: pd.DataFrame
    meta: PrepareResult

    @property
    def schema(self) -> Schema:
        return self.meta.schema


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

    def write_dataset(directory: Path) -> None:
        directory.mkdir()
        train.to_parquet(directory / TRAIN_FILE, index=False)
        test.to_parquet(directory / TEST_FILE, index=False)
        (directory / META_FILE).write_bytes(json_bytes(result.to_dict()))

    commit({out_dir: write_dataset, metrics_file: bytes_writer(json_bytes(result.metrics()))})
    return result


def load_meta(directory: Path) -> PrepareResult:
    """What `run` recorded about the data (its schema among it), without reading the tables."""
    meta_file = directory / META_FILE
    if not meta_file.is_file():
        raise ModelopsError(f"{directory}: no prepared data; run `dvc repro prepare` first")
    return PrepareResult.from_dict(json.loads(meta_file.read_text(encoding="utf-8")))


def load_prepared(directory: Path) -> Prepared:
    """Read what `run` wrote; a clear error if it is not there."""
    meta = load_meta(directory)
    return Prepared(
        train=pd.read_parquet(directory / TRAIN_FILE),
        test=pd.read_parquet(directory / TEST_FILE),
        meta=meta,
    )

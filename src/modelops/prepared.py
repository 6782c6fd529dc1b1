"""The prepared data's format: `data/prepared/` (train.parquet, test.parquet, meta.json).

The prepare stage writes it; training, evaluation, the gates, the monitor and the rehearsal read
it. test.parquet also keeps the source's other columns for its rows (never features): the
champion gate scores a champion trained on them after a schema change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Self, TypedDict

import pandas as pd

from modelops.data import Schema
from modelops.errors import ModelopsError
from modelops.io import JSONObject, Nested, Writer, json_bytes

TRAIN_FILE = "train.parquet"
TEST_FILE = "test.parquet"
META_FILE = "meta.json"


class MetaDocument(TypedDict):
    """`meta.json`: a `PrepareResult` in JSON."""

    source: str
    schema: dict[str, object]
    """`Schema.to_dict`."""
    data_hash: str
    train_rows: int
    test_rows: int
    train_positive_rate: float
    test_positive_rate: float
    missing_fraction: float
    notes: list[str]


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

    def to_dict(self) -> MetaDocument:
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
    def from_dict(cls, raw: JSONObject) -> Self:
        """Inverse of `to_dict`, from meta.json as parsed (its keys become the fields)."""
        fields = {**raw, "schema": Schema.from_dict(raw["schema"]), "notes": tuple(raw["notes"])}
        return cls(**fields)

    def metrics(self) -> Nested[float]:
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


def dataset_writer(train: pd.DataFrame, test: pd.DataFrame, meta: PrepareResult) -> Writer:
    """Write the prepared folder (for `io.commit`: into a new folder, renamed into place)."""

    def write(directory: Path) -> None:
        directory.mkdir()
        train.to_parquet(directory / TRAIN_FILE, index=False)
        test.to_parquet(directory / TEST_FILE, index=False)
        (directory / META_FILE).write_bytes(json_bytes(meta.to_dict()))

    return write


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

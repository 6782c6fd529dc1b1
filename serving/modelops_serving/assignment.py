"""What a server running an A/B experiment does with a request's rows, before any model.

- `split_fields`: the unit and covariate columns taken out of a request, so that each model
  gets exactly its inputs (a field that is also a model input stays one);
- `assign_rows`: each row's variant by its unit (`modelops_contract.experiment`); a row
  without a unit goes to stable and is counted apart; a unit that is not a string or a number,
  or a covariate that is not a number, is refused naming the row;
- `UnitMemory`: the units a process saw lately, so each is counted once per process.

Pure: numpy and the contract, no seldon-core, so the pipeline's tests run it in process.
"""

from __future__ import annotations

import math
import os
import threading
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from modelops_contract import Experiment, UnitError, unit_text
from modelops_contract.experiment import unit_digest

from modelops_serving import quote
from modelops_serving.validation import SELDON, Fields, RequestError

UNIT_COLUMN = "\0unit"
"""Where a prediction id's digest holds each row's unit (its canonical text)."""
COVARIATE_COLUMN = "\0covariate"
"""Where a prediction id's digest holds each row's covariate."""


@dataclass(frozen=True)
class Extras:
    """The values of the experiment's request fields, row by row (None: the field is absent)."""

    units: list[Any] | None = None
    covariates: list[Any] | None = None


def split_fields(
    payload: Any,
    experiment: Experiment,
    inputs: frozenset[str],
    *,
    max_rows: int,
    fields: Fields = SELDON,
) -> tuple[Any, Extras]:
    """The request as the models take it, and its unit and covariate values.

    The fields are found by name only: a request without `data.names` has no unit (its rows
    go to stable). A request this cannot read is returned as it is, for `to_batch` to refuse.
    """
    data = payload.get("data") if isinstance(payload, dict) else None
    names = data.get("names") if isinstance(data, dict) else None
    rows = data.get("ndarray") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(names, list) or not isinstance(rows, list):
        return payload, Extras()
    if not 0 < len(rows) <= max_rows:
        return payload, Extras()
    named = [f for f in (experiment.unit, experiment.covariate) if f is not None and f in names]
    if not named:
        return payload, Extras()
    for field in named:
        if names.count(field) > 1:
            raise RequestError(
                f"{fields.names} repeats {quote.name(field)}: name each field once",
                reason="repeated_name",
            )
    width = len(names)
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            size = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise RequestError(
                f"{fields.row(index)} has {size}; each row needs {width} values, one per "
                f"name of {fields.names}",
                reason="wrong_row_length",
            )
    where = {field: names.index(field) for field in named}
    extras = Extras(
        units=[row[where[experiment.unit]] for row in rows] if experiment.unit in where else None,
        covariates=(
            [row[where[experiment.covariate]] for row in rows]
            if experiment.covariate in where
            else None
        ),
    )
    dropped = {where[field] for field in named if field not in inputs}
    if not dropped:
        return payload, extras
    keep = [index for index in range(width) if index not in dropped]
    if keep == list(range(len(keep))):  # the fields came last: a slice per row
        kept_rows = [row[: len(keep)] for row in rows]
    else:
        kept_rows = [[row[index] for index in keep] for row in rows]
    kept = {**data, "names": [names[index] for index in keep], "ndarray": kept_rows}
    return {**payload, "data": kept}, extras


@dataclass(frozen=True)
class Rows:
    """Each row's variant (its index in `experiment.variants`), unit and covariate."""

    positions: npt.NDArray[np.intp]
    assigned: npt.NDArray[np.bool_]
    """Whether the row had a unit (a row without one goes to stable)."""
    texts: list[str | None]
    """Each row's unit, as its canonical text (what its prediction id covers)."""
    units: list[tuple[int, int]]
    """(variant index, `unit_key`) of each row with a unit."""
    covariates: npt.NDArray[np.float64] | None
    """Each row's covariate (NaN: none); None when the request has no covariate field."""

    def groups(self) -> list[tuple[int, npt.NDArray[np.intp] | None]]:
        """(variant index, its rows) for each variant with rows; None: every row."""
        present = np.unique(self.positions).tolist()
        if len(present) == 1:
            return [(int(present[0]), None)]
        return [(int(i), np.flatnonzero(self.positions == i)) for i in present]

    def signed(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        """What a prediction id covers: the model's inputs, each row's unit and covariate, so
        feedback cannot move a row to another variant."""
        signed = {**columns, UNIT_COLUMN: self.texts}
        if self.covariates is not None:
            signed[COVARIATE_COLUMN] = self.covariates
        return signed


def assign_rows(
    experiment: Experiment, extras: Extras, *, rows: int, fields: Fields = SELDON
) -> Rows:
    """Each row's variant; refuses a unit that is not a string or a number, and a covariate
    that is not a number, naming the row."""
    control = experiment.position(experiment.control.name)
    positions = [control] * rows
    texts: list[str | None] = [None] * rows
    units: list[tuple[int, int]] = []
    for index, value in enumerate(extras.units or ()):
        try:
            text = unit_text(value)
        except UnitError as exc:
            raise RequestError(
                f"{fields.value(index, experiment.unit)} is "
                f"{quote.excerpt(value)}: {exc}. Send the unit's id, a string or a number, or "
                "null for none",
                reason="unsupported_unit",
            ) from None
        if text is None:
            continue
        digest = unit_digest(text, salt=experiment.salt)
        position = experiment.position_of(digest)
        positions[index], texts[index] = position, text
        units.append((position, unit_key(digest)))
    return Rows(
        positions=np.array(positions, dtype=np.intp),
        assigned=np.array([text is not None for text in texts], dtype=bool),
        texts=texts,
        units=units,
        covariates=(None if extras.covariates is None else _covariates(experiment, extras, fields)),
    )


def _covariates(experiment: Experiment, extras: Extras, fields: Fields) -> npt.NDArray[np.float64]:
    values = []
    for index, value in enumerate(extras.covariates or ()):
        if value is None:
            values.append(math.nan)
        elif (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ):
            values.append(float(value))
        else:
            assert experiment.covariate is not None  # there are covariates
            raise RequestError(
                f"{fields.value(index, experiment.covariate)} is "
                f"{quote.excerpt(value)}: the covariate is a number (the unit's value before the "
                "experiment), or null for none",
                reason="covariate_not_a_number",
            )
    return np.array(values, dtype=np.float64)


def subset(columns: Mapping[str, Any], chosen: npt.NDArray[np.intp] | None) -> Mapping[str, Any]:
    """The chosen rows of columns (numbers as arrays, text as lists); None: all of them."""
    if chosen is None:
        return columns
    picked = chosen.tolist()
    return {
        name: values[chosen] if isinstance(values, np.ndarray) else [values[i] for i in picked]
        for name, values in columns.items()
    }


def extra_fields(experiment: Experiment, inputs: frozenset[str]) -> int:
    """How many of the experiment's request fields are not model inputs (the body limit makes
    room for them)."""
    return len({experiment.unit, experiment.covariate} - {None} - inputs)


class UnitMemory:
    """The units this process saw lately, as 8-byte digests: about a million in 8 MiB.

    A set-associative LRU: a digest belongs to one of `SETS` sets of `WAYS` slots, most
    recently seen first; a unit is forgotten once `WAYS` more recently seen units share its
    set. A dict of a million digests would take about 100 MB in every worker.
    """

    SETS = 65536
    WAYS = 16

    def __init__(self, *, sets: int = SETS, ways: int = WAYS) -> None:
        self._sets, self._ways = sets, ways
        self._table: array[int] | None = None  # made in the process that uses it
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._sets * self._ways

    def first_time(self, key: int) -> bool:
        """Remember a unit (its 64-bit key); True when this process did not remember it."""
        key = key or 1  # 0 marks an empty slot
        ways = self._ways
        with self._lock:
            if self._pid != os.getpid():  # a fork's copy is the parent's memory, not ours
                self._table, self._pid = array("Q", bytes(8 * self.capacity)), os.getpid()
            table = self._table
            assert table is not None
            start = (key % self._sets) * ways
            slots = table[start : start + ways]
            try:
                found = slots.index(key)
            except ValueError:
                found = ways - 1  # the least recently seen goes
                new = True
            else:
                new = False
            table[start + 1 : start + found + 1] = slots[:found]
            table[start] = key
            return new


def unit_key(digest: bytes) -> int:
    """A unit's key in `UnitMemory`: 8 bytes of its digest past the 8 its bucket comes from."""
    return int.from_bytes(digest[8:16], "big")

"""A text column as codes into its distinct values, so per-value work is done once per value.

A batch reads text columns from Arrow, which encodes a column as a dictionary in one pass
(`pyarrow.compute.dictionary_encode`); the category lookups that score a row and bin it for
drift then cost one hash lookup per distinct value (a few) instead of one per row (100,000),
and no Python object is made per row. The server's requests keep plain sequences: every reader
takes either (`plain` turns this into one).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CodedText:
    """Rows as positions in `values` (-1: missing), and the distinct values they name."""

    codes: npt.NDArray[np.int32]
    values: npt.NDArray[np.object_]
    """Distinct strings, none missing."""

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, rows: npt.NDArray[np.bool_]) -> CodedText:
        """The rows a mask keeps, over the same values."""
        return CodedText(self.codes[rows], self.values)

    def __iter__(self) -> Iterator[str | None]:
        return iter(self.objects().tolist())

    def looked_up(self, found: npt.NDArray[Any], missing: Any) -> npt.NDArray[Any]:
        """Each row's entry of `found` (one per distinct value), `missing` for a missing row."""
        table = np.append(found, np.asarray([missing], dtype=found.dtype))
        result: npt.NDArray[Any] = table[self.codes]  # -1 reads the last entry: missing
        return result

    def objects(self) -> npt.NDArray[np.object_]:
        """The column as Python strings, None for missing."""
        return self.looked_up(self.values, None)


def plain(column: Any) -> Any:
    """`column` as a sequence of values: a CodedText's strings, anything else as it is."""
    return column.objects() if isinstance(column, CodedText) else column

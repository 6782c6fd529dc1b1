"""Deepchecks checks whose results we keep but whose loops we replace with column operations.

Deepchecks finds identical rows by aggregating every group of identical rows into Python lists
and walking them one by one: on 16,000 training rows ConflictingLabels spends 3.5 s there and
TrainTestSamplesMix 2 s, most of a data gate's time. These subclasses (same names, so reports
read the same) give each row its group's number with one `groupby().ngroup()` over factorised
columns and count in NumPy; the value and the HTML display are built from the (few) groups
that matter. Same inputs, same value:
tests/gates/test_vectorised.py compares each with Deepchecks' own on tables with missing values,
categories, mixed types and no duplicates at all.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from deepchecks.core import CheckResult
from deepchecks.tabular import Context, Dataset, checks
from deepchecks.utils.strings import format_list, format_percent

_ROWS_SHOWN = "Instances"
_LABELS_SHOWN = "Observed Labels"


def row_groups(frame: pd.DataFrame, columns: Sequence[Hashable]) -> npt.NDArray[np.int64]:
    """Each row's group of identical values in `columns` (missing values equal each other)."""
    if not columns:
        return np.zeros(len(frame), dtype=np.int64)
    codes = pd.DataFrame(
        {
            i: pd.factorize(frame[column], use_na_sentinel=False)[0]
            for i, column in enumerate(columns)
        }
    )
    groups = codes.groupby(list(codes.columns), sort=False).ngroup()
    return np.asarray(groups, dtype=np.int64)


def _largest_first(groups: npt.NDArray[np.int64], chosen: npt.NDArray[np.bool_]) -> list[int]:
    """The chosen groups by size, largest first; equal sizes in order of first appearance."""
    sizes = np.bincount(groups)
    ids = np.flatnonzero(chosen)
    first_row = np.full(len(sizes), len(groups))
    np.minimum.at(first_row, groups, np.arange(len(groups)))
    order = np.lexsort((first_row[ids], -sizes[ids]))
    return [int(group) for group in ids[order]]


class ConflictingLabels(checks.ConflictingLabels):  # type: ignore[misc]
    """ConflictingLabels: the share of rows whose identical features carry different labels."""

    def run_logic(self, context: Context, dataset_kind: object) -> CheckResult:
        context.assert_classification_task()
        dataset: Dataset = context.get_data_by_kind(dataset_kind)
        dataset = dataset.sample(self.n_samples, random_state=self.random_state).select(
            self.columns, self.ignore_columns, keep_label=True
        )
        frame, features = dataset.data, list(dataset.features)
        groups = row_groups(frame, features)
        labels = pd.factorize(frame[dataset.label_name], use_na_sentinel=False)[0]
        kinds = pd.Series(labels).groupby(groups).nunique().to_numpy()
        conflicting = _largest_first(groups, kinds > 1)
        members = [np.flatnonzero(groups == group) for group in conflicting]
        rows = int(sum(len(m) for m in members))
        samples = [frame.index[m].tolist() for m in members]
        display = None
        if context.with_display and samples:
            shown = []
            for positions, indices in zip(members[: self.n_to_show], samples, strict=False):
                first = frame.iloc[positions[0]]
                record: dict[object, object] = {feature: first[feature] for feature in features}
                record[_LABELS_SHOWN] = tuple(
                    sorted(set(frame[dataset.label_name].iloc[positions]), key=str)
                )
                record[_ROWS_SHOWN] = format_list(indices)
                shown.append(record)
            table = pd.DataFrame.from_records(shown).set_index([_LABELS_SHOWN, _ROWS_SHOWN])
            display = [
                "Each row of the table is a set of identical feature values and the labels they "
                f"were observed with. Showing top {len(shown)} of {len(samples)}",
                table,
            ]
        value = {
            "percent_of_conflicting_samples": rows / dataset.n_samples,
            "samples_indices": samples,
        }
        return CheckResult(value=value, display=display)


class TrainTestSamplesMix(checks.TrainTestSamplesMix):  # type: ignore[misc]
    """TrainTestSamplesMix: the share of test rows (features and label) also found in train."""

    def run_logic(self, context: Context) -> CheckResult:
        test = context.test.sample(self.n_samples, random_state=self.random_state)
        train = context.train.sample(self.n_samples, random_state=self.random_state)
        train.assert_features()
        test.assert_features()
        columns = list(test.features) + ([test.label_name] if test.has_label() else [])
        both = pd.concat([train.data[columns], test.data[columns]], ignore_index=True)
        groups = row_groups(both, columns)
        in_train = np.zeros(int(groups.max(initial=-1)) + 1, dtype=bool)
        in_train[groups[: train.n_samples]] = True
        test_groups = groups[train.n_samples :]
        mixed = in_train[test_groups]
        ratio = float(mixed.sum()) / test.n_samples
        index = train.data.index.append(test.data.index)
        duplicates = _shared_groups(both, index, columns, groups, train.n_samples, mixed)
        display = None
        if context.with_display and ratio:
            message = (
                f"{format_percent(ratio)} ({int(mixed.sum())} / {test.n_samples}) of test data "
                "samples appear in train data"
            )
            display = [message, duplicates.head(self.n_to_show)]
        return CheckResult(
            {"ratio": ratio, "data": duplicates}, header="Train Test Samples Mix", display=display
        )


def _shared_groups(
    both: pd.DataFrame,
    index: pd.Index,
    columns: list[Hashable],
    groups: npt.NDArray[np.int64],
    train_rows: int,
    mixed: npt.NDArray[np.bool_],
) -> pd.DataFrame:
    """One row per group of values found in both sets, most test rows first: the values, named
    by the train and test indices that hold them."""
    test_counts = np.bincount(groups[train_rows:], minlength=int(groups.max(initial=-1)) + 1)
    shared = np.unique(groups[train_rows:][mixed])
    records, names = [], []
    for group in sorted(shared.tolist(), key=lambda g: -test_counts[g]):
        positions = np.flatnonzero(groups == group)
        in_train, in_test = positions[positions < train_rows], positions[positions >= train_rows]
        names.append(f"{_indices('Train', index[in_train])}\n{_indices('Test', index[in_test])}")
        records.append(list(both.iloc[positions[0]][columns]))
    return pd.DataFrame(records, index=names, columns=columns)


def _indices(kind: str, labels: pd.Index) -> str:
    text = ", ".join(str(label) for label in labels)
    return f"{kind} indices: {text if len(text) <= 30 else f'{text[:30]}.. Tot. {len(labels)}'}"

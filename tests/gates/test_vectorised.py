"""The vectorised checks give Deepchecks' own values (in process, real Deepchecks, no pipeline).

Tables with repeated rows, missing values (which equal each other), categories, text, an
integer column with gaps and a label that is text: the value each gate judges must not move.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from deepchecks.tabular import Dataset, checks

from modelops.gates import vectorised
from modelops.gates.vectorised import row_groups


def _table(rows: int, seed: int) -> pd.DataFrame:
    """Few distinct values per column, so identical rows (and conflicting labels) are common."""
    rng = np.random.default_rng(seed)

    def drawn(*values: object) -> np.ndarray:
        return rng.choice(np.array(values, dtype=object), rows)

    table = pd.DataFrame(
        {
            "amount": rng.choice([1.5, 2.5, np.nan], rows),
            "visits": pd.array(list(drawn(1, 2, None)), dtype="Int64"),
            "city": pd.Categorical(drawn("north", "south", None)),
            "note": drawn("a", "b", None),
            "label": rng.choice(["yes", "no"], rows, p=[0.3, 0.7]),
        }
    )
    table.index = table.index * 3 + 5  # labels that are not positions
    return table


def _dataset(table: pd.DataFrame) -> Dataset:
    return Dataset(table, label="label", cat_features=["city", "note"])


@pytest.mark.parametrize(("rows", "seed"), [(40, 1), (400, 2), (2_000, 3)])
def test_conflicting_labels_counts_the_rows_deepchecks_counts(rows: int, seed: int) -> None:
    dataset = _dataset(_table(rows, seed))
    theirs = checks.ConflictingLabels().run(dataset, with_display=False).value
    ours = vectorised.ConflictingLabels().run(dataset).value
    assert ours["percent_of_conflicting_samples"] == theirs["percent_of_conflicting_samples"]
    assert ours["percent_of_conflicting_samples"] > 0
    assert sorted(map(sorted, ours["samples_indices"])) == sorted(
        map(sorted, theirs["samples_indices"])
    )
    sizes = [len(indices) for indices in ours["samples_indices"]]
    assert sizes == sorted(sizes, reverse=True), "largest groups first, as Deepchecks shows them"


def test_conflicting_labels_on_distinct_rows_is_zero_and_shows_nothing() -> None:
    table = pd.DataFrame({"x": np.arange(50.0), "label": [0, 1] * 25})
    result = vectorised.ConflictingLabels().run(Dataset(table, label="label", cat_features=[]))
    assert result.value == {"percent_of_conflicting_samples": 0.0, "samples_indices": []}
    assert not result.display


def test_conflicting_labels_display_names_the_values_labels_and_rows() -> None:
    table = pd.DataFrame({"x": [1.0, 1.0, 2.0, 3.0, 3.0, 3.0], "label": [0, 1, 0, 0, 1, 1]})
    result = vectorised.ConflictingLabels().run(Dataset(table, label="label", cat_features=[]))
    assert [sorted(rows) for rows in result.value["samples_indices"]] == [[3, 4, 5], [0, 1]]
    shown = result.display[1].reset_index()
    assert shown["x"].tolist() == [3.0, 1.0]
    assert shown["Observed Labels"].tolist() == [(0, 1), (0, 1)]


@pytest.mark.parametrize(("rows", "seed"), [(40, 4), (400, 5), (2_000, 6)])
def test_samples_mix_finds_the_share_of_test_rows_deepchecks_finds(rows: int, seed: int) -> None:
    train, test = _dataset(_table(rows, seed)), _dataset(_table(rows // 4, seed + 100))
    with warnings.catch_warnings():  # pandas' FutureWarning on grouping by a category
        warnings.simplefilter("ignore", FutureWarning)
        theirs = checks.TrainTestSamplesMix().run(train, test, with_display=False).value
    ours = vectorised.TrainTestSamplesMix().run(train, test).value
    assert ours["ratio"] == theirs["ratio"]
    assert ours["ratio"] > 0
    assert len(ours["data"]) == len(theirs["data"])
    assert sorted(ours["data"].index) == sorted(theirs["data"].index)


def test_samples_mix_of_disjoint_sets_is_zero() -> None:
    train = pd.DataFrame({"x": np.arange(30.0), "label": [0, 1] * 15})
    test = pd.DataFrame({"x": np.arange(30.0, 40.0), "label": [0, 1] * 5})
    result = vectorised.TrainTestSamplesMix().run(
        Dataset(train, label="label", cat_features=[]),
        Dataset(test, label="label", cat_features=[]),
    )
    assert result.value["ratio"] == 0
    assert result.value["data"].empty


def test_row_groups_treat_missing_values_as_equal_and_types_as_pandas_does() -> None:
    frame = pd.DataFrame({"a": [np.nan, np.nan, 1.0, 1.0], "b": ["x", "x", None, None]})
    assert row_groups(frame, ["a", "b"]).tolist() == [0, 0, 1, 1]
    assert row_groups(frame, []).tolist() == [0, 0, 0, 0]

"""Text columns read by a batch are dictionary-encoded (`modelops_serving.coded`): the scores and
the drift bins they give are the ones the same values give as plain strings, as the server
reads them, missing values, unseen categories and empty dictionaries included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from modelops_serving.artifact import read_artifact
from modelops_serving.coded import CodedText, plain
from modelops_serving.loaded import load_model
from modelops_serving.profile import parse_profile
from modelops_serving.tables import model_columns


def _batch(model_dir: Path, rows: int, seed: int) -> pa.RecordBatch:
    """Rows of every input, text drawn from known, unseen and missing values."""
    artifact = read_artifact(model_dir)
    profile = parse_profile(artifact.profile_bytes or b"", where=str(model_dir))
    generator = np.random.default_rng(seed)
    known = {feature.name: list(feature.categories) for feature in profile.categorical}
    columns = {}
    for column in artifact.columns:
        if column.kind == "number":
            numbers = generator.normal(10, 5, rows)
            numbers[generator.random(rows) < 0.1] = np.nan
            columns[column.name] = pa.array(numbers, pa.float64())
        else:
            choices = [*known.get(column.name, ["a"]), "never seen", None]
            picked = [choices[i] for i in generator.integers(0, len(choices), rows)]
            columns[column.name] = pa.array(picked, pa.string())
    return pa.RecordBatch.from_pydict(columns)


@pytest.mark.parametrize("rows", [3, 600, 5000])
def test_coded_text_scores_and_bins_as_plain_strings_do(model_dir: Path, rows: int) -> None:
    artifact = read_artifact(model_dir)
    model = load_model(artifact)
    profile = parse_profile(artifact.profile_bytes or b"", where=str(model_dir))
    values, _ = model_columns(_batch(model_dir, rows, seed=rows), artifact.columns)
    coded = [name for name, column in values.items() if isinstance(column, CodedText)]
    assert coded, "the text inputs are coded"
    strings = {name: plain(column) for name, column in values.items()}
    assert np.array_equal(model.positive_scores(values), model.positive_scores(strings))
    for feature in profile.features:
        assert np.array_equal(
            feature.counts(values[feature.name]), feature.counts(strings[feature.name])
        ), feature.name


def test_a_column_of_missing_values_only_has_an_empty_dictionary(model_dir: Path) -> None:
    artifact = read_artifact(model_dir)
    profile = parse_profile(artifact.profile_bytes or b"", where=str(model_dir))
    feature = profile.categorical[0]
    column = CodedText(np.full(700, -1, dtype=np.int32), np.array([], dtype=object))
    assert column.objects().tolist() == [None] * 700
    counts = feature.counts(column)
    assert counts[-1] == 700, "all in the missing bin"
    assert counts.sum() == 700
    kept = column[np.arange(700) < 10]
    assert len(kept) == 10
    assert list(kept) == [None] * 10

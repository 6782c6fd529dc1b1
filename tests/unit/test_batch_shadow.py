"""Shadow comparison of two batch runs (`modelops.batch.shadow`): pairing rows, counting them
as the canary judge counts a track, and Kendall's pairs, against brute force."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops.batch.shadow import ScoredRun, kendall_pairs, paired_scores, track_counts
from modelops.errors import BatchError


def _run(keys: list[int], scores: list[float], key: str = "id") -> ScoredRun:
    frame = pd.DataFrame({key: keys, "score": scores})
    return ScoredRun(Path("out"), [key], 0.5, "hash", frame)


def test_runs_of_the_same_rows_pair_in_order() -> None:
    ours, theirs = paired_scores(_run([1, 2, 3], [0.1, 0.2, 0.3]), _run([1, 2, 3], [0.3, 0.2, 0.1]))
    assert ours.tolist() == [0.1, 0.2, 0.3]
    assert theirs.tolist() == [0.3, 0.2, 0.1]


def test_rows_refused_by_one_model_only_are_left_out_by_key() -> None:
    ours, theirs = paired_scores(_run([1, 2, 3], [0.1, 0.2, 0.3]), _run([1, 3], [0.5, 0.7]))
    assert ours.tolist() == [0.1, 0.3]
    assert theirs.tolist() == [0.5, 0.7]


def test_repeated_keys_or_other_keys_cannot_be_paired() -> None:
    with pytest.raises(BatchError, match="give --id-column a unique key"):
        paired_scores(_run([1, 1, 2], [0.1, 0.2, 0.3]), _run([1, 2], [0.5, 0.7]))
    with pytest.raises(BatchError, match="keyed differently"):
        paired_scores(_run([1], [0.1]), _run([1], [0.1], key="row"))


@pytest.mark.parametrize("seed", range(5))
def test_kendall_pairs_match_brute_force_without_ties(seed: int) -> None:
    generator = np.random.default_rng(seed)
    first = generator.random(40)
    second = first + generator.normal(0, 0.3, 40)
    concordant = discordant = 0
    for i, j in itertools.combinations(range(40), 2):
        sign = np.sign(first[i] - first[j]) * np.sign(second[i] - second[j])
        concordant += sign > 0
        discordant += sign < 0
    assert kendall_pairs(first, second) == pytest.approx((concordant, discordant))


def test_a_constant_score_orders_no_pair() -> None:
    assert kendall_pairs(np.full(5, 0.5), np.arange(5.0)) == (0.0, 0.0)
    assert kendall_pairs(np.array([0.5]), np.array([0.5])) == (0.0, 0.0)


def test_track_counts_are_a_cumulative_score_histogram_and_positives_at_the_threshold() -> None:
    counts = track_counts(np.array([0.0, 0.05, 0.051, 0.5, 1.0]), 0.5)
    histogram = dict(counts.scores)
    assert histogram[0.05] == 2, "upper bounds included"
    assert histogram[0.1] == 3
    assert histogram[1.0] == 5
    assert (counts.positive, counts.predicted, counts.requests) == (2, 5, 5), ">= threshold"

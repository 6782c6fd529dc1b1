"""The server's binning and aggregation functions, without a server.

`modelops_serving.profile` needs only numpy, so it is tested here in the pipeline's environment
against the pipeline's own definition of the bins (`modelops.telemetry.profile`). What needs
prometheus_client 0.8 (the bulk histogram update) or seldon-core runs in the serving
environment, in a subprocess, since the pipeline's environment has neither of those versions.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
from modelops_contract import MISSING, OTHER, UNSEEN
from modelops_serving.profile import (
    CategoricalBins,
    NumericBins,
    ProfileError,
    parse_profile,
    score_buckets,
)

from modelops.telemetry.profile import bin_index
from tests.serving.conftest import SERVING_BIN

CUTS = (0.5, 1.0, 2.0, 7.25)


@pytest.mark.parametrize("rows", [1, 5, 15, 16, 200], ids=lambda n: f"{n}-rows")
def test_numeric_bins_are_the_pipelines_bins_on_either_path(rows: int) -> None:
    """Below 16 rows the counts are made in plain Python, from 16 with numpy: same bins."""
    randomness = np.random.default_rng(rows)
    values = randomness.choice([*CUTS, -3.0, 0.75, 1.5, 9.0, np.nan, 2.0000001], size=rows)
    bins = NumericBins("x", CUTS)
    counts = bins.counts(values.astype(np.float64))
    assert bins.nonzero(values) == [(i, c) for i, c in enumerate(counts.tolist()) if c]
    known = values[~np.isnan(values)]
    expected = np.bincount(bin_index(CUTS, known), minlength=len(CUTS) + 1)
    assert counts[:-1].tolist() == expected.tolist()
    assert counts[-1] == np.isnan(values).sum()
    assert bins.labels == ("b00", "b01", "b02", "b03", "b04", MISSING)


def test_a_value_on_a_cut_is_in_the_bin_the_cut_closes() -> None:
    bins = NumericBins("x", CUTS)
    assert bins.counts(np.array([0.5])).tolist() == [1, 0, 0, 0, 0, 0]
    assert bins.counts(np.array([7.25] * 20)).tolist() == [0, 0, 0, 20, 0, 0]
    assert bins.counts(np.array([7.2500001])).tolist() == [0, 0, 0, 0, 1, 0]


@pytest.mark.parametrize("repeat", [1, 10], ids=["python", "numpy"])
def test_categorical_bins_name_top_other_unseen_and_missing(repeat: int) -> None:
    bins = CategoricalBins("plan", ("basic", "premium"), frozenset({"legacy"}))
    values = ["basic", "legacy", "gold", None, "premium", "basic"] * repeat
    assert bins.labels == ("basic", "premium", OTHER, UNSEEN, MISSING)
    assert bins.counts(values).tolist() == [2 * repeat, repeat, repeat, repeat, repeat]


@pytest.mark.parametrize("repeat", [1, 3], ids=["python", "numpy"])
def test_score_buckets_count_like_le_buckets(repeat: int) -> None:
    scores = np.array([0.0, 0.5, 0.5000001, 1.0, 7.25, 100.0] * repeat)
    assert score_buckets(CUTS, scores) == [
        (0, 2 * repeat),
        (1, 2 * repeat),
        (3, repeat),
        (4, repeat),
    ]


def test_the_trained_models_profile_parses(model_dir: Path) -> None:
    raw = (model_dir / "profile.json").read_bytes()
    profile = parse_profile(raw, where="profile.json")
    loaded = json.loads(raw)
    assert [b.name for b in profile.numeric] == [n["name"] for n in loaded["numeric"]]
    assert profile.score_cuts == tuple(loaded["score"]["cuts"])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "not a reference profile (JSONDecodeError"),
        (b'{"numeric": []}', "not a reference profile (KeyError: 'categorical')"),
        (
            b'{"numeric": [{"name": "x", "cuts": [2, 1]}], "categorical": [], '
            b'"score": {"cuts": [], "threshold": 0.5}}',
            "the numeric x cuts must be finite and strictly increasing",
        ),
    ],
)
def test_a_broken_profile_is_refused_with_where_and_why(raw: bytes, message: str) -> None:
    with pytest.raises(ProfileError, match=r"^p\.json: ") as caught:
        parse_profile(raw, where="p.json")
    assert message in str(caught.value)


SERVING_CHECKS = textwrap.dedent(
    """
    import json
    import numpy as np
    import prometheus_client
    from prometheus_client import Histogram
    from modelops_serving.profile import score_buckets
    from modelops_serving.telemetry import add_to_histogram, parse_business_value

    cuts = (0.1, 0.25, 0.5, 0.75)
    rng = np.random.default_rng(7)
    scores = np.concatenate([rng.random(500), np.array(cuts), np.array([0.0, 1.0])])

    def state(child):
        return [b.get() for b in child._buckets], child._sum.get()

    one = Histogram("one", "", buckets=cuts, registry=None)
    for score in scores.tolist():
        one.observe(score)
    bulk = Histogram("bulk", "", buckets=cuts, registry=None)
    add_to_histogram(bulk, score_buckets(cuts, scores), float(scores.sum()))

    errors = {}
    for raw in ['{"true_positive": 1}', '[1]', '{"true_positive": 1, "false_positive": 2, '
                '"true_negative": true, "false_negative": 0}', 'nope']:
        try:
            parse_business_value(raw)
        except ValueError as exc:
            errors[raw] = str(exc)
    value = parse_business_value('{"true_positive": 100, "false_positive": -20, '
                                 '"true_negative": 0, "false_negative": -80}')
    print(json.dumps({
        "version": prometheus_client.__file__,
        "one": state(one), "bulk": state(bulk), "errors": errors,
        "split": value.split({"true_positive": 2, "false_positive": 3, "false_negative": 1}),
    }))
    """
)


@pytest.fixture(scope="module")
def serving_checks() -> dict[str, object]:
    done = subprocess.run(
        [str(SERVING_BIN / "python"), "-c", SERVING_CHECKS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    checks: dict[str, object] = json.loads(done.stdout)
    return checks


def test_bulk_histogram_counts_equal_observe_one_by_one(serving_checks: dict[str, object]) -> None:
    """prometheus_client 0.8's Histogram, filled per bucket, is in the state `observe` leaves."""
    one, bulk = serving_checks["one"], serving_checks["bulk"]
    assert isinstance(one, list)
    assert isinstance(bulk, list)
    assert bulk[0] == one[0], "the same count in every bucket, values on the bounds included"
    assert bulk[1] == pytest.approx(one[1], rel=1e-12), "one float sum instead of 506 additions"


def test_business_value_needs_four_finite_numbers(serving_checks: dict[str, object]) -> None:
    errors = serving_checks["errors"]
    assert isinstance(errors, dict)
    assert (
        "lacks ['false_positive', 'true_negative', 'false_negative']"
        in errors['{"true_positive": 1}']
    )
    assert "must be a JSON object" in errors["[1]"]
    assert any("business_value.true_negative must be a finite number" in e for e in errors.values())
    assert "business_value is not valid JSON" in errors["nope"]
    assert serving_checks["split"] == [200.0, 140.0], "gain 2 x 100; cost 3 x 20 + 80"

"""Sticky assignment of units to an A/B experiment's variants (`modelops_contract.experiment`).

The hash is recomputed here from its documented definition, so the docs, the contract and
anyone reproducing an assignment elsewhere (a notebook, a SQL job) agree; the split holds on
100,000 units within a tight binomial bound; adding a variant at the end moves only the units
of the buckets it takes; one unit has one canonical text however a client spells it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter

import pytest
from modelops_contract import (
    Experiment,
    ExperimentError,
    UnitError,
    Variant,
    assign,
    parse_experiment,
    unit_text,
)
from modelops_contract.experiment import BUCKETS, bucket_of, unit_digest

SALT = "pricing-test-1"
UNITS = [f"customer-{index}" for index in range(100_000)]
HASH_A, HASH_B = "a" * 64, "b" * 64


def _documented_bucket(unit: str, salt: str) -> int:
    """The bucket as serving/README.md defines it."""
    digest = hashlib.sha256(salt.encode("utf-8") + b"\x00" + unit.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def _experiment(**changes: object) -> Experiment:
    fields: dict[str, object] = {
        "name": "pricing-test",
        "salt": SALT,
        "unit": "customer_id",
        "variants": (
            Variant("stable", "v-stable", HASH_A, "/mnt/models/stable", 50),
            Variant("b", "v-b", HASH_B, "/mnt/models/b", 50),
        ),
        "covariate": "spend_before",
    }
    return Experiment(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_unit_gets_the_variant_whose_bucket_range_holds_its_documented_bucket() -> None:
    split = [("stable", 50), ("b", 30), ("c", 20)]
    for unit in UNITS[:2000]:
        bucket = _documented_bucket(unit, SALT)
        expected = "stable" if bucket < 5000 else "b" if bucket < 8000 else "c"
        assert assign(unit, salt=SALT, split=split) == expected, unit
        assert bucket_of(unit_digest(unit, salt=SALT)) == bucket
    # The same unit, asked again, by the function or by the experiment, gets the same variant.
    experiment = _experiment()
    first = [experiment.assign(unit).name for unit in UNITS[:500]]
    assert first == [experiment.assign(unit).name for unit in UNITS[:500]]
    assert first == [assign(u, salt=SALT, split=experiment.split) for u in UNITS[:500]]


@pytest.mark.parametrize("split", [[("stable", 50), ("b", 50)], [("stable", 90), ("b", 10)]])
def test_the_split_holds_on_100000_units_within_a_binomial_bound(
    split: list[tuple[str, int]],
) -> None:
    counts = Counter(assign(unit, salt=SALT, split=split) for unit in UNITS)
    n = len(UNITS)
    for name, share in split:
        p = share / 100
        # 4 standard deviations: about 150 units of 100,000 at 50%.
        bound = 4 * math.sqrt(n * p * (1 - p))
        assert abs(counts[name] - n * p) < bound, (name, counts)
    assert sum(counts.values()) == n


def test_buckets_are_uniform_enough_that_no_tenth_of_them_is_favoured() -> None:
    tenths = Counter(_documented_bucket(unit, SALT) * 10 // BUCKETS for unit in UNITS)
    for tenth in range(10):
        assert abs(tenths[tenth] - 10_000) < 4 * math.sqrt(100_000 * 0.1 * 0.9), tenths


def test_a_variant_added_at_the_end_takes_only_the_buckets_it_is_given() -> None:
    before = [("stable", 50), ("b", 50)]
    after = [("stable", 50), ("b", 30), ("c", 20)]
    moves = Counter(
        (assign(u, salt=SALT, split=before), assign(u, salt=SALT, split=after)) for u in UNITS
    )
    # stable keeps every unit, b keeps its first 3,000 buckets, c takes b's last 2,000.
    assert set(moves) == {("stable", "stable"), ("b", "b"), ("b", "c")}, moves
    moved = [u for u in UNITS if assign(u, salt=SALT, split=after) == "c"]
    assert all(_documented_bucket(u, SALT) >= 8000 for u in moved)
    assert abs(len(moved) - 20_000) < 4 * math.sqrt(100_000 * 0.2 * 0.8)


def test_a_share_taken_from_the_first_variant_shifts_every_range_after_it() -> None:
    """What the docs warn of: c's share taken from stable moves stable's units to b too."""
    before = [("stable", 50), ("b", 50)]
    after = [("stable", 30), ("b", 50), ("c", 20)]
    moves = Counter(
        (assign(u, salt=SALT, split=before), assign(u, salt=SALT, split=after)) for u in UNITS
    )
    assert moves[("stable", "b")] > 15_000, moves
    assert moves[("b", "c")] > 15_000, moves


def test_a_new_salt_reshuffles_the_units() -> None:
    split = [("stable", 50), ("b", 50)]
    same = sum(
        assign(u, salt=SALT, split=split) == assign(u, salt="another", split=split)
        for u in UNITS[:10_000]
    )
    assert 4_600 < same < 5_400, same


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (42, "42"),
        (42.0, "42"),
        ("42", "42"),
        (-0.0, "0"),
        (-7, "-7"),
        (0.5, "0.5"),
        (1e20, "100000000000000000000"),
        (10**20, "100000000000000000000"),
        ("customer-7", "customer-7"),
        (" x ", " x "),
        (None, None),
        (float("nan"), None),
        ("", None),
    ],
)
def test_a_unit_has_one_canonical_text(value: object, text: str | None) -> None:
    assert unit_text(value) == text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "not a boolean"),
        ([1], "not a list"),
        ({"id": 1}, "not an object"),
        (float("inf"), "not infinity"),
    ],
)
def test_a_value_that_is_not_a_string_or_a_number_is_no_unit(value: object, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        unit_text(value)


def test_the_json_form_reads_back_as_the_same_experiment() -> None:
    experiment = _experiment()
    raw = experiment.to_json()
    assert parse_experiment(raw) == experiment
    assert json.loads(raw)["variants"][1] == {
        "name": "b",
        "model_version": "v-b",
        "model_hash": HASH_B,
        "directory": "/mnt/models/b",
        "share": 50,
    }
    no_covariate = json.loads(raw)
    del no_covariate["covariate"]
    assert parse_experiment(json.dumps(no_covariate)).covariate is None
    assert experiment.control.name == "stable"
    assert experiment.split == (("stable", 50), ("b", 50))


def _raw(**changes: object) -> str:
    loaded = json.loads(_experiment().to_json())
    for key, value in changes.items():
        if key.startswith("variant_"):
            loaded["variants"][1][key.removeprefix("variant_")] = value
        else:
            loaded[key] = value
    return json.dumps(loaded)


def _variants(*shares: int, names: tuple[str, ...] = ("stable", "b", "c")) -> list[object]:
    return [
        {
            "name": name,
            "model_version": f"v-{name}",
            "model_hash": HASH_A,
            "directory": f"/mnt/models/{name}",
            "share": share,
        }
        for name, share in zip(names, shares, strict=False)
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "experiment is not valid JSON"),
        ("[]", "experiment must be a JSON object"),
        (_raw(variants=_variants(50, 40)), "the shares sum to 90; they must sum to 100"),
        (_raw(variants=_variants(100)), "at least two variants"),
        (_raw(variants=_variants(50, 50, names=("a", "b"))), "has no 'stable' variant"),
        (_raw(variants=_variants(50, 50, names=("stable", "stable"))), "repeat the name"),
        (_raw(variant_model_version="v-stable"), "repeat the model_version ['v-stable']"),
        (_raw(variant_share=0), "a share is a whole percent from 1 to 99, got 0"),
        (_raw(variant_share=50.0), "a share is a whole percent from 1 to 99, got 50.0"),
        (_raw(variant_share=True), "got True"),
        (_raw(variant_model_hash="abc"), "variants[1].model_hash must be 64 lowercase hex"),
        (_raw(variant_name="B"), "variants[1].name must be a DNS label"),
        (_raw(variant_directory=""), "variants[1].directory must be a model directory"),
        (_raw(variant_model_version="v b"), "variants[1].model_version must be a label value"),
        (_raw(salt=""), "experiment.salt must be a non-empty string"),
        (_raw(unit=7), "experiment.unit must be a non-empty string, got 7"),
        (_raw(covariate="customer_id"), "experiment.covariate names the unit field"),
        (_raw(name="Pricing Test"), "experiment.name must be a DNS label"),
        (_raw(variants={"stable": 50}), "experiment.variants must be a list"),
        (_raw(split=[50, 50]), "unknown fields ['split']"),
        (json.dumps({"name": "x", "salt": "s", "variants": []}), "lacks ['unit']"),
    ],
)
def test_a_bad_experiment_is_refused_naming_the_field(raw: str, message: str) -> None:
    with pytest.raises(ExperimentError) as refused:
        parse_experiment(raw)
    assert message in str(refused.value)


def test_a_split_that_is_not_whole_percents_summing_to_100_is_refused() -> None:
    with pytest.raises(ExperimentError, match="sum to 101"):
        assign("u", salt=SALT, split=[("stable", 51), ("b", 50)])

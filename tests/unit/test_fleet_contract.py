"""The cohort rule devices and the pipeline share (`modelops_contract.fleet`): a device's bucket,
which bundle it takes, and the fleet manifest's parser."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import replace

import pytest
from modelops_contract import fleet
from modelops_contract.experiment import BUCKETS

STABLE = fleet.FleetBundle(
    version="aaaaaaaaaaaa",
    url="https://models.example.com/bundles/" + "a" * 64 + ".tar.gz",
    sha256="a" * 64,
    model_hash="1" * 64,
    format="onnx",
)
CANDIDATE = replace(STABLE, version="bbbbbbbbbbbb", sha256="b" * 64, model_hash="2" * 64)
SALT = "devices"


def _manifest(percent: int | None) -> fleet.FleetManifest:
    candidate = None if percent is None else fleet.Candidate(CANDIDATE, percent, SALT)
    return fleet.FleetManifest("devices", "onnx", "edge-key", STABLE, candidate)


def _device_in_bucket(low: int, high: int) -> str:
    """A device id whose bucket (with SALT) is in [low, high)."""
    return next(
        f"device-{n}" for n in range(100_000) if low <= fleet.bucket(f"device-{n}", SALT) < high
    )


def test_the_bucket_is_a_stable_function_of_the_salt_and_the_device_in_range() -> None:
    buckets = [fleet.bucket(f"device-{n}", SALT) for n in range(1000)]
    assert all(0 <= b < BUCKETS for b in buckets), "every bucket is in [0, 10000)"
    assert buckets == [fleet.bucket(f"device-{n}", SALT) for n in range(1000)], "deterministic"
    # The documented rule, computed here by hand: sha256(salt NUL id), first 8 bytes, mod 10000.
    digest = hashlib.sha256(b"devices\x00device-7").digest()
    assert fleet.bucket("device-7", SALT) == int.from_bytes(digest[:8], "big") % 10_000
    reshuffled = [fleet.bucket(f"device-{n}", "other-salt") for n in range(1000)]
    assert sum(a != b for a, b in zip(buckets, reshuffled, strict=True)) > 990, (
        "a new salt reshuffles them"
    )


def test_devices_on_each_side_of_the_cohort_boundary_take_different_bundles() -> None:
    # Given a candidate at 25%: buckets 0-2499 take it, 2500 and above keep the stable bundle.
    manifest = _manifest(25)
    inside = _device_in_bucket(2400, 2500)
    outside = _device_in_bucket(2500, 2600)
    assert manifest.bundle_for(inside) == CANDIDATE, f"bucket {fleet.bucket(inside, SALT)} < 2500"
    assert manifest.bundle_for(outside) == STABLE, f"bucket {fleet.bucket(outside, SALT)} >= 2500"
    assert _manifest(None).bundle_for(inside) == STABLE, "no rollout: every device is stable"


def test_the_share_taking_a_candidate_at_25_percent_is_within_its_binomial_interval() -> None:
    devices = 20_000
    taken = sum(
        fleet.takes_candidate(f"store-{n:05d}-till", salt=SALT, percent=25) for n in range(devices)
    )
    # 99.9% interval of a binomial(20000, 0.25): mean 5000, sd ~61.2, +-3.29 sd.
    margin = 3.29 * math.sqrt(devices * 0.25 * 0.75)
    assert abs(taken - devices * 0.25) < margin, f"{taken} of {devices} took the candidate"


def test_a_device_keeps_its_cohort_as_the_percent_grows() -> None:
    ids = [f"phone-{n}" for n in range(5000)]
    steps = (5, 25, 50, 99)
    cohorts = [{d for d in ids if fleet.takes_candidate(d, salt=SALT, percent=p)} for p in steps]
    for (smaller, larger), (low, high) in zip(
        itertools.pairwise(cohorts), itertools.pairwise(steps), strict=True
    ):
        assert smaller <= larger, f"a device in the {low}% cohort left it at {high}%"
        assert len(smaller) < len(larger), "a wider step adds devices"


def test_a_manifest_reads_back_from_its_text() -> None:
    for percent in (None, 25):
        manifest = _manifest(percent)
        assert fleet.parse_fleet_manifest(manifest.to_json()) == manifest


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema_version=2), "update the device's client"),
        (lambda d: d.pop("stable"), "missing ['stable']"),
        (lambda d: d["stable"].update(sha256="xyz"), "stable.sha256: a sha256 hex digest"),
        (lambda d: d["candidate"].update(percent=100), "candidate.percent: a whole percent"),
        (lambda d: d["candidate"].update(format="native"), "the environment's format is onnx"),
        (lambda d: d["candidate"].update(sha256="a" * 64), "the same archive as stable"),
        (lambda d: d.update(extra=1), "unknown ['extra']"),
        (lambda d: d["stable"].update(url="bundles/a.tar.gz"), "stable.url: an absolute URL"),
    ],
)
def test_a_manifest_a_device_cannot_trust_is_refused_naming_the_field(
    change: object, message: str
) -> None:
    document = json.loads(_manifest(25).to_json())
    assert callable(change)
    change(document)
    with pytest.raises(fleet.FleetManifestError, match=re.escape(message)):
        fleet.parse_fleet_manifest(json.dumps(document))


def test_an_empty_device_id_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        fleet.bucket("", SALT)

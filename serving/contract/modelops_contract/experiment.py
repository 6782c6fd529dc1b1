"""Sticky assignment of units to the variants of an A/B experiment, and the experiment's form.

An experiment runs two or more models (variants: the control is `stable`) on the same traffic.
Every *unit* (a customer, say) must see the same variant in every replica and after restarts,
so the variant is a pure function of the unit: no state, no coordination.

- **The hash.** A unit's canonical text (`unit_text`) is hashed with the experiment's salt:
  `sha256(UTF-8(salt) + b"\\x00" + UTF-8(text))`. The digest's first 8 bytes, read as a
  big-endian unsigned integer, modulo `BUCKETS` (10,000) is the unit's bucket.
- **The split.** Variants take consecutive ranges of buckets in the order they are listed,
  `share` percent each (100 buckets per percent; shares sum to 100): with stable 50 and b 50,
  buckets 0-4999 are stable's and 5000-9999 b's.
- **What moves when the split changes.** Only units whose bucket changes owner. Adding a
  variant at the end, its share taken from the last one (stable 50, b 50 -> stable 50, b 30,
  c 20), moves b's last 2,000 buckets to c and nothing else; any other change shifts the ranges
  after the first changed share. A new salt reshuffles every unit: a new experiment.

The server reads an `Experiment` from its `experiment` graph parameter (`parse_experiment`),
and whoever renders that parameter writes it with `Experiment.to_json`. Standard library only.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from modelops_contract.series import STABLE

BUCKETS = 10_000
"""How many buckets units are hashed into: a share of 1% is 100 of them."""
PERCENT = 100
CONTROL = STABLE
"""The control variant's name: what rows without a unit are served by."""
EXPERIMENT_TAG = "experiment"
"""The `meta.tags` entry of an answer that names the experiment its rows were assigned in."""
VARIANTS_TAG = "variants"
"""The `meta.tags` entry listing, row by row, the variant that answered it."""
MODEL_VERSIONS_TAG = "model_versions"
"""The `meta.tags` entry listing, row by row, the model_version of the variant that answered."""
_NAME = re.compile(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?")
"""A variant's name: it names a directory and an init container (a DNS-1123 label), and is a
label value."""
_EXPERIMENT_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_HASH = re.compile(r"[0-9a-f]{64}")
_FIELDS = ("name", "salt", "unit", "covariate", "variants")
_VARIANT_FIELDS = ("name", "model_version", "model_hash", "directory", "share")
FORM = (
    '{"name": "pricing-test", "salt": "pricing-test-1", "unit": "customer_id", '
    '"covariate": null, "variants": [{"name": "stable", "model_version": "...", '
    '"model_hash": "<64 hex>", "directory": "/mnt/models/stable", "share": 50}, '
    '{"name": "b", ...}]}'
)
"""The experiment's JSON form, quoted in error messages."""


class ExperimentError(ValueError):
    """An experiment (or a unit value) that cannot be served: the message names the field."""


class UnitError(ExperimentError):
    """A unit value that is not a string or a number."""


def unit_text(value: object) -> str | None:
    """The canonical text of a JSON unit value; None when the row has no unit.

    One unit, one text, however a client spells it: an integral number is its decimal integer
    (42, 42.0 and "42" are the same unit), any other number Python's shortest repr (0.5), a
    string itself. None, NaN and "" are no unit.

    Raises:
        UnitError: a boolean, an infinite number, a list, an object.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        raise UnitError("a unit is a string or a number, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise UnitError("a unit is a string or a finite number, not infinity")
        return str(int(value)) if value.is_integer() else repr(value)
    raise UnitError(f"a unit is a string or a number, not {_kind(value)}")


def unit_digest(unit: str, *, salt: str) -> bytes:
    """The SHA-256 digest a unit's bucket comes from (its first 8 bytes)."""
    return hashlib.sha256(salt.encode() + b"\x00" + unit.encode()).digest()


def bucket_of(digest: bytes) -> int:
    """The bucket (0 to BUCKETS - 1) of a `unit_digest`."""
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(unit: str, *, salt: str, split: Sequence[tuple[str, int]]) -> str:
    """The variant of a unit (its canonical text): the one whose bucket range holds its bucket.

    `split` is (variant, percent) in order, percents summing to 100.

    Raises:
        ExperimentError: a split that is not whole percents summing to 100.
    """
    bounds = _bounds([share for _, share in split], where="split")
    return split[_position(bucket_of(unit_digest(unit, salt=salt)), bounds)][0]


@dataclass(frozen=True)
class Variant:
    """One model of the experiment, where the server finds it, and its share of the units."""

    name: str
    model_version: str
    model_hash: str
    directory: str
    share: int


@dataclass(frozen=True)
class Experiment:
    """An A/B experiment as the server runs it; building one checks every field.

    `unit` and `covariate` are request fields (columns of `data.names`): the unit's value
    chooses the variant; the covariate, a number (the unit's value of the KPI before the
    experiment), is summed per variant in feedback, for variance reduction (CUPED).
    """

    name: str
    salt: str
    unit: str
    variants: tuple[Variant, ...]
    covariate: str | None = None

    def __post_init__(self) -> None:
        _check(self)

    @cached_property
    def _bounds(self) -> tuple[int, ...]:
        return _bounds([v.share for v in self.variants], where="experiment.variants")

    @property
    def split(self) -> tuple[tuple[str, int], ...]:
        """(variant, percent) in bucket order: what `assign` takes."""
        return tuple((v.name, v.share) for v in self.variants)

    @property
    def control(self) -> Variant:
        """The `stable` variant."""
        return self.variants[self.position(CONTROL)]

    def position(self, name: str) -> int:
        """Where the variant `name` is in `variants`; KeyError when there is none."""
        for index, variant in enumerate(self.variants):
            if variant.name == name:
                return index
        raise KeyError(name)

    def position_of(self, digest: bytes) -> int:
        """Where the variant of a unit with this `unit_digest` is in `variants`."""
        return _position(bucket_of(digest), self._bounds)

    def assign(self, unit: str) -> Variant:
        """The variant of a unit (its canonical text, `unit_text`)."""
        return self.variants[self.position_of(unit_digest(unit, salt=self.salt))]

    def to_json(self) -> str:
        """The `experiment` graph parameter's value: what `parse_experiment` reads back."""
        return json.dumps(
            {
                "name": self.name,
                "salt": self.salt,
                "unit": self.unit,
                "covariate": self.covariate,
                "variants": [{f: getattr(v, f) for f in _VARIANT_FIELDS} for v in self.variants],
            },
            separators=(",", ":"),
        )


def parse_experiment(raw: str) -> Experiment:
    """Read the `experiment` graph parameter (`Experiment.to_json`'s form).

    Raises:
        ExperimentError: what is wrong, at which field, and the form expected.
    """
    try:
        loaded = json.loads(raw)
    except ValueError as exc:
        raise ExperimentError(f"experiment is not valid JSON ({exc}): expected {FORM}") from None
    top = _object(loaded, "experiment", _FIELDS, required=("name", "salt", "unit", "variants"))
    variants = top["variants"]
    if not isinstance(variants, list):
        raise ExperimentError(f"experiment.variants must be a list of variants: {FORM}")
    parsed = []
    for index, item in enumerate(variants):
        fields = _object(item, f"experiment.variants[{index}]", _VARIANT_FIELDS)
        parsed.append(Variant(**fields))
    return Experiment(
        name=top["name"],
        salt=top["salt"],
        unit=top["unit"],
        variants=tuple(parsed),
        covariate=top.get("covariate"),
    )


def _object(
    value: Any, where: str, fields: Sequence[str], *, required: Sequence[str] | None = None
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ExperimentError(f"{where} must be a JSON object: expected {FORM}")
    unknown = [key for key in value if key not in fields]
    missing = [key for key in (fields if required is None else required) if key not in value]
    if unknown or missing:
        raise ExperimentError(
            f"{where} has unknown fields {unknown} and lacks {missing}; its fields are "
            f"{', '.join(fields)}: expected {FORM}"
        )
    return value


def _check(experiment: Experiment) -> None:
    """Every rule an experiment must follow, each refusal naming the field and the fix."""
    _text(experiment.name, "experiment.name", _EXPERIMENT_NAME, "a DNS label (a-z, 0-9, -)")
    for field in ("salt", "unit"):
        _text(getattr(experiment, field), f"experiment.{field}", None, "a non-empty string")
    if experiment.covariate is not None:
        _text(experiment.covariate, "experiment.covariate", None, "a request field, or null")
        if experiment.covariate == experiment.unit:
            raise ExperimentError(
                "experiment.covariate names the unit field: the covariate is another request "
                "field, a number (the unit's pre-experiment value of the KPI)"
            )
    variants = experiment.variants
    if not isinstance(variants, tuple) or len(variants) < 2:
        raise ExperimentError(
            "experiment.variants must list at least two variants: stable and a candidate"
        )
    for index, variant in enumerate(variants):
        where = f"experiment.variants[{index}]"
        if not isinstance(variant, Variant):
            raise ExperimentError(f"{where} must be a Variant")
        _text(variant.name, f"{where}.name", _NAME, "a DNS label of at most 32 characters")
        _text(variant.model_version, f"{where}.model_version", _VERSION, "a label value")
        _text(variant.model_hash, f"{where}.model_hash", _HASH, "64 lowercase hex characters")
        _text(variant.directory, f"{where}.directory", None, "a model directory")
    for field in ("name", "model_version"):
        values = [getattr(v, field) for v in variants]
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            why = "it names the variant" if field == "name" else "each variant is counted under it"
            raise ExperimentError(
                f"experiment.variants repeat the {field} {repeated}: give each its own ({why})"
            )
    if CONTROL not in {v.name for v in variants}:
        raise ExperimentError(
            f"experiment.variants has no {CONTROL!r} variant: the control is named {CONTROL!r} "
            "(it serves the rows without a unit)"
        )
    _bounds([v.share for v in variants], where="experiment.variants")


def _text(value: Any, where: str, pattern: re.Pattern[str] | None, what: str) -> None:
    if not isinstance(value, str) or not value or (pattern and not pattern.fullmatch(value)):
        raise ExperimentError(f"{where} must be {what}, got {_shown(value)}")


def _bounds(shares: Sequence[Any], *, where: str) -> tuple[int, ...]:
    """Each variant's first bucket past its range: cumulative shares x 100 buckets."""
    for share in shares:
        if isinstance(share, bool) or not isinstance(share, int) or not 1 <= share <= 99:
            raise ExperimentError(
                f"{where}: a share is a whole percent from 1 to 99, got {_shown(share)}"
            )
    if sum(shares) != PERCENT:
        raise ExperimentError(
            f"{where}: the shares sum to {sum(shares)}; they must sum to {PERCENT} (percent of "
            "the units): change them so that they do"
        )
    bounds, total = [], 0
    for share in shares:
        total += share * (BUCKETS // PERCENT)
        bounds.append(total)
    return tuple(bounds)


def _position(bucket: int, bounds: Sequence[int]) -> int:
    return bisect.bisect_right(bounds, bucket)


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}…"

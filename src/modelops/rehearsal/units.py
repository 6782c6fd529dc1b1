"""An experiment's traffic: units that come back, some lost, truth that favours a variant.

What `rehearsal.traffic` does differently when the release runs an A/B experiment (its settings
are an `experiment.UnitTraffic`, as JSON):

- **Units.** The test rows' own unit values (their id column, or a model input), each sending
  its row; or `count` made-up ids, each sending one test row drawn once. Every request's rows
  come from units drawn at random, so each unit sends again and again over the run.
- **A broken split.** Units the client loses are decided once, before anything is sent: of
  the units whose variant (`modelops_contract.assign`, as the servers compute it) is named in
  `broken`, that share never sends. The servers never see them, as when a variant crashes
  before its customers reach the model.
- **A true effect.** For each row a variant in `effect` answered (the answer's `meta.tags`
  say which), with that probability the truth sent back is the class the variant predicted at
  the threshold, so that variant is right more often.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from modelops_contract import assign, unit_text
from modelops_contract.experiment import VARIANTS_TAG, UnitError

from modelops.io import JSONObject


@dataclass(frozen=True)
class Units:
    """The units that send, and the test row each sends."""

    values: list[object]
    """Each unit's value as requests carry it (JSON: a string or a number)."""
    rows: npt.NDArray[np.int64]
    """The test row each unit sends (positions in the test rows)."""
    lost: int
    """Units the client lost (a broken split): never sent."""


def made_up(count: int) -> list[str]:
    """`count` unit ids: u000001, u000002, ..."""
    return [f"u{index:06d}" for index in range(1, count + 1)]


def units_of(rows: pd.DataFrame, settings: JSONObject, rng: np.random.Generator) -> Units:
    """The units that send (`settings`: an `experiment.UnitTraffic` as JSON), lost ones out."""
    count = settings["count"]
    values: list[object]
    if count is None:
        values = [json_value(value) for value in rows[settings["unit"]]]
        positions = np.arange(len(rows), dtype=np.int64)
    else:
        values = list(made_up(int(count)))
        positions = rng.integers(0, len(rows), size=len(values), dtype=np.int64)
    kept = ~lost_units(values, settings, rng)
    return Units(
        values=[value for value, keep in zip(values, kept, strict=True) if keep],
        rows=positions[kept],
        lost=int(np.count_nonzero(~kept)),
    )


def lost_units(
    values: Sequence[object], settings: JSONObject, rng: np.random.Generator
) -> npt.NDArray[np.bool_]:
    """Which units the client loses: of each variant in `broken`, about its share (one draw
    per unit, all made before anything is sent); a unit without a value is never lost."""
    broken: Mapping[str, float] = settings["broken"]
    split = [(str(name), int(share)) for name, share in settings["split"]]
    draws = rng.random(len(values))
    lost = np.zeros(len(values), dtype=bool)
    if not broken:
        return lost
    seen: dict[str, bool] = {}
    for index, value in enumerate(values):
        try:
            text = unit_text(value)
        except UnitError:
            continue
        if text is None:
            continue
        if text not in seen:  # a unit with several rows is lost whole
            variant = assign(text, salt=settings["salt"], split=split)
            seen[text] = bool(draws[index] < broken.get(variant, 0.0))
        lost[index] = seen[text]
    return lost


def unit_requests(
    rows: pd.DataFrame,
    features: Sequence[str],
    label: str,
    units: Units,
    settings: JSONObject,
    *,
    per_request: int,
    rng: np.random.Generator,
) -> Iterator[tuple[JSONObject, list[list[str]]]]:
    """Seldon requests of `per_request` rows, each row a unit drawn at random and its test row
    (the unit as one more column when it is no model input), with their truths."""
    names = [*features, settings["unit"]] if settings["appended"] else list(features)
    table = [[json_value(value) for value in row] for row in rows[list(features)].itertuples(False)]
    truths = [str(value) for value in rows[label]]
    while True:
        drawn = rng.integers(0, len(units.values), size=per_request)
        values, truth = [], []
        for index in drawn:
            row = int(units.rows[index])
            extra = [units.values[index]] if settings["appended"] else []
            values.append([*table[row], *extra])
            truth.append([truths[row]])
        yield {"data": {"names": names, "ndarray": values}}, truth


def with_effect(
    truths: list[list[str]],
    response: JSONObject,
    settings: JSONObject,
    draw: Callable[[], float],
) -> list[list[str]]:
    """The truths to send back: a row a variant of `effect` answered gets, with its
    probability, the class that variant predicted at the threshold (the answer's scores)."""
    effect: Mapping[str, float] = settings["effect"]
    if not effect:
        return truths
    variants = response.get("meta", {}).get("tags", {}).get(VARIANTS_TAG) or []
    data = response.get("data", {})
    classes = [str(name) for name in data.get("names", [])]
    scores = data.get("ndarray", [])
    positive = str(settings["positive_label"])
    if positive not in classes or len(variants) != len(truths) or len(scores) != len(truths):
        return truths
    column = classes.index(positive)
    changed = []
    for truth, variant, row in zip(truths, variants, scores, strict=True):
        size = effect.get(str(variant), 0.0)
        if size > 0 and draw() < size:
            said_positive = float(row[column]) >= float(settings["threshold"])
            truth = [positive if said_positive else str(settings["negative_label"])]
        changed.append(truth)
    return changed


def json_value(value: object) -> object:
    """A table value as JSON carries it: a plain Python value, None for missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return json_value(value.item())
    return value

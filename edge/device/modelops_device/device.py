"""What `modelops-device` does with its state directory: score, count, encode, report.

Scoring opens the current bundle (its sums checked), scores the rows, and adds them to the
device's counts in the profile's bins. Counts belong to one bundle on one track: when the
bundle or the track changes, they start again from zero (a new series to Prometheus, or a
counter reset it reads as one).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from modelops_contract.bundle import PROFILE

from modelops_device import report
from modelops_device.counts import Counts, ProfileBins, count, parse_profile
from modelops_device.score import Scorer, load
from modelops_device.state import COUNTS, DeviceError, Installed, installed, locked, write_json


@dataclass(frozen=True)
class Scored:
    """A row's probability of the positive class and its class at the bundle's threshold."""

    probability: float
    label: str

    def to_json(self) -> str:
        return json.dumps({"probability": self.probability, "class": self.label})


def read_rows(source: str) -> list[Mapping[str, Any]]:
    """Raw rows from a JSON-lines file (`-` for standard input), one object a line."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    rows: list[Mapping[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DeviceError(f"{source} line {number} is not JSON: {exc}") from None
        if not isinstance(row, dict):
            raise DeviceError(f"{source} line {number}: a row is a JSON object, got {line[:60]}")
        rows.append(row)
    return rows


def _open(state: Path) -> tuple[Installed, Scorer, ProfileBins]:
    bundle = installed(state)
    directory = bundle.directory(state)
    scorer = load(directory)
    return bundle, scorer, parse_profile((directory / PROFILE).read_bytes(), where=PROFILE)


def _stored(state: Path, bundle: Installed, bins: ProfileBins) -> Counts:
    """The counts kept for `bundle` on its track; zero if they are another's or none."""
    path = state / COUNTS
    if path.is_file():
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("bundle") == bundle.sha256 and raw.get("track") == bundle.track:
            return Counts.from_json(raw["counts"])
    return Counts.zero(bins)


def score(state: Path, rows: list[Mapping[str, Any]]) -> list[Scored]:
    """Score raw rows with the current bundle and add them to the device's counts."""
    with locked(state):
        bundle, scorer, bins = _open(state)
        try:
            probabilities = scorer.predict_proba(rows)
        except (ValueError, KeyError) as exc:
            raise DeviceError(f"the rows cannot be scored: {exc}") from None
        threshold = float(scorer.manifest["threshold"])
        total = _stored(state, bundle, bins) + count(bins, rows, probabilities, threshold=threshold)
        document = {"bundle": bundle.sha256, "track": bundle.track, "counts": total.to_json()}
        write_json(state / COUNTS, document)
    positive = str(scorer.signature["positive_label"])
    negative = next((str(c) for c in scorer.signature["classes"] if str(c) != positive), "")
    return [Scored(p, positive if p >= threshold else negative) for p in probabilities.tolist()]


def encode(state: Path, rows: list[Mapping[str, Any]]) -> npt.NDArray[np.float64]:
    """The model's inputs for raw rows, as the current bundle encodes them (nothing counted)."""
    _, scorer, _ = _open(state)
    try:
        return scorer.encode(rows)
    except (ValueError, KeyError) as exc:
        raise DeviceError(f"the rows cannot be encoded: {exc}") from None


def csv_lines(inputs: npt.NDArray[np.float64]) -> list[str]:
    """Encoded rows as CSV, each number as 17 significant digits (a double exactly), `nan`
    for a missing value: what C's strtod reads back to the same double."""
    return [",".join(format(value, ".17g") for value in row) for row in inputs.tolist()]


def push_report(state: Path, *, pushgateway: str, job: str, device_id: str) -> str:
    """PUT the device's counts to its group at the Pushgateway; returns the group's URL."""
    with locked(state):
        bundle, _, bins = _open(state)
        counts = _stored(state, bundle, bins)
    url = report.group_url(pushgateway, job=job, device_id=device_id)
    report.push(url, report.exposition(bundle, bins, counts, now=time.time()))
    return url

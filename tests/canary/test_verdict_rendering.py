"""A property of every verdict as printed: each estimate lies in its own interval, right after
the name of the statistic the interval is for, and the counts are said to be increase()'s.

The judge once printed "PSI 2.481, interval [0.7331, 1.496]": an interval of another distance.
Here 300 random looks (tracks from empty to 200,000 requests, fractional counts as increase()
gives them, every criterion shifted or not, shadows, labels or none) are judged and rendered as
the terminal text, the Markdown and the JSON; every line with numbers is read back.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

import numpy as np
import pytest
from modelops_contract import OTHER, SCORE_GRID, UNSEEN

from modelops.canary import document
from modelops.canary.criteria import Finding
from modelops.canary.evidence import Evidence, TrackCounts
from modelops.canary.judge import Verdict, judge
from modelops.params import CanaryParams, DriftGateParams
from modelops.telemetry.promql import increase_note

LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, math.inf)
GRID = (*SCORE_GRID, math.inf)
BUSINESS = {
    "true_positive": 120.0,
    "false_positive": -15.0,
    "true_negative": 0.0,
    "false_negative": 0.0,
}
STEP = document.Step("production", "v2", "v1", 10, "2026-12-03T08:00:00Z", "t", "http://p")


def _cumulative(bounds: tuple[float, ...], counts: np.ndarray) -> tuple[tuple[float, float], ...]:
    return tuple(zip(bounds, map(float, np.cumsum(counts)), strict=True))


def _track(
    rng: np.random.Generator, requests: float, shapes: dict[str, np.ndarray], shift: float
) -> TrackCounts:
    """A track of `requests` (fractional, as increase() gives them), drawn from `shapes` and
    moved by `shift` (0: as stable)."""
    if requests <= 0:
        return TrackCounts()
    n = int(requests)

    def moved(name: str) -> np.ndarray:
        shape = shapes[name] * (1 - shift) + shift * np.roll(shapes[name], 1)
        return rng.multinomial(n, shape / shape.sum())

    labels = int(rng.binomial(n, shapes["labelled"][0]))
    cells = rng.multinomial(labels, shapes["cells"])
    agree = float(rng.binomial(labels, 0.95 - 0.3 * shift))
    pairs = float(labels * 3)
    fraction = requests / n
    return TrackCounts(
        requests=requests,
        server_errors=float(rng.binomial(n, 0.05 * shift)) * fraction,
        latency=_cumulative(LATENCY, moved("latency") * fraction),
        scores=_cumulative(GRID, moved("scores") * fraction),
        positive=float(rng.binomial(n, 0.2 + 0.2 * shift)) * fraction,
        predicted=requests,
        features={
            "plan": dict(
                zip(
                    ("basic", "standard", "premium", OTHER, UNSEEN),
                    moved("plan") * fraction,
                    strict=True,
                )
            ),
            "tenure": {f"b{i:02d}": float(c) * fraction for i, c in enumerate(moved("tenure"))},
        },
        bins={"plan": "p", "tenure": "t"},
        cells=dict(
            zip(
                ("true_positive", "false_negative", "false_positive", "true_negative"),
                map(float, cells),
                strict=True,
            )
        ),
        agreement=(agree, labels - agree),
        pairs=(pairs * (0.9 - 0.5 * shift), pairs * (0.1 + 0.5 * shift)),
    )


def _look(seed: int) -> tuple[Evidence, CanaryParams]:
    rng = np.random.default_rng(seed)
    canary_requests = float(rng.choice([0, 30, 500, 5000, 20_000])) * rng.uniform(0.9, 1.1)
    stable_requests = canary_requests * float(rng.choice([1, 3, 9])) * rng.uniform(0.9, 1.1)
    if rng.random() < 0.1:
        stable_requests = 0.0
    shift = float(rng.choice([0.0, 0.0, 0.3, 1.0]))
    shapes = {
        # Mostly a server's usual latency; a third of the looks anything, up to past the last
        # bucket (where a quantile ratio has no finite bounds)
        "latency": np.array([0.05, 0.6, 0.3, 0.04, 0.01, 0.0, 0.0, 0.0, 0.0])
        if rng.random() < 0.67
        else rng.dirichlet(np.ones(len(LATENCY)) * 2),
        "scores": rng.dirichlet(np.ones(len(GRID)) * 3),
        "plan": np.array([0.5, 0.3, 0.15, 0.05, 0.0]),
        "tenure": rng.dirichlet(np.ones(6) * 5),
        "labelled": np.array([float(rng.choice([0.0, 0.01, 0.3]))]),
        "cells": rng.dirichlet(np.ones(4) * 4),
    }
    evidence = Evidence(
        canary=_track(rng, canary_requests, shapes, shift),
        stable=_track(rng, stable_requests, shapes, 0.0),
        step_seconds=float(rng.uniform(0, 7200)),
        weight=10,
        shadow=bool(rng.random() < 0.3),
    )
    params = CanaryParams(
        quality={"required": bool(rng.random() < 0.5), "max_value_drop": 5.0},
        shadow={"required": bool(rng.random() < 0.5)},
    )
    return evidence, params


SPECIAL = {"n/a": math.nan, "∞": math.inf, "-∞": -math.inf}


def _number(text: str) -> float:
    return SPECIAL[text] if text in SPECIAL else float(text)


def _in_order(low: str, estimate: str, high: str, where: str) -> None:
    values = [_number(low), _number(estimate), _number(high)]
    if math.isnan(values[1]):
        return  # no estimate yet (no rows on a track): nothing to be outside of
    assert values[0] <= values[1] <= values[2], f"estimate outside its interval: {where}"


NUMBER = r"(\S+)"


def _text(verdict: Verdict) -> None:
    text = document.to_text(verdict)
    assert increase_note("step") in text
    lines = text.splitlines()
    for f in verdict.findings:
        if f.status == "skipped" and math.isnan(f.estimate):
            continue
        # The statistic's name comes right before its estimate and interval
        head = f" {f.criterion}: {f.statistic} "
        (line,) = [line for line in lines if head in line]
        matched = re.match(rf"{NUMBER} \[{NUMBER}, {NUMBER}\], bound ", line.split(head, 1)[1])
        assert matched, line
        _in_order(matched[2], matched[1], matched[3], line)


def _markdown(verdict: Verdict) -> None:
    markdown = document.to_markdown(verdict, STEP)
    assert increase_note("step") in markdown
    rows = {
        row.split(" | ")[0].removeprefix("| "): row
        for row in markdown.splitlines()
        if row.startswith("| ")
    }
    for f in verdict.findings:
        if f.status == "skipped" and math.isnan(f.estimate):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", rows[f.criterion])[1:-1]]
        assert cells[2] == f.statistic, cells
        matched = re.fullmatch(rf"{NUMBER} \[{NUMBER}, {NUMBER}\]", cells[4])
        assert matched, cells
        _in_order(matched[2], matched[1], matched[3], rows[f.criterion])


def _summary(verdict: Verdict) -> None:
    for f in verdict.findings:
        if f.status != "fail":
            continue
        # "roll back: errors (server-error ratio, canary minus stable 0.3, interval [0.19, ...]"
        start = verdict.summary.index(f"{f.criterion} ({f.statistic} ") + len(
            f"{f.criterion} ({f.statistic} "
        )
        matched = re.match(rf"{NUMBER}, interval \[{NUMBER}, {NUMBER}\]", verdict.summary[start:])
        assert matched, verdict.summary
        _in_order(matched[2], matched[1].rstrip(","), matched[3], verdict.summary)


def _json(verdict: Verdict) -> None:
    for f in json.loads(document.to_json(verdict, STEP))["findings"]:
        if f["estimate"] is None:
            continue
        low = -math.inf if f["low"] is None else f["low"]
        high = math.inf if f["high"] is None else f["high"]
        assert low <= f["estimate"] <= high, f
        assert f["statistic"] or f["status"] == "skipped", f


@pytest.mark.parametrize("render", [_text, _markdown, _summary, _json])
def test_every_printed_estimate_is_in_its_own_interval_after_its_statistic(
    render: Callable[[Verdict], None],
) -> None:
    decisions: set[str] = set()
    for seed in range(300):
        evidence, params = _look(seed)
        verdict = judge(evidence, params, BUSINESS, drift=DriftGateParams())
        for f in verdict.findings:
            _finding_in_order(f)
        render(verdict)
        decisions.add(verdict.decision)
    assert decisions == {"promote", "hold", "rollback"}, "the looks reach every decision"


def _finding_in_order(f: Finding) -> None:
    if not math.isnan(f.estimate):
        assert f.low <= f.estimate <= f.high, f

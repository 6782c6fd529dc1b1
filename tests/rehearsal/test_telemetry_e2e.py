"""The telemetry end to end: the real microservice, a real Prometheus scraping it, PromQL.

Known requests and feedback go to a stable and a canary server; every count Prometheus holds
(feature bins, outcomes, rows, score buckets, predicted classes, the confusion matrix, the
business value) must equal what is computed here, in process, from the same rows, the model
and its `profile.json`, exactly. The counts must be current within 2 s of the last request
with no further traffic (plus one 1 s scrape interval, which a cluster sets itself).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from modelops_contract import MISSING, OTHER, SCORE_GRID, UNSEEN

from modelops import tracking
from modelops.identity import content_hash
from modelops.params import load_params
from modelops.prepared import load_prepared
from modelops.rehearsal import processes
from modelops.rehearsal.plan import ServerPlan
from modelops.rehearsal.traffic import SeldonRequest, feedback_body, post
from modelops.telemetry.profile import ReferenceProfile, bin_index

ROWS, CANARY_ROWS, PER_REQUEST = 40, 5, 10


@dataclass(frozen=True)
class Stack:
    root: Path
    prometheus: int
    stable: ServerPlan
    canary: ServerPlan


@pytest.fixture(scope="module")
def stack(project: Path) -> Iterator[Stack]:
    ports = iter(processes.free_ports(5))
    model_dir = project / "models" / "model"
    digest = content_hash(model_dir)
    servers = [
        ServerPlan(track, model_dir, digest[:12], digest, next(ports), next(ports))
        for track in ("stable", "canary")
    ]
    params = load_params(project / "params.yaml")
    business = params.monitoring.business
    prometheus = next(ports)
    try:
        processes.up(
            project,
            servers,
            None,
            prometheus_port=prometheus,
            threshold=params.evaluate.threshold,
            business_value=business.server_value() if business else None,
        )
        yield Stack(project, prometheus, servers[0], servers[1])
    finally:
        processes.down(project)


def _query(stack: Stack, promql: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": promql})
    url = f"http://127.0.0.1:{stack.prometheus}/api/v1/query?{query}"
    with urllib.request.urlopen(url, timeout=5) as answer:
        result: list[dict[str, Any]] = json.loads(answer.read())["data"]["result"]
    return result


def _by(stack: Stack, labels: tuple[str, ...], promql: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(r["metric"].get(label, "") for label in labels): float(r["value"][1])
        for r in _query(stack, promql)
    }


def _rows(project: Path) -> pd.DataFrame:
    """Test rows with an unseen category, missing values and a value exactly on a cut."""
    prepared = load_prepared(project / "data" / "prepared")
    schema = prepared.meta.schema
    rows = prepared.test[[*schema.features, schema.label]].head(ROWS + CANARY_ROWS).copy()
    profile = _profile(project)
    categorical, numeric = schema.categorical[0], profile.numeric[0]
    rows = rows.astype({categorical: object})
    where_category, where_number = (
        rows.columns.tolist().index(name) for name in (categorical, numeric.name)
    )
    rows.iloc[0, where_category] = "a category never seen in training"
    rows.iloc[1, where_category] = None
    rows.iloc[1, where_number] = np.nan
    rows.iloc[2, where_number] = numeric.cuts[len(numeric.cuts) // 2]
    return rows.reset_index(drop=True)


def _profile(project: Path) -> ReferenceProfile:
    raw = json.loads((project / "models" / "model" / "profile.json").read_text())
    return ReferenceProfile.from_dict(raw)


def _expected_bins(rows: pd.DataFrame, profile: ReferenceProfile) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for numeric in profile.numeric:
        values = pd.to_numeric(rows[numeric.name], errors="coerce").to_numpy(dtype=np.float64)
        known = np.isfinite(values)
        counts[(numeric.name, MISSING)] += int((~known).sum())
        for index in bin_index(numeric.cuts, values[known]):
            counts[(numeric.name, numeric.bins[index])] += 1
    for categorical in profile.categorical:
        for value in rows[categorical.name]:
            if value is None or (isinstance(value, float) and np.isnan(value)):
                name = MISSING
            elif str(value) in categorical.categories:
                name = str(value)
            elif str(value) in categorical.other:
                name = OTHER
            else:
                name = UNSEEN
            counts[(categorical.name, name)] += 1
    return Counter({key: count for key, count in counts.items() if count})


def _request(rows: pd.DataFrame, features: list[str]) -> SeldonRequest:
    values = [
        [None if isinstance(v, float) and np.isnan(v) else v for v in row]
        for row in rows[features].astype(object).itertuples(index=False)
    ]
    return {"data": {"names": features, "ndarray": values}}


def _eventually(found: Callable[[], Any], expected: Any, *, within: float) -> None:
    """Wait until `found()` is `expected`; fail after `within` seconds, saying how they differ."""
    started = time.monotonic()
    while (last := found()) != expected:
        if time.monotonic() - started > within:
            differ = {k: (last.get(k), expected.get(k)) for k in set(last) | set(expected)}
            pytest.fail(
                f"not current within {within:g} s; (Prometheus, expected) where they differ: "
                f"{ {k: v for k, v in differ.items() if v[0] != v[1]} }"
            )
        time.sleep(0.1)


def test_every_count_prometheus_scrapes_equals_what_the_rows_give(stack: Stack) -> None:
    project = stack.root
    prepared = load_prepared(project / "data" / "prepared")
    schema = prepared.meta.schema
    features, label, positive = list(schema.features), schema.label, schema.positive_label
    profile = _profile(project)
    params = load_params(project / "params.yaml")
    rows = _rows(project)
    stable_rows, canary_rows = rows.iloc[:ROWS], rows.iloc[ROWS:]

    model = tracking.load_model(project / "models" / "model")
    column = [str(c) for c in model.classes_].index(positive)
    scores = model.predict_proba(stable_rows[features])[:, column]
    predicted = np.where(scores >= params.evaluate.threshold, positive, schema.negative_label)
    truth = stable_rows[label].astype(str).to_numpy()

    for start in range(0, ROWS, PER_REQUEST):
        chunk = stable_rows.iloc[start : start + PER_REQUEST]
        request = _request(chunk, features)
        status, response = post(f"{stack.stable.url}/api/v1.0/predictions", request)
        assert status == 200, response
        truths = [[str(t)] for t in chunk[label]]
        status, answer = post(
            f"{stack.stable.url}/api/v1.0/feedback", feedback_body(request, response, truths)
        )
        assert status == 200, answer
    bad = feedback_body(_request(stable_rows.iloc[:2], features), {}, [["maybe"], ["1"]])
    status, answer = post(f"{stack.stable.url}/api/v1.0/feedback", bad)
    assert 400 <= status < 500, answer
    status, _ = post(f"{stack.canary.url}/api/v1.0/predictions", _request(canary_rows, features))
    assert status == 200
    last_request = time.monotonic()

    expected_bins = _expected_bins(stable_rows, profile)
    assert any(b == UNSEEN for _, b in expected_bins), "the unseen category is in the rows"

    def bins() -> dict[tuple[str, ...], float]:
        # The server starts every series at 0 (so that rates exist from the start): compare
        # the bins that counted something.
        promql = 'sum by (feature, bin) (modelops_feature_bin_total{track="stable"}) > 0'
        return _by(stack, ("feature", "bin"), promql)

    _eventually(bins, {key: float(n) for key, n in expected_bins.items()}, within=3.0)
    assert time.monotonic() - last_request <= 3.0, "current within 2 s, plus one 1 s scrape"

    outcomes = _by(
        stack,
        ("endpoint", "outcome"),
        'sum by (endpoint, outcome) (modelops_requests_total{track="stable"})',
    )
    assert outcomes.pop(("predict", "ok")) == ROWS / PER_REQUEST
    assert outcomes.pop(("feedback", "ok")) == ROWS / PER_REQUEST
    ((endpoint, reason), refused) = outcomes.popitem()
    assert (endpoint, refused) == ("feedback", 1.0), "the bad truth, by its reason"
    assert reason != "ok"
    assert not outcomes
    rows_ok = 'sum(modelops_rows_total{track="stable",endpoint="predict",outcome="ok"})'
    assert _by(stack, (), rows_ok) == {(): float(ROWS)}

    buckets = _by(stack, ("le",), 'sum by (le) (modelops_score_bucket{track="stable"})')
    for cut in SCORE_GRID:
        (found,) = [count for (le,), count in buckets.items() if le != "+Inf" and float(le) == cut]
        assert found == float(np.sum(scores <= cut)), f"le={cut}"
    assert buckets[("+Inf",)] == ROWS

    classes = _by(stack, ("class",), 'sum by (class) (modelops_predictions_total{track="stable"})')
    assert classes == {(c,): float(n) for c, n in Counter(predicted.tolist()).items()}

    confusion = _by(
        stack,
        ("actual", "predicted"),
        'sum by (actual, predicted) (modelops_feedback_rows_total{track="stable"})',
    )
    expected = Counter(zip(truth.tolist(), predicted.tolist(), strict=True))
    assert confusion == {key: float(n) for key, n in expected.items()}, "the bad truth adds none"

    business = params.monitoring.business
    assert business is not None
    value = business.server_value()
    outcome = {
        (True, True): "true_positive",
        (False, True): "false_positive",
        (False, False): "true_negative",
        (True, False): "false_negative",
    }
    worth = [
        value[outcome[(t == positive, p == positive)]]
        for t, p in zip(truth, predicted, strict=True)
    ]
    gained = sum(w for w in worth if w > 0)
    cost = -sum(w for w in worth if w < 0)
    signs = _by(stack, ("sign",), 'sum by (sign) (modelops_business_value_total{track="stable"})')
    assert signs.get(("gain",), 0.0) == pytest.approx(gained)
    assert signs.get(("cost",), 0.0) == pytest.approx(cost)

    canary = 'sum(modelops_rows_total{track="canary",endpoint="predict",outcome="ok"})'
    # The canary's request came last: it too is current within the same bound.
    _eventually(lambda: _by(stack, (), canary), {(): float(CANARY_ROWS)}, within=3.0)
    info = _query(stack, 'modelops_model_info{track="stable"}')
    assert [r["metric"]["model_hash"] for r in info] == [stack.stable.model_hash]

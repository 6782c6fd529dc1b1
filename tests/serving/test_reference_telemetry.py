"""The series the server derives from the reference profile, scraped from the real microservice.

Given the trained model's profile.json, read here as plain JSON (not through either package's
reader), and a server at a deployment threshold that is not the default 0.5:

- the reference gauges (`modelops_reference_*`) are exactly the file's numbers, one series each,
  whatever the number of workers;
- `modelops_score_bin_total` counts each row's score in the bin its cut closes (upper bound
  included, `bisect_left`), and `modelops_score_bucket` counts them on the fixed grid;
- the feedback's confusion cells and `modelops_predictions_total{positive}` are the ones this
  test computes from the scores the server answered, at the deployment threshold;
- a profile whose shares are not shares is refused naming the file and the field, and the model
  is served without the profile's series (as for any broken profile, `ProfileError`).

A second server, on a copy of the model whose profile's score cuts (and whose threshold) are
scores the first one answered, puts each score lying on a cut into the bin that cut closes, and
counts a score equal to the threshold as positive, in predictions and in feedback alike.
"""

from __future__ import annotations

import bisect
import copy
import json
import math
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modelops_contract import SCORE_GRID
from modelops_serving.launch import PARAMETERS_ENV, Server
from modelops_serving.profile import ProfileError, parse_profile

from modelops.data import features
from modelops.prepared import load_prepared
from tests.serving.conftest import SERVING_BIN
from tests.serving.test_telemetry import (
    Samples,
    _buckets,
    _le,
    _scrape,
    _series,
    _value,
    content_version,
)

ROWS = 120
# Batches of every size the server counts differently: numpy (16 rows or more), plain Python
# (2 to 15) and one row.
BATCHES = [(0, 40), (40, 47), (47, 55), (55, 56), (56, 57), (57, 58), (58, ROWS)]
CELLS = ("true_positive", "false_positive", "true_negative", "false_negative")
PROFILE_SERIES = (
    "modelops_reference_share",
    "modelops_reference_missing_ratio",
    "modelops_reference_score_share",
    "modelops_reference_metric",
    "modelops_feature_bin_total",
    "modelops_score_bin_total",
)
Labels = frozenset[tuple[str, str]]


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> dict[str, Any]:
    """profile.json as JSON, nothing more."""
    loaded: dict[str, Any] = json.loads((model_dir / "profile.json").read_text())
    return loaded


@pytest.fixture(scope="module")
def threshold(reference: dict[str, Any]) -> float:
    """The deployment's threshold: the middle score cut, about half the rows positive."""
    cuts = reference["score"]["cuts"]
    chosen = float(cuts[len(cuts) // 2])
    assert chosen != 0.5
    return chosen


def _parameters(threshold: float) -> dict[str, str]:
    value = [{"name": "threshold", "type": "FLOAT", "value": repr(threshold)}]
    return {PARAMETERS_ENV: json.dumps(value)}


@pytest.fixture(scope="module")
def server(
    model_dir: Path, threshold: float, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("reference") / "server.log"
    running = Server(
        SERVING_BIN, model_dir, workers=2, log_file=log, extra_env=_parameters(threshold)
    )
    running.start()
    try:
        yield running
    finally:
        assert running.stop() == 0, log.read_text()[-2000:]


@pytest.fixture(scope="module")
def rows(served_project: Path) -> tuple[list[str], list[list[Any]]]:
    prepared = load_prepared(served_project / "data" / "prepared")
    frame = features(prepared.test, prepared.schema).head(ROWS)
    assert len(frame) == ROWS
    table = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return list(frame.columns), table


def _predict(
    server: Server, names: list[str], table: list[list[Any]], positive: str
) -> list[float]:
    """The positive-class score the server answers for each row, sent in `BATCHES`."""
    return _scores(_answers(server, names, table), positive)


def _answers(server: Server, names: list[str], table: list[list[Any]]) -> list[dict[str, Any]]:
    """The server's answer to each batch of `BATCHES` (feedback sends them back)."""
    answers = []
    for start, stop in BATCHES:
        status, body = server.post({"data": {"names": names, "ndarray": table[start:stop]}})
        assert status == 200, body
        answers.append(body)
    return answers


def _scores(answers: list[dict[str, Any]], positive: str) -> list[float]:
    scores: list[float] = []
    for answer in answers:
        column = answer["data"]["names"].index(positive)
        scores.extend(float(row[column]) for row in answer["data"]["ndarray"])
    assert len(scores) == ROWS
    return scores


def _by(samples: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(dict(labels)[k] for k in keys): value
        for labels, value in _series(samples, name).items()
    }


def _delta(before: Samples, after: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    old = _by(before, name, *keys)
    return {key: value - old.get(key, 0.0) for key, value in _by(after, name, *keys).items()}


def _score_bins(cuts: list[float], scores: list[float]) -> dict[str, int]:
    """Rows per score bin, every bin: b_i holds (cuts[i-1], cuts[i]], the last one above all."""
    counted = Counter(bisect.bisect_left(cuts, score) for score in scores)
    return {f"b{index:02d}": counted[index] for index in range(len(cuts) + 1)}


def _cell(actual: str, predicted_positive: bool, positive: str) -> str:
    if predicted_positive:
        return "true_positive" if actual == positive else "false_positive"
    return "false_negative" if actual == positive else "true_negative"


def _check_score_bins(
    before: Samples, after: Samples, cuts: list[float], scores: list[float]
) -> dict[str, float]:
    """The score-bin counter's increments are the scores' bins, and the histogram's buckets."""
    got = {
        key[0]: value
        for key, value in _delta(before, after, "modelops_score_bin_total", "bin").items()
    }
    assert got == _score_bins(cuts, scores), "every bin has a series, each the rows in it"
    assert sum(got.values()) == len(scores)
    old = {_le(k): v for k, v in _buckets(before, "modelops_score").items()}
    cumulative = {
        _le(k): v - old.get(_le(k), 0.0) for k, v in _buckets(after, "modelops_score").items()
    }
    bounds = [repr(float(c)) for c in SCORE_GRID] + ["+Inf"]
    assert set(cumulative) == set(bounds), "the histogram is on the fixed grid, whatever the cuts"
    assert cumulative == {
        b: float(sum(s <= float(b) for s in scores)) if b != "+Inf" else float(len(scores))
        for b in bounds
    }
    return got


def test_every_reference_gauge_is_the_profiles_number_exactly(
    server: Server, model_dir: Path, reference: dict[str, Any]
) -> None:
    samples = _scrape(server)
    version = content_version(model_dir)

    def keyed(**labels: str) -> Labels:
        return frozenset({"model_version": version, **labels}.items())

    shares: dict[Labels, float] = {}
    missing: dict[Labels, float] = {}
    for numeric in reference["numeric"]:
        assert len(numeric["shares"]) == len(numeric["cuts"]) + 1
        for index, share in enumerate(numeric["shares"]):
            shares[keyed(feature=numeric["name"], bin=f"b{index:02d}")] = share
        missing[keyed(feature=numeric["name"])] = numeric["missing"]
    for categorical in reference["categorical"]:
        name = categorical["name"]
        assert len(categorical["shares"]) == len(categorical["categories"])
        for category, share in zip(categorical["categories"], categorical["shares"], strict=True):
            shares[keyed(feature=name, bin=category)] = share
        shares[keyed(feature=name, bin="__other__")] = categorical["other_share"]
        shares[keyed(feature=name, bin="__unseen__")] = 0.0
        missing[keyed(feature=name)] = categorical["missing"]
    score = reference["score"]
    score_shares = {keyed(bin=f"b{i:02d}"): share for i, share in enumerate(score["shares"])}
    metrics = {keyed(metric=k): v for k, v in reference["expected"].items()}
    metrics[keyed(metric="predicted_positive_rate")] = score["positive_rate"]

    # One series per number (no `pid` label, no sum over the two workers), each exactly it.
    assert _series(samples, "modelops_reference_share") == shares
    assert _series(samples, "modelops_reference_missing_ratio") == missing
    assert _series(samples, "modelops_reference_score_share") == score_shares
    assert _series(samples, "modelops_reference_metric") == metrics
    assert len(score_shares) == len(score["cuts"]) + 1
    assert (
        metrics[keyed(metric="positive_rate")] != metrics[keyed(metric="predicted_positive_rate")]
    )
    assert any(v for v in missing.values()), "the profile has missing values to show"


def test_score_bins_count_each_score_in_the_bin_its_cut_closes(
    server: Server, reference: dict[str, Any], rows: tuple[list[str], list[list[Any]]]
) -> None:
    names, table = rows
    before = _scrape(server)
    scores = _predict(server, names, table, reference["positive_label"])
    after = _scrape(server)

    got = _check_score_bins(before, after, reference["score"]["cuts"], scores)
    assert sum(1 for v in got.values() if v) >= 5, f"the rows spread over the bins: {got}"


def test_feedback_cells_and_positive_predictions_are_at_the_deployment_threshold(
    server: Server,
    threshold: float,
    reference: dict[str, Any],
    rows: tuple[list[str], list[list[Any]]],
) -> None:
    names, table = rows
    positive = reference["positive_label"]
    truth = _truth(positive)
    before = _scrape(server)
    answers = _answers(server, names, table)
    scores = _scores(answers, positive)
    _send_feedback(server, names, table, truth, answers)
    after = _scrape(server)

    predicted = [score >= threshold for score in scores]
    assert sum(predicted) != sum(s >= 0.5 for s in scores), "the threshold is not the default's"
    cells = _check_cells(before, after, truth, predicted, positive)
    assert all(cells.values()), f"every cell has rows: {cells}"


def _truth(positive: str) -> list[str]:
    negative = "0" if positive == "1" else "1"
    return [positive if i % 3 == 0 else negative for i in range(ROWS)]


def _send_feedback(
    server: Server,
    names: list[str],
    table: list[list[Any]],
    truth: list[str],
    answers: list[dict[str, Any]],
) -> None:
    """The truth of every row, in `BATCHES`, as numbers and as strings in turn, each with the
    answer its batch got (`_answers`)."""
    for turn, ((start, stop), answer) in enumerate(zip(BATCHES, answers, strict=True)):
        labels = [[int(t)] if turn % 2 == 0 else [t] for t in truth[start:stop]]
        status, body = server.post_to(
            "/api/v1.0/feedback",
            {
                "request": {"data": {"names": names, "ndarray": table[start:stop]}},
                "response": answer,
                "truth": {"data": {"ndarray": labels}},
            },
        )
        assert status == 200, body


def _check_cells(
    before: Samples, after: Samples, truth: list[str], predicted: list[bool], positive: str
) -> dict[str, int]:
    """The feedback rows by cell and the predictions by `positive` are the ones computed here
    from `truth` and `predicted` (the rows predicted positive, each sent once to both)."""
    expected = Counter(_cell(a, p, positive) for a, p in zip(truth, predicted, strict=True))
    rows_by = _delta(before, after, "modelops_feedback_rows_total", "actual", "predicted", "cell")
    by_cell: Counter[str] = Counter()
    for (actual, predicted_class, cell), count in rows_by.items():
        assert cell == _cell(actual, predicted_class == positive, positive), (actual, cell)
        by_cell[cell] += int(count)
    assert len(rows_by) == 4, "one series per (actual, predicted), each with its cell"
    assert {c: by_cell[c] for c in CELLS} == {c: expected[c] for c in CELLS}

    negative = next(t for t in truth if t != positive)
    predictions = _delta(before, after, "modelops_predictions_total", "class", "positive")
    assert predictions == {
        (positive, "true"): sum(predicted),
        (negative, "false"): len(predicted) - sum(predicted),
    }
    total = _value(after, "modelops_predictions_total", positive="true")
    assert total == _value(after, "modelops_predictions_total", **{"class": positive})
    return {c: expected[c] for c in CELLS}


# A copy of the model whose profile's score cuts, and the deployment threshold, are scores the
# server answers: a score on a cut is in the bin the cut closes, a score on the threshold is
# positive.


@pytest.fixture(scope="module")
def on_the_cuts(
    server: Server,
    model_dir: Path,
    reference: dict[str, Any],
    rows: tuple[list[str], list[list[Any]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[float], float]:
    names, table = rows
    scores = _predict(server, names, table, reference["positive_label"])
    distinct = sorted(set(scores))
    cuts = [distinct[int(q * (len(distinct) - 1))] for q in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert len(set(cuts)) == len(cuts)
    doctored = copy.deepcopy(reference)
    doctored["score"]["cuts"] = cuts
    doctored["score"]["shares"] = [0.1, 0.2, 0.2, 0.2, 0.2, 0.1]
    copied = tmp_path_factory.mktemp("on-the-cuts") / "model"
    shutil.copytree(model_dir, copied)
    (copied / "profile.json").write_text(json.dumps(doctored))
    return copied, cuts, cuts[2]


def test_a_score_on_a_cut_is_in_the_bin_it_closes_and_on_the_threshold_positive(
    on_the_cuts: tuple[Path, list[float], float],
    reference: dict[str, Any],
    rows: tuple[list[str], list[list[Any]]],
    tmp_path: Path,
) -> None:
    model, cuts, threshold = on_the_cuts
    names, table = rows
    positive = reference["positive_label"]
    with Server(
        SERVING_BIN,
        model,
        workers=1,
        log_file=tmp_path / "cuts.log",
        extra_env=_parameters(threshold),
    ) as running:
        before = _scrape(running)
        answers = _answers(running, names, table)
        scores = _scores(answers, positive)
        _send_feedback(running, names, table, _truth(positive), answers)
        after = _scrape(running)
    on_cuts = [s for s in scores if s in cuts]
    assert len(on_cuts) >= len(cuts), "every cut is some row's score"
    assert threshold in scores

    got = _check_score_bins(before, after, cuts, scores)
    below = Counter(bisect.bisect_right(cuts, s) for s in scores)
    assert got != {f"b{i:02d}": below[i] for i in range(len(cuts) + 1)}, "bisect_right differs"
    assert _series(after, "modelops_reference_score_share") == {
        frozenset({"model_version": content_version(model), "bin": f"b{i:02d}"}.items()): share
        for i, share in enumerate([0.1, 0.2, 0.2, 0.2, 0.2, 0.1])
    }
    _check_cells(before, after, _truth(positive), [s >= threshold for s in scores], positive)


# A profile whose shares are not shares: the server says which file and which field, and serves
# without the profile's series, as it does for any profile it cannot bin with.


def _broken(reference: dict[str, Any], change: str) -> dict[str, Any]:
    broken = copy.deepcopy(reference)
    numeric, categorical = broken["numeric"][0], broken["categorical"][0]
    if change == "numeric shares too short":
        numeric["shares"] = numeric["shares"][:-1]
    elif change == "numeric share above 1":
        numeric["shares"][1] = 1.5
    elif change == "score share negative":
        broken["score"]["shares"][0] = -0.1
    elif change == "score shares too long":
        broken["score"]["shares"].append(0.0)
    elif change == "score share NaN":
        broken["score"]["shares"][3] = math.nan
    elif change == "categorical shares too short":
        categorical["shares"] = categorical["shares"][:-1]
    elif change == "categorical other_share above 1":
        categorical["other_share"] = 1.25
    else:
        raise AssertionError(change)
    return broken


def _field(reference: dict[str, Any], change: str) -> str:
    """What the refusal must say: the field, and what it must be."""
    numeric, categorical = reference["numeric"][0], reference["categorical"][0]
    if change.startswith("numeric"):
        return f"the numeric {numeric['name']} shares must be {len(numeric['cuts']) + 1} numbers"
    if change.startswith("score"):
        return f"the score shares must be {len(reference['score']['cuts']) + 1} numbers"
    if change.startswith("categorical shares"):
        count = len(categorical["categories"])
        return f"the categorical {categorical['name']} shares must be {count} numbers"
    return f"the categorical {categorical['name']} other_share must be a number in [0, 1]"


BROKEN = [
    "numeric shares too short",
    "numeric share above 1",
    "score share negative",
    "score shares too long",
    "score share NaN",
    "categorical shares too short",
    "categorical other_share above 1",
]


@pytest.mark.parametrize("change", BROKEN)
def test_shares_that_are_not_shares_are_refused_naming_the_file_and_field(
    reference: dict[str, Any], change: str
) -> None:
    raw = json.dumps(_broken(reference, change)).encode()
    with pytest.raises(ProfileError) as caught:
        parse_profile(raw, where="/models/m/profile.json")
    message = str(caught.value)
    assert message.startswith("/models/m/profile.json: "), message
    assert _field(reference, change) in message, message
    parse_profile(json.dumps(reference).encode(), where="profile.json")  # the original is fine


def test_a_server_with_such_a_profile_says_so_and_serves_without_its_series(
    model_dir: Path,
    reference: dict[str, Any],
    rows: tuple[list[str], list[list[Any]]],
    tmp_path: Path,
) -> None:
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    (broken / "profile.json").write_text(json.dumps(_broken(reference, "score share negative")))
    names, table = rows
    log = tmp_path / "broken.log"
    with Server(SERVING_BIN, broken, workers=1, log_file=log) as running:
        status, _ = running.post({"data": {"names": names, "ndarray": table[:5]}})
        samples = _scrape(running)
    assert status == 200
    assert _value(samples, "modelops_predictions_total") == 5
    for name in PROFILE_SERIES:
        assert not _series(samples, name), name
    output = log.read_text()
    refusal = f"{broken / 'profile.json'}: {_field(reference, 'score share negative')} in [0, 1]"
    assert output.count(refusal) == 1, output[-3000:]
    assert "serving without per-feature and score-bin metrics" in output


def test_the_judge_knows_the_servers_score_grid() -> None:
    """The server's score histogram is on the contract's grid (scraped: `_check_score_bins`);
    the monitor's replay of a window (`window_of`) bins on that same grid."""
    from modelops.monitoring import windows

    assert vars(windows)["SCORE_GRID"] is SCORE_GRID, "one grid: the contract's"
    assert tuple(round(step / 20, 2) for step in range(1, 21)) == SCORE_GRID, "20 equal buckets"

"""A/B experiments in the real microservice over loopback: sticky units, each row its variant's.

Two models: the shared trained model is `stable`, and the candidate `b` is that model with its
trees' starting log-odds raised by 1 (no training: every score differs, the inputs are the
same). Two replicas are started with one `experiment` parameter and one feedback key; `b`'s
directory is given relative to the replicas' model_uri, stable's absolutely.

- Every unit gets the same variant and model_version from either replica, from a replica
  restarted, and from the contract's `assign`; 42, 42.0 and "42" are one unit.
- A request mixing units gets each row's probabilities from its variant's model alone, and the
  row's variant and version in `meta.tags` (a form seldon-core's protobuf takes as it is).
- Rows without a unit go to stable and are counted `assigned="false"`.
- /prometheus counts each variant's rows, requests and units under its model_version.
- Feedback to the other replica rescored each row with its variant: its confusion cells and
  covariate sums are counted there; a request whose units changed is refused.
- A bad experiment stops the server before it is ready, its log naming the fix; a unit of an
  unsupported type gets a 400 naming the row.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modelops_contract import (
    EXPERIMENT_SERIES,
    FEEDBACK_KEY_ENV,
    PID,
    Experiment,
    GaugeSeries,
    assign,
)
from modelops_serving.launch import PARAMETERS_ENV, Server
from prometheus_client.parser import text_string_to_metric_families

from modelops.data import features
from modelops.prepared import load_prepared
from tests.serving.conftest import SERVING_BIN
from tests.serving.experiment_models import COVARIATE, UNIT
from tests.serving.experiment_models import alone as _alone
from tests.serving.test_telemetry import SETTLE_SECONDS, Samples, _scrape, _value

FEEDBACK_KEY = "tests-only-experiment-key-0123456789abcdef"
Replicas = dict[str, Server]


def _replica(models: Path, raw: str, log: Path, *, workers: int = 1) -> Server:
    parameters = [{"name": "experiment", "type": "STRING", "value": raw}]
    return Server(
        SERVING_BIN,
        models,
        workers=workers,
        log_file=log,
        extra_env={PARAMETERS_ENV: json.dumps(parameters), FEEDBACK_KEY_ENV: FEEDBACK_KEY},
    )


@pytest.fixture(scope="module")
def replicas(
    models: Path, experiment: Experiment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    """Replica `a` (two workers) and `b` (one: its unit counts are exact)."""
    logs = tmp_path_factory.mktemp("replicas")
    running: Replicas = {}
    try:
        for name, workers in (("a", 2), ("b", 1)):
            running[name] = _replica(
                models, experiment.to_json(), logs / f"{name}.log", workers=workers
            )
            running[name].start()
        yield running
    finally:
        for server in running.values():
            server.stop()


@pytest.fixture(scope="module")
def rows(served_project: Path) -> tuple[list[str], list[list[Any]]]:
    prepared = load_prepared(served_project / "data" / "prepared")
    frame = features(prepared.test, prepared.schema).head(60)
    table = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    return list(frame.columns), table


def _request(
    names: list[str],
    table: list[list[Any]],
    units: list[Any],
    covariates: list[Any] | None = None,
) -> dict[str, Any]:
    """Rows of `table` (cycled), each with its unit (and covariate) as the last values."""
    extra = [UNIT] if covariates is None else [UNIT, COVARIATE]
    rows = []
    for index, unit in enumerate(units):
        values = [unit] if covariates is None else [unit, covariates[index]]
        rows.append(list(table[index % len(table)]) + values)
    return {"data": {"names": names + extra, "ndarray": rows}}


def _post(server: Server, request: dict[str, Any]) -> dict[str, Any]:
    status, answer = server.post(request)
    assert status == 200, answer
    return dict(answer)


def _variants(server: Server, request: dict[str, Any]) -> tuple[list[str], list[str]]:
    tags = _post(server, request)["meta"]["tags"]
    return list(tags["variants"]), list(tags["model_versions"])


def _delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return _value(after, name, **labels) - _value(before, name, **labels)


def test_every_replica_and_a_restart_give_each_unit_the_same_variant(
    replicas: Replicas,
    experiment: Experiment,
    models: Path,
    rows: tuple[list[str], list[list[Any]]],
    tmp_path: Path,
) -> None:
    names, table = rows
    units = [f"customer-{index}" for index in range(120)]
    expected = [assign(u, salt=experiment.salt, split=experiment.split) for u in units]
    version = {v.name: v.model_version for v in experiment.variants}
    seen: dict[str, list[str]] = {}
    for name, server in replicas.items():
        got, versions = [], []
        for start in range(0, len(units), 40):
            variants, batch_versions = _variants(
                server, _request(names, table, units[start : start + 40])
            )
            got += variants
            versions += batch_versions
        assert versions == [version[v] for v in got], name
        seen[name] = got
    assert seen["a"] == seen["b"] == expected
    assert 0.3 < expected.count("b") / len(expected) < 0.7, "both variants have units"
    # One unit however a client spells it.
    spelled, _ = _variants(replicas["a"], _request(names, table, [42, 42.0, "42"]))
    assert len(set(spelled)) == 1
    # A replica restarted: a new process with the same parameter.
    assert replicas["b"].stop() == 0
    replicas["b"] = _replica(models, experiment.to_json(), tmp_path / "restarted.log")
    replicas["b"].start()
    again, _ = _variants(replicas["b"], _request(names, table, units))
    assert again == expected
    status, metadata = replicas["b"].get("/api/v1.0/metadata")
    assert status == 200
    assert metadata["versions"] == ["v-stable", "v-b"]
    assert metadata["custom"]["experiment_unit"] == UNIT


def test_a_request_mixing_units_gets_each_rows_scores_from_its_variants_model_alone(
    replicas: Replicas,
    experiment: Experiment,
    model_dir: Path,
    models: Path,
    rows: tuple[list[str], list[list[Any]]],
) -> None:
    names, table = rows
    units = [f"mixed-{index}" for index in range(40)]
    answer = _post(replicas["a"], _request(names, table[:40], units))
    variants = answer["meta"]["tags"]["variants"]
    assert set(variants) == {"stable", "b"}
    stable_alone, b_alone = (
        _alone(model_dir, names, table[:40]),
        _alone(models / "b", names, table[:40]),
    )
    expected = np.where(np.array(variants)[:, None] == "b", b_alone, stable_alone)
    np.testing.assert_allclose(answer["data"]["ndarray"], expected, rtol=1e-12, atol=0)
    of_b = np.array(variants) == "b"
    assert np.all(np.abs(stable_alone[of_b] - b_alone[of_b]) > 1e-3), "the two models differ"
    # The tags as seldon-core's protobuf (SeldonMessage.meta.tags, a map of Values) reads them:
    # lists pass unchanged, as the Seldon executor parses a model's answer.
    parsed = subprocess.run(
        [str(SERVING_BIN / "python"), "-c", PARSE_WITH_SELDON_PROTOBUF],
        input=json.dumps(answer),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(parsed.stdout) == answer["meta"]["tags"]


PARSE_WITH_SELDON_PROTOBUF = """
import json, sys
from google.protobuf import json_format
from seldon_core.proto import prediction_pb2
message = json_format.ParseDict(json.load(sys.stdin), prediction_pb2.SeldonMessage())
print(json.dumps(json_format.MessageToDict(message)["meta"]["tags"]))
"""


def test_rows_without_a_unit_go_to_stable_and_are_counted_apart(
    replicas: Replicas, experiment: Experiment, rows: tuple[list[str], list[list[Any]]]
) -> None:
    names, table = rows
    server = replicas["a"]
    before = _scrape(server)
    units: list[Any] = [None, "with-a-unit", float("nan"), ""]
    variants, _ = _variants(server, _request(names, table, units))
    own = assign("with-a-unit", salt=experiment.salt, split=experiment.split)
    assert variants == ["stable", own, "stable", "stable"]
    no_field = {"data": {"names": names, "ndarray": table[:5]}}
    no_names = {"data": {"ndarray": table[5:7]}}
    for request in (no_field, no_names):
        assert set(_post(server, request)["meta"]["tags"]["variants"]) == {"stable"}
    after = _scrape(server)
    name = "modelops_experiment_assignments_total"
    unassigned = _delta(after, before, name, endpoint="predict", assigned="false")
    assert unassigned == 3 + 5 + 2
    assert _delta(after, before, name, endpoint="predict", variant="stable", assigned="false") == 10
    assert _delta(after, before, name, endpoint="predict", assigned="true") == 1
    assert _delta(after, before, name, endpoint="predict", variant=own, assigned="true") == 1


def test_each_variants_rows_requests_and_units_are_counted_under_its_version(
    replicas: Replicas, experiment: Experiment, rows: tuple[list[str], list[list[Any]]]
) -> None:
    names, table = rows
    server = replicas["b"]  # one worker: each unit is counted once
    before = _scrape(server)
    units = [f"counted-{index}" for index in range(40)]
    requests = [units[:20], units[20:], units]  # every unit twice
    sent = [_variants(server, _request(names, table, batch))[0] for batch in requests]
    after = _scrape(server)
    for variant in experiment.variants:
        rows_of = sum(batch.count(variant.name) for batch in sent)
        units_of = sent[-1].count(variant.name)
        touched = sum(variant.name in batch for batch in sent)
        labels = {"model_version": variant.model_version}
        assert rows_of == 2 * units_of > 0
        assert _delta(after, before, "modelops_predictions_total", **labels) == rows_of
        assert _delta(after, before, "modelops_score_count", **labels) == rows_of
        assert (
            _delta(
                after,
                before,
                "modelops_experiment_assignments_total",
                variant=variant.name,
                endpoint="predict",
                assigned="true",
                **labels,
            )
            == rows_of
        )
        assert (
            _delta(after, before, "modelops_experiment_units_total", variant=variant.name, **labels)
            == units_of
        ), "a unit is counted the first time the process sees it"
        ok = {"endpoint": "predict", "outcome": "ok", **labels}
        assert _delta(after, before, "modelops_requests_total", **ok) == touched
        assert _delta(after, before, "modelops_rows_total", **ok) == rows_of
        assert (
            _delta(
                after,
                before,
                "modelops_request_duration_seconds_count",
                endpoint="predict",
                **labels,
            )
            == touched
        )
        info = [
            dict(found)
            for (name, found) in after
            if name == "modelops_model_info"
            and dict(found)["model_version"] == variant.model_version
        ]
        assert [i["model_hash"] for i in info] == [variant.model_hash]


def test_the_experiment_series_are_exposed_as_the_contract_declares_them(
    replicas: Replicas, experiment: Experiment
) -> None:
    """Each family of its kind and labels; one processes sample per worker, each 1."""
    time.sleep(SETTLE_SECONDS)
    for name, workers in (("a", 2), ("b", 1)):
        with urllib.request.urlopen(replicas[name].metrics_url, timeout=10) as page:
            text = page.read().decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        for series in EXPERIMENT_SERIES:
            family = families.get(series.family) or families[series.name]
            assert family.type == series.kind, series.name
            extra = {PID} if isinstance(series, GaugeSeries) and series.per_process else set()
            for sample in family.samples:
                assert set(sample.labels) == set(series.labels) | extra, sample
        processes = families["modelops_experiment_processes"].samples
        assert [s.value for s in processes] == [1.0] * workers, processes
        assert {s.labels["model_version"] for s in processes} == {"v-stable"}


def test_feedback_rescores_each_row_with_its_variant_and_sums_the_covariate(
    replicas: Replicas,
    experiment: Experiment,
    model_dir: Path,
    models: Path,
    rows: tuple[list[str], list[list[Any]]],
) -> None:
    names, table = rows
    units: list[Any] = [f"feedback-{index}" for index in range(30)]
    units[1] = None  # stable's, outside the comparison: in stable's usual series only
    covariates: list[Any] = [None if i % 7 == 0 else (i - 10) * 1.5 for i in range(30)]
    request = _request(names, table, units, covariates)
    answer = _post(replicas["a"], request)
    truth = ["1" if index % 3 == 0 else "0" for index in range(30)]
    feedback = {"request": request, "response": answer, "truth": {"data": {"ndarray": truth}}}
    server = replicas["b"]  # the other replica: the same key verifies the answer
    moved = json.loads(json.dumps(request))
    moved["data"]["ndarray"][0][-2] = "someone-else"
    status, refused = server.post_to("/api/v1.0/feedback", {**feedback, "request": moved})
    assert status == 403, refused
    assert "not an answer this deployment gave" in refused["status"]["info"]
    before = _scrape(server)
    status, body = server.post_to("/api/v1.0/feedback", feedback)
    assert status == 200, body
    after = _scrape(server)

    # Each row's score by its variant's model alone, at the default threshold 0.5.
    variants = np.array(answer["meta"]["tags"]["variants"])
    alone = {
        "stable": _alone(model_dir, names, table[:30]),
        "b": _alone(models / "b", names, table[:30]),
    }
    scores = np.where(variants == "b", alone["b"][:, 1], alone["stable"][:, 1])
    actual, predicted = np.array(truth) == "1", scores >= 0.5
    cell = np.where(
        predicted,
        np.where(actual, "true_positive", "false_positive"),
        np.where(actual, "false_negative", "true_negative"),
    )
    values = np.array([np.nan if c is None else c for c in covariates], dtype=float)
    with_unit = np.array([unit is not None for unit in units])
    assert set(variants) == {"stable", "b"}
    assert variants[1] == "stable"
    for variant in experiment.variants:
        of_variant = variants == variant.name
        mine = of_variant & with_unit
        labels = {"model_version": variant.model_version}
        fed = {"endpoint": "feedback", "variant": variant.name, **labels}
        assigned = _delta(
            after, before, "modelops_experiment_assignments_total", assigned="true", **fed
        )
        assert assigned == mine.sum()
        for name in ("true_positive", "false_positive", "true_negative", "false_negative"):
            chosen = mine & (cell == name)
            counted = _delta(after, before, "modelops_feedback_rows_total", cell=name, **labels)
            assert counted == (of_variant & (cell == name)).sum(), (variant.name, name)
            by_cell = {"variant": variant.name, "cell": name, **labels}
            compared = _delta(after, before, "modelops_experiment_feedback_rows_total", **by_cell)
            assert compared == chosen.sum(), (variant.name, name)
            known = values[chosen & ~np.isnan(values)]
            covariate = "modelops_experiment_covariate_total"
            assert _delta(after, before, "modelops_experiment_covariate_rows_total", **by_cell) == (
                known.size
            )
            assert _delta(after, before, covariate, sign="positive", **by_cell) == pytest.approx(
                known[known > 0].sum()
            )
            assert _delta(after, before, covariate, sign="negative", **by_cell) == pytest.approx(
                -known[known < 0].sum()
            )
            assert _delta(
                after, before, "modelops_experiment_covariate_squares_total", **by_cell
            ) == pytest.approx(np.square(known).sum())
    unassigned = {"endpoint": "feedback", "variant": "stable", "assigned": "false"}
    assert _delta(after, before, "modelops_experiment_assignments_total", **unassigned) == 1
    assert _delta(after, before, "modelops_requests_total", endpoint="feedback", outcome="ok") == 2


@pytest.mark.parametrize(
    ("change", "messages"),
    [
        (
            lambda e: e["variants"][1].update(share=40),
            ["the shares sum to 90; they must sum to 100 (percent of the units): change them"],
        ),
        (
            lambda e: e["variants"][1].update(model_hash=e["variants"][0]["model_hash"]),
            [
                "experiment variant 'b': {b}: content hash {actual} does not match the expected "
                "{stable}",
                "Its directory must hold the published model {stable} (the variant's "
                "model_hash): deploy that model there, or correct the variant",
            ],
        ),
        (
            lambda e: e["variants"][1].update(directory="nowhere"),
            [
                "experiment variant 'b': {nowhere}",
                "deploy that model there, or correct the variant",
            ],
        ),
    ],
    ids=["shares", "hash mismatch", "missing directory"],
)
def test_a_bad_experiment_stops_the_server_naming_the_fix(
    models: Path, experiment: Experiment, tmp_path: Path, change: Any, messages: list[str]
) -> None:
    raw = json.loads(experiment.to_json())
    change(raw)
    log = tmp_path / "refused.log"
    server = _replica(models, json.dumps(raw), log)
    with pytest.raises(RuntimeError, match="the server exited with"):
        server.start(ready_within=60)
    text = log.read_text(errors="replace")
    assert "ModelLoadError" in text
    names = {
        "stable": experiment.variants[0].model_hash,
        "actual": experiment.variants[1].model_hash,
        "b": models / "b",
        "nowhere": models / "nowhere",
    }
    for message in messages:
        assert message.format(**names) in text


def test_a_unit_or_covariate_of_an_unsupported_type_gets_a_400_naming_the_row(
    replicas: Replicas, rows: tuple[list[str], list[list[Any]]]
) -> None:
    names, table = rows
    server = replicas["a"]
    before = _scrape(server)
    status, body = server.post(_request(names, table, ["fine", {"id": 3}]))
    assert status == 400, body
    assert (
        "'data.ndarray[1]['customer_id']' is {'id': 3}: a unit is a string or a number, not an "
        "object" in body["status"]["info"]
    )
    status, body = server.post(_request(names, table, ["fine"], ["12.5"]))
    assert status == 400, body
    assert "the covariate is a number" in body["status"]["info"]
    after = _scrape(server)
    refused = {"endpoint": "predict", "model_version": "v-stable"}
    assert (
        _delta(after, before, "modelops_requests_total", outcome="unsupported_unit", **refused) == 1
    )
    assert (
        _delta(
            after, before, "modelops_requests_total", outcome="covariate_not_a_number", **refused
        )
        == 1
    )

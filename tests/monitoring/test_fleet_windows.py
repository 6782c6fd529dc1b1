"""How the monitor finds and reads each kind of environment, as tables (pure, but for a few
files in `tmp_path`): the selector, the queries of an edge window, the devices a window's
answers count, where an edge release's profile is read from, and what the report says."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from modelops.errors import MonitorError
from modelops.monitoring import report
from modelops.monitoring.decide import decide
from modelops.monitoring.drift import Window
from modelops.monitoring.monitor import JudgedWindow, Look, devices, load_profile, profile_sources
from modelops.monitoring.windows import to_window, trained_query, window_queries
from modelops.params import Params
from modelops.releases.state import Bundle, ModelVersion
from modelops.telemetry.profile import ReferenceProfile
from modelops.telemetry.selector import Selector, selector
from tests.deploy.fleet_support import DEVICES, EDGE
from tests.monitoring.test_drift_monitor import synthetic_profile
from tests.support import template_params

SHA = "b" * 64
HASH = "c" * 64


def _params() -> Params:
    declared = template_params()
    declared["deploy"]["environments"][DEVICES] = EDGE
    return Params.model_validate(declared)


PARAMS = _params()


@pytest.mark.parametrize(
    ("environment", "kind", "matchers"),
    [
        ("production", "pods", 'namespace="churn-production"'),
        ("staging", "pods", 'namespace="churn-staging"'),
        ("nightly", "batch", 'namespace="churn-batch", job="churn-nightly"'),
        (DEVICES, "edge", 'job="churn-devices"'),
    ],
)
def test_each_kind_of_environment_is_selected_by_the_labels_its_telemetry_carries(
    environment: str, kind: str, matchers: str
) -> None:
    found = selector(PARAMS.deploy, environment)
    assert (found.kind, found.matchers()) == (kind, matchers)
    queries = window_queries(found, "v9", "1d")
    assert all(matchers in query for query in queries.values()), queries
    assert (trained_query(found, "v9") is None) == (kind != "pods"), "only pods say their age"


# kind -> the counts a window reads (a batch run and a fleet send no feedback)
QUERIES = [
    ("pods", {"features", "scores", "grid", "cells", "labelled"}),
    ("batch", {"features", "scores"}),
    ("edge", {"features", "scores", "devices"}),
]


@pytest.mark.parametrize(("kind", "names"), QUERIES)
def test_a_window_reads_what_its_kind_of_environment_sends(kind: str, names: set[str]) -> None:
    environment = {"pods": "production", "batch": "nightly", "edge": DEVICES}[kind]
    assert set(window_queries(selector(PARAMS.deploy, environment), "v9", "1d")) == names


def test_an_edge_window_sums_the_stable_bundles_increase_over_devices() -> None:
    queries = window_queries(selector(PARAMS.deploy, DEVICES), "3f9c2a7d41b0", "1d")
    where = 'job="churn-devices", model_version="3f9c2a7d41b0", track="stable"'
    assert queries == {
        "features": f"sum by (feature, bin) (increase(modelops_edge_feature_bin_total{{{where}}}"
        "[1d]))",
        "scores": f"sum by (bin) (increase(modelops_edge_score_bin_total{{{where}}}[1d]))",
        "devices": f"sum by (device) (increase(modelops_edge_rows_total{{{where}}}[1d]))",
    }


def _sample(labels: dict[str, str], value: float) -> dict[str, Any]:
    return {"metric": labels, "value": [0, str(value)]}


# each device's increase over the window -> devices that reported, their rows
DEVICE_ROWS = [
    ({"a": 1200.0, "b": 800.0}, 2, 2000.0),
    ({"a": 1200.0, "b": 0.0}, 1, 1200.0),  # b pushed nothing new: its counts stood still
    ({"a": 0.0}, 0, 0.0),
    ({}, 0, 0.0),
    ({"a": 3.5, "b": -1.0}, 1, 3.5),  # a negative answer is no rows
]


@pytest.mark.parametrize(("rows", "reported", "total"), DEVICE_ROWS)
def test_a_device_counts_in_a_window_only_with_rows_in_it(
    profile: ReferenceProfile, rows: dict[str, float], reported: int, total: float
) -> None:
    answers = {"devices": [_sample({"device": d}, v) for d, v in rows.items()]}
    window = to_window(answers, profile, end=0.0, seconds=60.0)
    assert devices(window) == (reported, total)


def test_a_window_without_devices_answers_is_not_a_fleets(profile: ReferenceProfile) -> None:
    window = to_window({"features": [], "scores": []}, profile, end=0.0, seconds=60.0)
    assert devices(window) is None


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return synthetic_profile()


def _bundle_model(store: str = "model-store") -> ModelVersion:
    return ModelVersion(
        SHA[:12],
        f"{store}/bundles/{SHA}.tar.gz",
        HASH,
        "data",
        "commit",
        bundle=Bundle(sha256=SHA, format="onnx", name="churn"),
    )


# model -> where its profile is looked for, in order: (address, member of the archive)
SOURCES = [
    (
        ModelVersion("v3", f"model-store/churn/{HASH}", HASH, "d", "c"),
        ((f"model-store/churn/{HASH}/profile.json", None),),
    ),
    (
        _bundle_model(),
        (
            (f"model-store/bundles/{SHA}.tar.gz", "profile.json"),
            (f"model-store/churn/{HASH}/profile.json", None),
        ),
    ),
    (
        _bundle_model("s3://bucket/models"),
        (
            (f"s3://bucket/models/bundles/{SHA}.tar.gz", "profile.json"),
            (f"s3://bucket/models/churn/{HASH}/profile.json", None),
        ),
    ),
]


@pytest.mark.parametrize(("model", "sources"), SOURCES)
def test_an_edge_releases_profile_is_its_bundles_then_its_models(
    model: ModelVersion, sources: tuple[tuple[str, str | None], ...]
) -> None:
    store = model.model_uri.split("/bundles/")[0] if model.bundle else "model-store"
    assert profile_sources(model, store=store, name="churn") == sources


def _archive(path: Path, files: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        path.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w") as archive,
    ):
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_the_profile_is_read_from_the_bundle_else_from_the_model_it_was_exported_from(
    tmp_path: Path, profile: ReferenceProfile
) -> None:
    model = _bundle_model()
    archive = tmp_path / model.model_uri
    exported_from = tmp_path / "model-store" / "churn" / HASH / "profile.json"
    # Given neither: the error names both places and what to do
    with pytest.raises(MonitorError, match=r"holds no profile\.json, and the model .* --profile"):
        load_profile(tmp_path, model, None, deploy=PARAMS.deploy)
    # Given the model's directory in the store: read from there
    exported_from.parent.mkdir(parents=True)
    exported_from.write_bytes(profile.to_json())
    found, source = load_profile(tmp_path, model, None, deploy=PARAMS.deploy)
    assert (found, source) == (profile, f"model-store/churn/{HASH}/profile.json")
    # Given an archive without one: still the model's directory
    _archive(archive, {"manifest.json": b"{}"})
    assert load_profile(tmp_path, model, None, deploy=PARAMS.deploy)[1].endswith(
        HASH + "/profile.json"
    )
    # Given an archive that carries it: the bundle's own copy, what the devices bin by
    _archive(archive, {"manifest.json": b"{}", "profile.json": profile.to_json()})
    found, source = load_profile(tmp_path, model, None, deploy=PARAMS.deploy)
    assert (found, source) == (profile, f"profile.json in {model.model_uri}")


def _edge_look(profile: ReferenceProfile, rows: list[dict[str, float]]) -> Look:
    windows = [
        Window(end=60.0 * i, seconds=60.0, features={}, scores={}, devices=device_rows)
        for i, device_rows in enumerate(rows, start=1)
    ]
    judged = tuple(JudgedWindow(w, (), None) for w in windows)
    return Look(
        environment=DEVICES,
        model=_bundle_model(),
        profile_source="test",
        at=60.0 * len(rows),
        window="1m",
        label_delay=None,
        judged=judged,
        decision=decide(
            [() for _ in windows], breaches=1, retrain_on=[], age_days=None, max_age_days=90
        ),
        queries={},
        prometheus="http://127.0.0.1:9090",
        selector=Selector(DEVICES, "edge", (("job", "churn-devices"),)),
    )


def test_the_report_says_how_many_devices_reported_and_what_a_fleet_cannot_judge(
    profile: ReferenceProfile,
) -> None:
    look = _edge_look(profile, [{"a": 1500.0, "b": 500.0, "c": 10.0}, {"a": 700.4}])
    markdown = report.to_markdown(look)
    assert "| devices reporting | 3 (2010 rows) | 1 (700 rows) |" in markdown
    assert "one that has not reported within the window adds nothing" in markdown
    assert "job churn-devices, pushed by its devices to the Pushgateway" in markdown
    assert "Not judged here: devices send counts" in markdown
    assert "business value and latency are not judged" in markdown
    document = json.loads(report.to_json(look))
    assert [w["devices"] for w in document["windows"]] == [
        {"reported": 3, "rows": 2010},
        {"reported": 1, "rows": 700},
    ]
    assert document["kind"] == "edge"
    assert "recall, precision" in document["not_judged"]
    text = report.to_text(look, 0.1)
    assert "devices/rows       3/2010 1/700" in text
    assert "not judged: devices send counts" in text
    assert f"for model_version {SHA[:12]} in job churn-devices" in (document["warning"] or "")

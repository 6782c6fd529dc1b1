"""The monitor judges a fleet from what its devices pushed: real devices are stood in for by
this test, which pushes each device's counts in Prometheus's text format with the contract's
names (`modelops_contract.edge`) to a real Pushgateway under job=`edge_job(...)`,
device=<its id>; a real Prometheus scrapes the gateway every second with honor_labels; the
monitor's own look reads and judges the windows.

Both servers listen on loopback ports of their own and are stopped by the PIDs this test
started. Three edge environments are pushed in one timeline of about 15 seconds, each a story:
`devices` (rows like the profile's; one device stops reporting), `tills` (one feature moved on
every device) and `gateways` (too few rows). The monitor's windows are 8 seconds here, two of
them; the last test runs `modelops monitor` itself on the same timeline.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import tarfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from modelops_contract import BIN, FEATURE, MODEL_VERSION, edge
from modelops_contract.fleet import F_STABLE

from modelops.cli import main
from modelops.monitoring import monitor
from modelops.monitoring.monitor import Look
from modelops.monitoring.windows import window_of
from modelops.params import Params
from modelops.releases import state
from modelops.releases.files import release_file, release_text
from modelops.releases.state import Bundle, ModelVersion, Release
from modelops.synth import generate_churn
from modelops.telemetry.profile import PROFILE_FILE, ReferenceProfile
from modelops.telemetry.prometheus import Prometheus
from tests.deploy.fleet_support import EDGE
from tests.monitoring.test_drift_monitor import _scores, synthetic_profile
from tests.pushgateway import pushgateway_and_prometheus
from tests.support import template_params

WINDOW_SECONDS = 8
BUNDLE = "3f9c2a7d41b0" + "5" * 52
"""The stable bundle's archive sha256; its first 12 characters are its model version."""
VERSION = BUNDLE[:12]
DRIFT_CRITERIA = ("feature_drift", "score_drift", "missing_values", "unseen_categories")


SCRAPED = 'up{job="pushgateway"} == 1'


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(Pushgateway URL, Prometheus URL), once Prometheus has scraped the gateway: a device's
    zeros must be seen before its counts."""
    folder = tmp_path_factory.mktemp("fleet")
    with pushgateway_and_prometheus(
        folder, until=lambda url: bool(Prometheus(url).query(SCRAPED))
    ) as urls:
        yield urls


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return synthetic_profile()


class Device:
    """One device's counts since it installed the stable bundle, as it would keep them."""

    def __init__(self, environment: str, device_id: str) -> None:
        self.job = edge.edge_job("churn", environment)
        self.device_id = device_id
        self.rows = 0.0
        self.features: dict[tuple[str, str], float] = {}
        self.scores: dict[str, float] = {}

    def score(self, profile: ReferenceProfile, frame: pd.DataFrame) -> None:
        """Count `frame`'s rows in the profile's bins (the device's own binning, done here by
        the monitor's replay helper: the same bins)."""
        window = window_of(profile, frame, _scores(frame))
        self.rows += len(frame)
        for feature, bins in window.features.items():
            for label, count in bins.items():
                key = (feature, label)
                self.features[key] = self.features.get(key, 0.0) + count
        for label, count in window.scores.items():
            self.scores[label] = self.scores.get(label, 0.0) + count

    def exposition(self) -> str:
        """The push's body: Prometheus text format, the contract's series and labels."""
        base = {MODEL_VERSION: VERSION, edge.TRACK: F_STABLE}
        families = [
            (edge.ROWS, [(base, self.rows)]),
            (
                edge.FEATURE_BIN,
                [
                    ({**base, FEATURE: feature, BIN: label}, count)
                    for (feature, label), count in sorted(self.features.items())
                ],
            ),
            (
                edge.SCORE_BIN,
                [({**base, BIN: label}, count) for label, count in sorted(self.scores.items())],
            ),
            (edge.LAST_REPORT, [(base, time.time())]),
        ]
        lines = []
        for series, samples in families:
            name = series.family
            lines += [f"# HELP {name} {series.help}", f"# TYPE {name} {series.kind}"]
            lines += [f"{name}{{{_labels(labels)}}} {value:.17g}" for labels, value in samples]
        return "\n".join(lines) + "\n"

    def push(self, gateway: str) -> None:
        """PUT: the device's group is replaced by its current counts."""
        url = f"{gateway}/metrics/job/{self.job}/{edge.DEVICE}/{self.device_id}"
        request = urllib.request.Request(url, data=self.exposition().encode(), method="PUT")
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status in (200, 202), answer.status


def _labels(labels: Mapping[str, str]) -> str:
    escaped = {k: v.replace("\\", r"\\").replace('"', r"\"") for k, v in labels.items()}
    return ",".join(f'{k}="{v}"' for k, v in escaped.items())


def _moved(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(monthly_charges=frame["monthly_charges"] * 2 + 30)


def _unchanged(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


STORIES: dict[str, tuple[int, int, Callable[[pd.DataFrame], pd.DataFrame]]] = {
    # environment: (devices, rows per device per push, what the devices' rows look like)
    "devices": (4, 2500, _unchanged),
    "tills": (3, 2500, _moved),
    "gateways": (2, 60, _unchanged),
}
STOPPED = ("devices", "device-3")
"""The device that stops reporting after its first counts."""
STOPPED_JOB = edge.edge_job("churn", STOPPED[0])


def _declared() -> dict[str, Any]:
    """The template's params with the three edge environments and two windows of 8 s."""
    declared = template_params()
    for environment in STORIES:
        declared["deploy"]["environments"][environment] = EDGE
    declared["monitoring"]["retrain"].update(window=f"{WINDOW_SECONDS}s", windows=2, breaches=2)
    return declared


STABLE = ModelVersion(
    VERSION,
    f"model-store/bundles/{BUNDLE}.tar.gz",
    "a" * 64,
    "data",
    "commit",
    bundle=Bundle(sha256=BUNDLE, format="onnx", name="churn"),
)


@pytest.fixture(scope="module")
def timeline(servers: tuple[str, str], profile: ReferenceProfile) -> tuple[str, float]:
    """(Prometheus URL, the moment to look at): zeros when each device installs the bundle,
    then counts every few seconds; `device-3` of `devices` stops after its first."""
    gateway, prometheus = servers
    fleet = [
        Device(environment, f"device-{i}")
        for environment, (count, _, _) in STORIES.items()
        for i in range(count)
    ]
    start = time.time()

    def push_at(offset: float, seed: int, *, stopped: bool) -> None:
        time.sleep(max(start + offset - time.time(), 0.0))
        for number, device in enumerate(fleet):
            if stopped and (device.job, device.device_id) == (STOPPED_JOB, STOPPED[1]):
                continue
            if seed:
                environment = device.job.removeprefix("churn-")
                _, rows, change = STORIES[environment]
                device.score(profile, change(generate_churn(rows, seed=seed * 100 + number)))
            device.push(gateway)

    push_at(0.0, 0, stopped=False)  # a device starts from zero when it installs a bundle
    push_at(2.5, 1, stopped=False)
    push_at(5.0, 2, stopped=True)
    push_at(10.0, 3, stopped=True)
    at = start + 13.5  # windows (-2.5, 5.5] and (5.5, 13.5] from the start
    time.sleep(max(at + 1.5 - time.time(), 0.0))  # the last scrape before `at` is in
    return prometheus, at


@pytest.fixture(scope="module")
def looks(timeline: tuple[str, float], profile: ReferenceProfile) -> dict[str, Look]:
    """Each environment's look at the end of the timeline."""
    prometheus, at = timeline
    params = Params.model_validate(_declared())
    return {
        environment: monitor.look(
            params,
            Release(environment, stable=STABLE),
            profile,
            Prometheus(prometheus),
            profile_source="the test's profile",
            at=at,
        )
        for environment in STORIES
    }


def _latest(look: Look) -> dict[tuple[str, str], str]:
    return {(f.criterion, f.subject): f.status for f in look.judged[-1].findings}


def test_devices_with_rows_like_the_profiles_show_no_drift_and_are_counted(
    looks: dict[str, Look],
) -> None:
    look = looks["devices"]
    latest = _latest(look)
    assert latest, "the latest window was judged"
    assert {criterion for criterion, _ in latest} == set(DRIFT_CRITERIA), (
        "a fleet is judged on its inputs and scores only: no recall, precision or concept drift"
    )
    assert set(latest.values()) == {"ok"}, {k: v for k, v in latest.items() if v != "ok"}
    assert not look.decision.retrain
    first, last = (monitor.devices(judged.window) for judged in look.judged)
    assert first is not None
    assert last is not None
    assert first[0] == 4, "every device pushed rows in the first window"
    assert last[0] == 3, "the device that stopped reporting does not count in the latest"
    assert last[1] >= 3 * 2500, f"three devices' rows at least ({last[1]:.0f})"
    assert 'job="churn-devices"' in look.queries["features"]
    assert f'model_version="{VERSION}"' in look.queries["features"]
    assert look.label_delay is None
    cannot = monitor.unjudged(look)
    assert cannot is not None
    assert "recall, precision" in cannot
    assert monitor.silent(look) is None


def test_a_feature_moved_on_the_devices_drifts_and_is_named(looks: dict[str, Look]) -> None:
    look = looks["tills"]
    latest = _latest(look)
    drifted = {subject for (criterion, subject), status in latest.items() if status == "breach"}
    assert ("feature_drift", "monthly_charges") in {
        key for key, status in latest.items() if status == "breach"
    }
    assert drifted == {"monthly_charges"}, f"only the moved feature drifts: {drifted}"
    assert latest[("feature_drift", "tenure_months")] == "ok"
    cause = next(c for c in look.decision.causes if c.criterion == "feature_drift")
    assert cause.subjects == ("monthly_charges",)


def test_too_few_rows_is_inconclusive_never_a_pass(looks: dict[str, Look]) -> None:
    look = looks["gateways"]
    latest = _latest(look)
    assert set(latest.values()) == {"inconclusive"}, latest
    reported = monitor.devices(look.judged[-1].window)
    assert reported is not None
    assert reported[0] == 2
    assert 0 < reported[1] < 1000, "below monitoring.objectives.feature_drift.min_rows"
    assert not look.decision.retrain


def test_modelops_monitor_reads_a_fleet_from_the_release_file_and_the_bundles_profile(
    timeline: tuple[str, float],
    profile: ReferenceProfile,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a project whose edge environment's release names the bundle, published in the
    # store with the profile its devices bin by
    prometheus, at = timeline
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_declared(), sort_keys=False))
    change = state.Change(at="2026-12-01T00:00:00Z", by="test", reason="first bundle")
    release = state.deploy(
        Release("devices"), STABLE, strategy="edge", steps=(5, 25, 50), change=change
    )
    assert isinstance(release, Release)
    (tmp_path / release_file("devices")).parent.mkdir(parents=True)
    (tmp_path / release_file("devices")).write_text(release_text(release))
    archive = tmp_path / STABLE.model_uri
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as bundle:
        info = tarfile.TarInfo(PROFILE_FILE)
        info.size = len(profile.to_json())
        bundle.addfile(info, io.BytesIO(profile.to_json()))
    # When the monitor looks, as monitor.yml runs it
    monkeypatch.chdir(tmp_path)
    when = dt.datetime.fromtimestamp(at, dt.UTC).isoformat()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            [
                "monitor",
                "--env",
                "devices",
                "--prometheus",
                prometheus,
                "--at",
                when,
                "--if-released",
            ]
        )
    # Then it judged the windows against the bundle's profile, saying how many devices reported
    assert code == 0, printed.getvalue()
    assert "devices/rows       4/" in printed.getvalue(), printed.getvalue()
    document = json.loads((tmp_path / "reports/monitor/devices/report.json").read_text())
    assert document["kind"] == "edge"
    assert document["profile"] == f"{PROFILE_FILE} in {STABLE.model_uri}"
    assert [w["devices"]["reported"] for w in document["windows"]] == [4, 3]
    assert (tmp_path / "manifests/decisions/devices.jsonl").is_file()

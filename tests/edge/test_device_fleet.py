"""`modelops-device` against a real fleet: manifests rendered by the pipeline's own renderer
from release states, bundles exported and signed by the real exporter served over HTTP on
loopback, and a real Prometheus Pushgateway (stopped by the PID this test started).

A second bundle is the first with another name in its manifest, summed and signed again with
model-signing (the exporter's signing code), so both are bundles a fleet could run.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import io
import json
import re
import shutil
import subprocess
import tarfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from modelops_contract.bundle import MANIFEST, SUMS, sums_text
from modelops_contract.edge import edge_job
from modelops_contract.fleet import bucket
from modelops_device.cli import main as device_main

from modelops.deploy.fleet import render_fleet
from modelops.params import EdgeEnvironmentParams
from modelops.rehearsal.processes import free_ports
from modelops.releases import state
from modelops.releases.state import Bundle, Release
from tests.deploy.support import change, changed
from tests.edge.conftest import EDGE_PYTHON, EDGE_VENV, SignedBundle, make_key_pair
from tests.support import tool_or_skip

DEVICES = "devices"
STEPS = (25, 50)
ROW = {
    "plan": "basic",
    "contract": "one-year",
    "payment_method": "credit_card",
    "region": "north",
    "paperless_billing": "yes",
    "age": 40.0,
    "tenure_months": 12.0,
    "monthly_charges": 70.0,
    "total_charges": None,
    "num_products": 2.0,
    "support_calls_90d": 1.0,
    "avg_session_minutes": 10.0,
    "days_since_last_login": 3.0,
    "satisfaction_score": 4.0,
}


def _device(*args: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = device_main([str(arg) for arg in args])
    return code, out.getvalue(), err.getvalue()


def _update(fleet: str | Path, device_id: str, key: Path, device: Path) -> tuple[int, str, str]:
    return _device(
        "update", "--fleet", fleet, "--device-id", device_id, "--public-key", key, "--state", device
    )


def _archive(directory: Path, *, evil: str | None = None) -> bytes:
    """A tar.gz of `directory`'s files (with `evil`, one more member under that name)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            tar.add(path, arcname=path.relative_to(directory).as_posix())
        if evil:
            info = tarfile.TarInfo(evil)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
    return gzip.compress(buffer.getvalue())


def _resign(directory: Path, private_key: Path) -> None:
    """Sum and sign `directory` again with the exporter's own signing code (edge/.venv)."""
    (directory / SUMS).write_text(sums_text(directory))
    program = (
        "import sys; from pathlib import Path; from modelops_edge import signing; "
        "signing.sign(Path(sys.argv[1]), private_key=Path(sys.argv[2]))"
    )
    subprocess.run([str(EDGE_PYTHON), "-c", program, str(directory), str(private_key)], check=True)


class Store:
    """The store's bundles/ folder served over HTTP on loopback, and releases rendered to
    fleet manifests pointing at it."""

    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url

    def put(self, folder: str, data: bytes, *, sha256: str | None = None) -> state.ModelVersion:
        """Publish `data` under `folder`/bundles/<sha256>.tar.gz (the real digest unless given)."""
        sha = sha256 or hashlib.sha256(data).hexdigest()
        (self.root / folder / "bundles").mkdir(parents=True, exist_ok=True)
        (self.root / folder / "bundles" / f"{sha}.tar.gz").write_bytes(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            inside = archive.extractfile(MANIFEST)
            manifest = json.loads(inside.read()) if inside else {}
        return state.ModelVersion(
            version=sha[:12],
            model_uri=f"model-store/bundles/{sha}.tar.gz",
            model_hash=manifest["model_hash"],
            data_version=manifest["data_version"],
            git_commit=manifest["git_commit"],
            bundle=Bundle(sha256=sha, format="native", name=manifest["name"]),
        )

    def fleet(self, folder: str, release: Release, into: Path) -> Path:
        """The fleet manifest `modelops render` writes for `release`, served from `folder`."""
        environment = EdgeEnvironmentParams.model_validate(
            {
                "strategy": "edge",
                "format": "native",
                "bundle_base_url": f"{self.url}/{folder}/bundles",
                "public_key": "https://keys.example.com/edge-signing.pub",
                "cohort_steps": list(STEPS),
            }
        )
        path = into / f"fleet-{folder}.json"
        path.write_text(render_fleet(DEVICES, environment, release))
        return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Say nothing: the device's messages are what the tests read."""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    root = tmp_path_factory.mktemp("store")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Store(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def versions(
    signed_native: SignedBundle, store: Store, tmp_path_factory: pytest.TempPathFactory
) -> tuple[state.ModelVersion, state.ModelVersion, Path]:
    """(A, B, B's directory): the exported bundle and a second one, both in the store."""
    a = store.put("fleet", signed_native.archive.read_bytes())
    second = Path(shutil.copytree(signed_native.directory, tmp_path_factory.mktemp("b") / "b"))
    manifest = json.loads((second / MANIFEST).read_text())
    (second / MANIFEST).write_text(json.dumps(manifest | {"name": "model-b"}, indent=2) + "\n")
    _resign(second, signed_native.private_key)
    return a, store.put("fleet", _archive(second)), second


def _at_bucket(target: int) -> str:
    """A device id whose bucket (salt: the environment's name) is `target`."""
    return next(f"till-{n}" for n in range(1_000_000) if bucket(f"till-{n}", DEVICES) == target)


def _installed(device_state: Path) -> dict[str, Any]:
    current: dict[str, Any] = json.loads((device_state / "current.json").read_text())
    return current


def test_devices_either_side_of_the_cohort_boundary_take_their_bundle_and_switch_back(
    versions: tuple[state.ModelVersion, state.ModelVersion, Path],
    store: Store,
    signed_native: SignedBundle,
    tmp_path: Path,
) -> None:
    a, b, _ = versions
    stable = changed(
        state.deploy(Release(DEVICES), a, strategy="edge", steps=STEPS, change=change())
    )
    rollout = changed(state.deploy(stable, b, strategy="edge", steps=STEPS, change=change()))
    rolled_back = state.rollback(rollout, change=change("drift"))
    inside, outside = _at_bucket(2499), _at_bucket(2500)  # 25 %: buckets 0 to 2499 take B
    key = signed_native.public_key
    for device in (inside, outside):  # every device starts on A, through the real command
        done = subprocess.run(
            [
                str(EDGE_VENV / "bin" / "modelops-device"),
                "update",
                "--fleet",
                str(store.fleet("fleet", stable, tmp_path)),
                "--device-id",
                device,
                "--public-key",
                str(key),
                "--state",
                str(tmp_path / device),
            ],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"installed: {a.version} (stable"), done.stdout
    fleet = store.fleet("fleet", rollout, tmp_path)
    for device, version, track in ((inside, b, "candidate"), (outside, a, "stable")):
        code, out, err = _update(fleet, device, key, tmp_path / device)
        assert code == 0, err
        assert _installed(tmp_path / device)["installed"]["version"] == version.version, out
        assert _installed(tmp_path / device)["installed"]["track"] == track
    assert _installed(tmp_path / inside)["previous"]["version"] == a.version, "A is kept"
    # Rolled back, the candidate's device returns to A from the copy it kept: no download.
    (store.root / "fleet" / "bundles" / f"{a.bundle and a.bundle.sha256}.tar.gz").rename(
        tmp_path / "away.tar.gz"
    )
    try:
        code, out, err = _update(
            store.fleet("fleet", rolled_back, tmp_path), inside, key, tmp_path / inside
        )
    finally:
        (tmp_path / "away.tar.gz").rename(
            store.root / "fleet" / "bundles" / f"{a.bundle and a.bundle.sha256}.tar.gz"
        )
    assert code == 0, err
    assert out.startswith(f"switched back to the bundle kept from before: {a.version}"), out
    assert sorted(p.name for p in (tmp_path / inside / "bundles").iterdir()) == sorted(
        v.bundle.sha256 for v in (a, b) if v.bundle
    )


def _tampered_sums(directory: Path) -> None:
    (directory / "encoding.json").write_text((directory / "encoding.json").read_text() + " ")


def _tampered_resummed(directory: Path) -> None:
    _tampered_sums(directory)
    (directory / SUMS).write_text(sums_text(directory))


Case = tuple[Callable[[Path], None] | None, str | None, bool, bool, list[str]]
CASES: dict[str, Case] = {
    # name: (change to B's files, evil member, right sha256 in the manifest, right key, said)
    "tampered file": (_tampered_sums, None, True, True, ["tampered:", "changed: encoding.json"]),
    "tampered, sums redone": (
        _tampered_resummed,
        None,
        True,
        True,
        ["tampered:", "not what was signed", "changed: encoding.json"],
    ),
    "wrong sha256": (None, None, False, True, ["wrong sha256:", "the fleet manifest says"]),
    "wrong key": (None, None, True, False, ["wrong key:"]),
    "member outside": (None, "../escape.txt", True, True, ["tampered:", "leaves the bundle"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_refused_bundle_leaves_the_current_one_running_and_says_why(
    case: str,
    versions: tuple[state.ModelVersion, state.ModelVersion, Path],
    store: Store,
    signed_native: SignedBundle,
    tmp_path: Path,
) -> None:
    tamper, evil, right_sha, right_key, said = CASES[case]
    a, _, b_directory = versions
    device, key = tmp_path / "device", signed_native.public_key
    stable = changed(state.deploy(Release(DEVICES), a, strategy="edge", steps=(), change=change()))
    code, _, err = _update(store.fleet("fleet", stable, tmp_path), "till-1", key, device)
    assert code == 0, err
    before = {p.relative_to(device): p.read_bytes() for p in device.rglob("*") if p.is_file()}
    bad = Path(shutil.copytree(b_directory, tmp_path / "bad"))
    if tamper:
        tamper(bad)
    data = _archive(bad, evil=evil)
    folder = case.replace(" ", "-").replace(",", "")
    other = store.put(folder, data, sha256=None if right_sha else "f" * 64)
    release = changed(
        state.deploy(Release(DEVICES), other, strategy="edge", steps=(), change=change())
    )
    if not right_key:
        key = make_key_pair(tmp_path)[1]
    code, out, err = _update(store.fleet(folder, release, tmp_path), "till-1", key, device)
    assert code == 1, out
    for words in said:
        assert words in err, err
    after = {p.relative_to(device): p.read_bytes() for p in device.rglob("*") if p.is_file()}
    assert after == before, "nothing half-written: the device is exactly as it was"


def test_an_unreachable_manifest_or_bundle_is_named(
    versions: tuple[state.ModelVersion, state.ModelVersion, Path],
    store: Store,
    signed_native: SignedBundle,
    tmp_path: Path,
) -> None:
    key = signed_native.public_key
    code, _, err = _update(f"{store.url}/nowhere/fleet.json", "till-1", key, tmp_path)
    assert code == 1
    assert err.startswith(f"error: unreachable: {store.url}/nowhere/fleet.json"), err
    gone = changed(
        state.deploy(Release(DEVICES), versions[0], strategy="edge", steps=(), change=change())
    )
    fleet = store.fleet("gone", gone, tmp_path)  # nothing was published under gone/
    code, _, err = _update(fleet, "till-1", key, tmp_path)
    assert code == 1
    assert "unreachable:" in err, err
    assert "HTTP 404" in err, err
    assert not (tmp_path / "current.json").exists()


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A real Pushgateway on a loopback port of its own, stopped by its PID."""
    binary = tool_or_skip(
        "prometheus-pushgateway", "pushgateway", install="apt-get install prometheus-pushgateway"
    )
    (port,) = free_ports(1)
    log = (tmp_path / "pushgateway.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=2).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "pushgateway.log").read_text()
                assert time.monotonic() < deadline, "the Pushgateway did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


SAMPLE = re.compile(r"^(modelops_edge_\w+)\{(.*)\} (\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _pushed(url: str) -> list[tuple[str, dict[str, str], float]]:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    found = []
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            found.append((match[1], dict(LABEL.findall(match[2])), float(match[3])))
    return found


def test_a_device_counts_its_rows_and_reports_them_to_a_real_pushgateway(
    versions: tuple[state.ModelVersion, state.ModelVersion, Path],
    store: Store,
    signed_native: SignedBundle,
    pushgateway: str,
    tmp_path: Path,
) -> None:
    a, b, _ = versions
    device, key, job = tmp_path / "device", signed_native.public_key, edge_job("churn", DEVICES)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(json.dumps(ROW | {"age": float(age)}) + "\n" for age in range(20, 80, 5))
    )
    for version in (b, a):
        only = changed(
            state.deploy(Release(DEVICES), version, strategy="edge", steps=(), change=change())
        )
        code, _, err = _update(store.fleet("fleet", only, tmp_path), "till 7/a", key, device)
        assert code == 0, err
        code, out, err = _device("score", "--state", device, "--rows", rows)
        assert code == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        assert len(lines) == 12
        assert all(0 <= line["probability"] <= 1 for line in lines)
        assert {line["class"] for line in lines} <= {"0", "1"}
        code, _, err = _device("score", "--state", device, "--rows", rows)
        assert code == 0, err
    # The bundle changed to A after 24 rows on B: A's counts started again from zero.
    code, out, err = _device(
        "report",
        "--state",
        device,
        "--pushgateway",
        pushgateway,
        "--job",
        job,
        "--device-id",
        "till 7/a",
    )
    assert code == 0, err
    pushed = _pushed(pushgateway)
    mine = [(n, labels, v) for n, labels, v in pushed if labels.get("device") == "till 7/a"]
    assert {labels["job"] for _, labels, _ in mine} == {job}
    value = {n: v for n, labels, v in mine if n in ("modelops_edge_rows_total",)}
    assert value == {"modelops_edge_rows_total": 24.0}
    common = {"model_version": a.version, "track": "stable"}
    for name, labels, _ in mine:
        assert common.items() <= labels.items(), (name, labels)
    ages = [
        v
        for n, labels, v in mine
        if n == "modelops_edge_feature_bin_total" and labels["feature"] == "age"
    ]
    assert sum(ages) == 24.0
    assert len(ages) > 2
    scores = [v for n, _, v in mine if n == "modelops_edge_score_bin_total"]
    assert sum(scores) == 24.0
    info = [labels for n, labels, _ in mine if n == "modelops_edge_bundle_info"]
    assert [(i["bundle"], i["model_hash"]) for i in info] == [
        (a.bundle and a.bundle.sha256, a.model_hash)
    ]
    positive = [v for n, _, v in mine if n == "modelops_edge_positive_rows_total"]
    assert len(positive) == 1
    assert 0 <= positive[0] <= 24
    last = [v for n, _, v in mine if n == "modelops_edge_last_report_timestamp_seconds"]
    assert abs(last[0] - time.time()) < 60

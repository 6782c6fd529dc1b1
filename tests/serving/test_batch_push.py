"""A batch run's figures reach the alerts: the real `modelops-score` pushes to a real Pushgateway,
a real Prometheus scrapes it with honor_labels and evaluates the rendered batch rules.

Both servers listen on loopback ports of their own and are stopped by the PIDs this test
started. The rules are rendered for the template's nightly environment with time divided by
36,000 (as the rehearsal divides it), so the missed-run deadline of 30 hours is 3 seconds and
every `for` the least the rehearsal allows (10 s): the whole story takes about 20 seconds.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from modelops_contract import batch as contract

from modelops.identity import content_hash
from modelops.monitoring import monitor
from modelops.monitoring.monitor import Look
from modelops.observability import rules
from modelops.params import BatchEnvironmentParams, Params, batch_name, missed_after_seconds
from modelops.rehearsal.processes import free_ports
from modelops.releases.state import ModelVersion, Release
from modelops.telemetry.profile import ReferenceProfile
from modelops.telemetry.prometheus import Prometheus
from tests.pushgateway import READY_SECONDS, pushgateway_and_prometheus
from tests.serving.conftest import SERVING_BIN
from tests.support import template_params

TIME_SCALE = 36_000.0
ALERT_SECONDS = 60.0


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.read()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(Pushgateway URL, Prometheus URL): Prometheus scrapes the gateway every second and
    evaluates the nightly environment's rendered rules, compressed."""
    params = Params.model_validate(template_params())
    nightly = params.deploy.environments["nightly"]
    assert isinstance(nightly, BatchEnvironmentParams)
    target = rules.Target("nightly", nightly.namespace, "https://runbooks", TIME_SCALE)
    job = batch_name(params.deploy.name, "nightly")
    groups = rules.batch_rule_groups(
        params.monitoring, rules.BatchTarget(target, job, missed_after_seconds(nightly))
    )
    for group in groups:
        group["interval"] = "1s"  # type: ignore[typeddict-unknown-key]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    with pushgateway_and_prometheus(tmp_path, rule_files=[tmp_path / "rules.yaml"]) as urls:
        yield urls


def _score(
    model_dir: Path, source: Path, output: Path, gateway: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(SERVING_BIN / "modelops-score"),
            *("--model", str(model_dir), "--input", str(source), "--output", str(output)),
            *("--pushgateway", gateway, "--push-job", "churn-nightly"),
            *("--push-label", "namespace=churn-batch", "--model-version", "v7"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    result: list[dict[str, Any]] = json.loads(_get(url))["data"]["result"]
    return result


def _firing(prometheus: str) -> dict[str, dict[str, str]]:
    found = _query(prometheus, 'ALERTS{alertstate="firing"}')
    return {a["metric"]["alertname"]: a["metric"] for a in found}


def _wait_for(prometheus: str, alerts: set[str]) -> dict[str, dict[str, str]]:
    deadline = time.monotonic() + ALERT_SECONDS
    while True:
        firing = _firing(prometheus)
        if alerts <= set(firing):
            return firing
        assert time.monotonic() < deadline, f"only {sorted(firing)} fire, not {sorted(alerts)}"
        time.sleep(0.5)


def test_a_run_pushes_its_figures_and_the_rendered_alerts_fire_on_them(
    servers: tuple[str, str], model_dir: Path, served_project: Path, tmp_path: Path
) -> None:
    gateway, prometheus = servers
    rows = pd.read_parquet(served_project / "data" / "prepared" / "test.parquet")
    drifted = pd.concat([rows] * 3, ignore_index=True)  # over min_rows (1,000)
    drifted["tenure_months"] = drifted["tenure_months"] * 3 + 40
    drifted.to_parquet(tmp_path / "drifted.parquet")

    done = _score(model_dir, tmp_path / "drifted.parquet", tmp_path / "scores", gateway)
    assert done.returncode == 0, done.stderr
    pushed = _get(f"{gateway}/metrics").decode()
    for series in contract.PUSHED:
        if series is contract.LAST_FAILURE:
            assert series.name not in pushed, "a success pushes no failure"
            continue
        assert f"\n{series.name}{{" in pushed, f"{series.name} was not pushed"
    scored = _query(prometheus, f'{contract.ROWS.name}{{outcome="{contract.ROWS_SCORED}"}}')
    deadline = time.monotonic() + READY_SECONDS
    while not scored:  # the first scrape of the gateway
        assert time.monotonic() < deadline, "Prometheus never scraped the pushed rows"
        time.sleep(0.2)
        scored = _query(prometheus, f'{contract.ROWS.name}{{outcome="{contract.ROWS_SCORED}"}}')
    assert [float(s["value"][1]) for s in scored] == [len(drifted)]

    # A run that fails keeps the last good run's figures (and their drift) and adds its failure.
    failed = _score(model_dir, tmp_path / "missing.parquet", tmp_path / "scores", gateway)
    assert failed.returncode == 1
    assert "figures were not pushed" not in failed.stderr
    firing = _wait_for(
        prometheus,
        {"ModelopsBatchFeatureDrift", "ModelopsBatchRunFailed", "ModelopsBatchRunMissed"},
    )
    assert firing["ModelopsBatchFeatureDrift"]["feature"] == "tenure_months"
    assert firing["ModelopsBatchFeatureDrift"]["job"] == "churn-nightly", "honor_labels kept it"
    assert firing["ModelopsBatchRunFailed"]["namespace"] == "churn-batch"
    drifting = _query(prometheus, "modelops:batch_feature_psi:last_run > 0.2")
    assert {s["metric"]["feature"] for s in drifting} == {"tenure_months"}, "only the one moved"
    assert _query(prometheus, contract.ROWS.name), "the good run's rows are still there"

    # The monitor reads the last good run's pushed bins as its latest window, and judges them
    # with its own definitions (KS here), as it judges a server's window.
    look = _monitor_look(prometheus, model_dir)
    latest = {(f.criterion, f.subject): f for f in look.judged[-1].findings}
    assert latest[("feature_drift", "tenure_months")].status == "breach"
    assert latest[("feature_drift", "plan")].status == "ok"
    assert not any(f.criterion in ("recall", "precision") for f in latest.values()), (
        "no feedback comes back to a batch run: quality is not judged"
    )

    # A good run clears the failure (and, on rows like training's, the drift).
    done = _score(
        model_dir,
        served_project / "data" / "prepared" / "test.parquet",
        tmp_path / "scores",
        gateway,
    )
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + ALERT_SECONDS
    while {"ModelopsBatchRunFailed", "ModelopsBatchFeatureDrift"} & set(_firing(prometheus)):
        assert time.monotonic() < deadline, _firing(prometheus)
        time.sleep(0.5)


def _monitor_look(prometheus: str, model_dir: Path) -> Look:
    """`modelops monitor`'s look at the nightly environment, released with `model_dir` as v7."""
    params = Params.model_validate(template_params())
    stable = ModelVersion("v7", str(model_dir), content_hash(model_dir), "data", "commit")
    profile = ReferenceProfile.from_dict(json.loads((model_dir / "profile.json").read_text()))
    return monitor.look(
        params,
        Release("nightly", stable=stable),
        profile,
        Prometheus(prometheus),
        profile_source=str(model_dir),
        at=time.time(),
    )


def test_a_pushgateway_that_cannot_be_reached_is_reported_and_the_run_still_succeeds(
    model_dir: Path, served_project: Path, tmp_path: Path
) -> None:
    (port,) = free_ports(1)  # nothing listens there
    done = _score(
        model_dir,
        served_project / "data" / "prepared" / "test.parquet",
        tmp_path / "scores",
        f"http://127.0.0.1:{port}",
    )
    assert done.returncode == 0, done.stderr
    assert (
        f"the run's figures were not pushed: could not push to http://127.0.0.1:{port} after 3"
        in done.stderr
    )
    assert (tmp_path / "scores" / "_run.json").is_file()

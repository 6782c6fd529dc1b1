"""An A/B experiment rehearsed and judged, end to end, with real parts only.

Production's release runs an experiment between its stable model and a candidate `b` (the
same model under another content hash, published to the store, as the canary rehearsal's twin).
`modelops up` starts two replicas of the stable predictor, each serving both variants, a real
Prometheus scraping both, and traffic from sticky units spread over the replicas; then
`modelops experiment analyze` judges it from that Prometheus, as rollout.yml would.

- Units stay with their variant: the same units asked of both replicas, before and after one
  is restarted, get the same variant and model version in the answers' `meta.tags` (the ones
  `modelops_contract.assign` computes).
- A true effect (`--effect b=...`: b's answers turn out right more often) makes b the winner,
  exit 0; `experiment plan` works on the same Prometheus.
- A broken split (`--broken-split b=...`: the client loses a share of b's units) stops the
  experiment on a sample-ratio mismatch, exit 1.

The experiment started two days before the rehearsal (its release history says so): the
analysis reads increases over a window far longer than Prometheus' data, as it may in a
rehearsal. The bounds are loosened for a test that must decide in about half a minute of
traffic (the params a user tunes): the guardrails' margins are wide and latency is skipped
(a shared test machine's latency says nothing about the model); the statistics are the same.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from modelops_contract import assign, unit_text

from modelops.cli import main
from modelops.deploy.experiment import planned_experiment
from modelops.deploy.workflow import Plan, write
from modelops.params import load_params
from modelops.rehearsal import processes, units
from modelops.releases import state
from modelops.releases.experiment import start_experiment
from modelops.releases.files import load_releases
from modelops.releases.publish import publish
from tests.support import write_params

ENV = "production"
NAME = "offer-rehearsal"
UNITS = 3000
TRAFFIC = ["--minutes", "3", "--rate", "25", "--rows", "10", "--label-delay", "2"]
GUARDRAILS = {
    "errors": {"margin": 0.05},
    "latency": {"margin": 0.01, "skip": "a shared test machine's latency says nothing of it"},
    "positive_rate": {"margin": 0.2},
    "precision": {"margin": 0.2},
    "recall": {"margin": 0.2},
}
PATIENCE_SECONDS = 90
STICKY_UNITS = 40


def _version(root: Path, model_dir: Path, name: str) -> state.ModelVersion:
    params = load_params(root / "params.yaml")
    uri, digest = publish(model_dir, store=params.deploy.store, name=params.deploy.name, root=root)
    return state.ModelVersion(name, uri, digest, "test", "0" * 40)


@pytest.fixture(scope="module")
def repo(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained project whose production release runs `NAME`, started two days ago, between
    its stable model and a copy of it (another content hash) as b."""
    twin = tmp_path_factory.mktemp("twin") / "model"
    shutil.copytree(project / "models" / "model", twin)
    (twin / "NOTE.txt").write_text("the candidate b", encoding="utf-8")
    stable = _version(project, project / "models" / "model", "v-stable")
    candidate = _version(project, twin, "v-b")
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["experiments"] = {
        ENV: {
            "name": NAME,
            "unit": "customer_id",
            "variants": {"b": candidate.model_hash},
            "split": {"stable": 50, "b": 50},
            "primary": "business_value",
            "minimum_effect": 4.0,
            "guardrails": GUARDRAILS,
        }
    }
    write_params(project, params)
    loaded = load_params(project / "params.yaml")
    started = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    change = state.Change(at=started, by="test", reason="deploy v-stable")
    release = state.deploy(
        state.Release(environment=ENV), stable, strategy="direct", steps=[], change=change
    )
    assert isinstance(release, state.Release)
    experiment = planned_experiment(
        loaded.experiments[ENV], stable, {candidate.model_hash: candidate}, environment=ENV
    )
    running = start_experiment(release, experiment, change=change)
    assert isinstance(running, state.Release)
    releases = load_releases(project, loaded)
    releases[ENV] = running
    write(project, loaded, Plan(releases, (ENV,), "start the experiment"))
    return project


def _up(root: Path, *extra: str) -> tuple[int, dict[str, int], str]:
    """`modelops up` with its own free ports: Prometheus', the ports, and what it printed."""
    names = ("prometheus", "alertmanager", "stable", "canary", "stable-metrics", "canary-metrics")
    ports = dict(zip(names, processes.free_ports(len(names)), strict=True))
    args = ["up", "--env", ENV, *TRAFFIC, "--units", str(UNITS), *extra]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.chdir(root)
        assert main(args) == 0
    return ports["prometheus"], ports, printed.getvalue()


def _experiment(root: Path, action: str, prometheus: int, *extra: str) -> tuple[int, str]:
    """`modelops experiment ACTION` in-process: its exit code and what it printed."""
    printed = io.StringIO()
    url = f"http://127.0.0.1:{prometheus}"
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.chdir(root)
        code = main(["experiment", action, "--env", ENV, "--prometheus", url, *extra])
    return code, printed.getvalue()


def _until(root: Path, prometheus: int, code: int) -> tuple[str, list[str]]:
    """Analyze every few seconds until it exits `code` (anything else but 3 fails at once)."""
    seen: list[str] = []
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        exit_code, printed = _experiment(root, "analyze", prometheus)
        seen.append(f"[{exit_code}] {printed}")
        if exit_code == code:
            return printed, seen
        assert exit_code == 3, "\n".join(seen)
        time.sleep(3)
    raise AssertionError(f"no verdict {code} in {PATIENCE_SECONDS} s:\n" + "\n".join(seen[-3:]))


def _answers(root: Path, url: str, unit_values: list[str]) -> list[tuple[str, str]]:
    """(variant, model_version) of each unit's row, as the server at `url` answered them."""
    meta = json.loads((root / "data" / "prepared" / "meta.json").read_text(encoding="utf-8"))
    features = [*meta["schema"]["categorical"], *meta["schema"]["numeric"]]
    rows = pd.read_parquet(root / "data" / "prepared" / "test.parquet").head(len(unit_values))
    values = json.loads(rows[features].to_json(orient="values"))
    body = {
        "data": {
            "names": [*features, "customer_id"],
            "ndarray": [[*row, unit] for row, unit in zip(values, unit_values, strict=True)],
        }
    }
    request = urllib.request.Request(
        f"{url}/api/v1.0/predictions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        tags: dict[str, Any] = json.loads(answer.read())["meta"]["tags"]
    assert tags["experiment"] == NAME
    return list(zip(tags["variants"], tags["model_versions"], strict=True))


def test_units_keep_their_variant_across_replicas_and_a_restart_and_a_true_effect_wins(
    repo: Path,
) -> None:
    started = time.perf_counter()
    prometheus, ports, printed = _up(repo, "--effect", "b=0.8")
    print(f"up: {time.perf_counter() - started:.1f} s")
    replicas = [f"http://127.0.0.1:{ports[name]}" for name in ("stable", "canary")]
    try:
        assert f"modelops experiment analyze --env {ENV} --prometheus http://127.0.0.1:" in printed
        assert "  stable-0    " in printed
        assert "  stable-1    " in printed
        sticky = units.made_up(UNITS)[:STICKY_UNITS]
        split = [("stable", 50), ("b", 50)]
        expected = [
            (v, "v-stable" if v == "stable" else "v-b")
            for v in (assign(str(unit_text(u)), salt=NAME, split=split) for u in sticky)
        ]
        assert {v for v, _ in expected} == {"stable", "b"}
        before = [_answers(repo, url, sticky) for url in replicas]
        restarted = processes.restart(repo, "stable-1", ready=f"{replicas[1]}/health/status")
        after = [_answers(repo, url, sticky) for url in replicas]
        assert before == [expected, expected], "both replicas assign as the contract's hash"
        assert after == [expected, expected], "and so does the restarted one"
        assert restarted.pid in [p.pid for p in processes.running(repo)]
        time.sleep(2)  # a scrape or two of the restarted replica (every second) before judging
        verdict, seen = _until(repo, prometheus, 0)
        code, planned = _experiment(repo, "plan", prometheus, "--window", "10m")
    finally:
        stopped = processes.down(repo)
    print(f"{len(seen)} looks, {time.perf_counter() - started:.1f} s in all\n{verdict}")
    assert not processes.running(repo)
    assert "stable-1" in [p.name for p in stopped]
    assert f"{ENV} {NAME}: b wins" in verdict
    document = json.loads((repo / "reports" / "experiments" / f"{ENV}.json").read_text())
    assert (document["kind"], document["winner"]) == ("winner", "b")
    assert document["sample_ratio"]["processes"] == 3, "two replicas, one of them restarted"
    assert code in (0, 1), planned
    assert planned.startswith(f"experiment plan: {ENV} {NAME} (stable 50%, b 50%)"), planned
    assert "labelled predictions a day" in planned


def test_a_broken_split_stops_the_experiment_on_a_sample_ratio_mismatch(repo: Path) -> None:
    started = time.perf_counter()
    # Half of b's units lost: the mismatch is found at about 600 units (two processes may count
    # each), far before the KPI can conclude (about 2,500 units here). A 30% loss took about
    # 1,500, near enough that the KPI's "no difference" sometimes came first under load: the
    # test then judged a race, not the check (the power against a loss:
    # benchmarks/results/experiments.md).
    prometheus, _, printed = _up(repo, "--broken-split", "b=0.5")
    try:
        assert "the client loses 50% of b's units" in printed
        verdict, seen = _until(repo, prometheus, 1)
    finally:
        processes.down(repo)
    print(f"{len(seen)} looks, {time.perf_counter() - started:.1f} s in all\n{verdict}")
    assert f"{ENV} {NAME}: stop the experiment (sample ratio mismatch over" in verdict
    assert "b is short and stable over" in verdict
    document = json.loads((repo / "reports" / "experiments" / f"{ENV}.json").read_text())
    assert document["kind"] == "stop"
    assert document["sample_ratio"]["mismatch"] is True

"""The drift monitor end to end, with real parts only: the real microservice, a real Prometheus.

The test sends the served model its own test rows, phase after phase, each as long as the
monitor's windows (2 windows of 8 s, a breach in both retrains): unchanged rows, then a
numeric feature shifted, a category training never saw, half the values of a feature missing,
and the truths flipped with the inputs unchanged (concept drift). After each phase `modelops
monitor` judges the windows that phase filled, from Prometheus, against the profile published
with the model: each drift is reported with its own cause and no other, and unchanged traffic
raises nothing. A second server writes its sampled request log, which `modelops monitor --rows`
gates with Deepchecks. Windows of seconds are the params a user tunes; the statistics are the
same as with days.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from modelops.cli import main
from modelops.deploy.workflow import Plan, write
from modelops.identity import content_hash
from modelops.params import load_params
from modelops.prepared import load_prepared
from modelops.rehearsal import processes
from modelops.rehearsal.plan import ServerPlan
from modelops.rehearsal.traffic import SeldonRequest, feedback_body, post
from modelops.releases import state
from modelops.releases.files import load_releases
from modelops.releases.publish import publish
from tests.support import write_params

ENV = "production"
WINDOW_SECONDS, WINDOWS = 8, 2
PER_REQUEST, REQUESTS_PER_SECOND = 100, 8
LOG_RATE = 0.25
MIN_ROWS = 500  # a loaded CI machine sends fewer rows per window than the nominal 6,400


@dataclass(frozen=True)
class Stack:
    root: Path
    prometheus: int
    stable: ServerPlan
    logged: ServerPlan
    rows: pd.DataFrame
    features: list[str]
    label: str


@pytest.fixture(scope="module")
def stack(project: Path) -> Iterator[Stack]:
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["deploy"]["environments"][ENV]["namespace"] = "rehearsal"  # what up() labels
    monitoring = params["monitoring"]
    monitoring["retrain"] = {"window": f"{WINDOW_SECONDS}s", "windows": WINDOWS, "breaches": 2}
    for name in ("feature_drift", "score_drift", "missing_values", "unseen_categories"):
        monitoring["objectives"][name]["min_rows"] = MIN_ROWS
    for name in ("recall", "precision"):
        monitoring["objectives"][name]["min_labels"] = 300
    write_params(project, params)
    loaded = load_params(project / "params.yaml")
    model_dir = project / "models" / "model"
    uri, digest = publish(
        model_dir, store=loaded.deploy.store, name=loaded.deploy.name, root=project
    )
    model = state.ModelVersion(
        version="v-served",
        model_uri=uri,
        model_hash=digest,
        data_version="test",
        git_commit="0" * 40,
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    change = state.Change(at=now, by="test", reason="deploy v-served")
    deployed = state.deploy(
        state.Release(environment=ENV), model, strategy="direct", steps=[100], change=change
    )
    assert isinstance(deployed, state.Release)
    releases = load_releases(project, loaded)
    releases[ENV] = deployed
    write(project, loaded, Plan(releases, (ENV,), "deploy"))
    ports = iter(processes.free_ports(5))
    stable = ServerPlan(
        "stable", model_dir, "v-served", content_hash(model_dir), next(ports), next(ports)
    )
    log = project / ".rehearsal-log" / "requests.jsonl"
    log.parent.mkdir(exist_ok=True)
    logged = ServerPlan(
        "canary",
        model_dir,
        "v-logged",
        stable.model_hash,
        next(ports),
        next(ports),
        request_log=str(log),
        request_log_sample_rate=LOG_RATE,
    )
    prepared = load_prepared(project / "data" / "prepared")
    schema = prepared.schema
    prometheus = next(ports)
    try:
        processes.up(
            project,
            [stable, logged],
            None,
            prometheus_port=prometheus,
            threshold=loaded.evaluate.threshold,
            business_value=None,
        )
        yield Stack(
            project, prometheus, stable, logged, prepared.test, list(schema.features), schema.label
        )
    finally:
        processes.down(project)


Change = Callable[[pd.DataFrame], pd.DataFrame]


def _unchanged(rows: pd.DataFrame) -> pd.DataFrame:
    return rows


def _send(
    stack: Stack, server: ServerPlan, seconds: float, change: Change, *, flip: bool = False
) -> int:
    """Requests (and their truths) at a steady rate for `seconds`; the rows sent."""
    rows = change(stack.rows.sample(frac=1.0, random_state=1).reset_index(drop=True))
    sent, position = 0, 0
    deadline = time.monotonic() + seconds
    period = 1.0 / REQUESTS_PER_SECOND
    while time.monotonic() < deadline:
        started = time.monotonic()
        chunk = rows.iloc[position : position + PER_REQUEST]
        if len(chunk) < PER_REQUEST:
            position = 0
            continue
        position += PER_REQUEST
        values = chunk[stack.features].astype(object).where(chunk[stack.features].notna(), None)
        request: SeldonRequest = {
            "data": {"names": stack.features, "ndarray": values.values.tolist()}
        }
        status, answer = post(f"{server.url}/api/v1.0/predictions", request)
        assert status == 200, answer
        truths = [[("0" if str(v) == "1" else "1") if flip else str(v)] for v in chunk[stack.label]]
        status, answer = post(
            f"{server.url}/api/v1.0/feedback", feedback_body(request, answer, truths)
        )
        assert status == 200, answer
        sent += len(chunk)
        time.sleep(max(period - (time.monotonic() - started), 0.0))
    return sent


def _monitor(stack: Stack) -> dict[str, Any]:
    """`modelops monitor` in-process over the windows just filled; its JSON report."""
    time.sleep(1.5)  # one scrape after the last request
    printed = io.StringIO()
    url = f"http://127.0.0.1:{stack.prometheus}"
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.chdir(stack.root)
        code = main(["monitor", "--env", ENV, "--prometheus", url])
    assert code == 0, printed.getvalue()
    report = stack.root / "reports" / "monitor" / ENV / "report.json"
    document: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    document["printed"] = printed.getvalue()
    return document


def _phase(stack: Stack, change: Change, *, flip: bool = False) -> dict[str, Any]:
    _send(stack, stack.stable, WINDOW_SECONDS * WINDOWS, change, flip=flip)
    return _monitor(stack)


def _breached(document: dict[str, Any]) -> dict[str, list[str]]:
    """criterion -> subjects breached in the latest window."""
    found: dict[str, list[str]] = {}
    for finding in document["windows"][-1]["findings"]:
        if finding["status"] == "breach":
            found.setdefault(finding["criterion"], []).append(finding["subject"])
    return found


def _numeric(stack: Stack) -> str:
    return "monthly_charges" if "monthly_charges" in stack.features else stack.features[-1]


def test_drift_of_each_kind_is_reported_with_its_cause_and_unchanged_traffic_with_none(
    stack: Stack,
) -> None:
    unchanged = _phase(stack, _unchanged)
    assert _breached(unchanged) == {}, unchanged["printed"]
    assert unchanged["decision"]["retrain"] is False, unchanged["printed"]
    window = unchanged["windows"][-1]
    rows = {f["rows"] for f in window["findings"] if f["criterion"] == "feature_drift"}
    assert min(rows) >= MIN_ROWS, rows  # every window held enough rows to be judged
    estimate = window["estimate"]
    assert estimate is not None
    assert 0 < estimate["recall"]["estimate"] <= 1

    feature = _numeric(stack)
    shifted = _phase(stack, lambda rows: rows.assign(**{feature: rows[feature] * 3 + 50}))
    assert _breached(shifted) == {"feature_drift": [feature]} | _score_if_any(shifted), shifted[
        "printed"
    ]
    assert shifted["decision"]["retrain"] is True
    assert any("feature_drift breached" in r for r in shifted["decision"]["reasons"])

    novel = _phase(stack, lambda rows: rows.assign(region="atlantis"))
    breached = _breached(novel)
    assert breached.get("unseen_categories") == ["region"], novel["printed"]
    assert "region" in breached.get("feature_drift", []), novel["printed"]
    assert "missing_values" not in breached

    def half_missing(rows: pd.DataFrame) -> pd.DataFrame:
        holes = rows[feature].copy()
        holes.iloc[::2] = None
        return rows.assign(**{feature: holes})

    missing = _phase(stack, half_missing)
    assert _breached(missing).get("missing_values") == [feature], missing["printed"]
    assert "unseen_categories" not in _breached(missing)

    concept = _phase(stack, _unchanged, flip=True)
    breached = _breached(concept)
    assert "concept_drift" in breached, concept["printed"]
    assert "feature_drift" not in breached, concept["printed"]
    assert "score_drift" not in breached, concept["printed"]
    assert {"recall", "precision"} & set(breached), concept["printed"]
    log = stack.root / "manifests" / "decisions" / f"{ENV}.jsonl"
    decisions = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [d["decision"] for d in decisions] == [
        "none",
        "retrain",
        "retrain",
        "retrain",
        "retrain",
    ]
    report = (stack.root / "reports" / "monitor" / ENV / "report.md").read_text(encoding="utf-8")
    assert "concept_drift" in report
    assert "CBPE" in report
    for plot in ("criteria.png", "drift.png", "scores.png"):
        assert (stack.root / "reports" / "monitor" / ENV / plot).read_bytes()[:4] == b"\x89PNG"


def _score_if_any(document: dict[str, Any]) -> dict[str, list[str]]:
    """A shifted input may move the score too: that is the same cause, seen twice."""
    return {"score_drift": ["score"]} if "score_drift" in _breached(document) else {}


def test_the_request_log_holds_no_more_than_the_rate_and_the_drift_gate_reads_it(
    stack: Stack,
) -> None:
    log = Path(stack.logged.request_log)
    feature = _numeric(stack)
    sent = _send(
        stack, stack.logged, 6, lambda rows: rows.assign(**{feature: rows[feature] * 3 + 50})
    )
    lines = log.read_text(encoding="utf-8").splitlines()
    assert 0 < len(lines) <= sent * LOG_RATE + 2, (len(lines), sent)  # +1 per worker at most
    assert len(lines) >= sent * LOG_RATE - 2
    first = json.loads(lines[0])
    assert first["model_version"] == "v-logged"
    assert set(first["features"]) == set(stack.features)
    output = stack.root / "reports" / "rows"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.chdir(stack.root)
        code = main(["monitor", "--rows", str(log), "--output", str(output)])
    assert code == 1, printed.getvalue()  # the shifted feature fails the drift gate
    gate = json.loads((output / "gate.json").read_text(encoding="utf-8"))
    failed = [c for c in gate["checks"] if c["status"] == "fail"]
    assert [c["check"] for c in failed] == ["feature_drift"] or feature in printed.getvalue()
    assert (output / "drift.html").stat().st_size > 10_000
    checks = {c["check"] for c in gate["checks"]}
    assert checks <= {"feature_drift", "multivariate_drift", "new_categories"}, checks
    assert "need labels" in (output / "report.md").read_text(encoding="utf-8")

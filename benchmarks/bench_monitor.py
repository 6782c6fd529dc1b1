"""The drift monitor: false alarms and detection on simulated windows, speed on real parts.

1. Statistics (pure): a reference profile from one draw of the synthetic churn data (scores a
   known function of the inputs, labels drawn from the scores: calibrated by construction),
   then production windows from other draws of the same distribution. Per criterion: the
   share of unchanged windows that breach (false alarms), the share of N-of-M decisions that
   would retrain on unchanged traffic, and the share of windows that catch injected drifts.
2. `modelops monitor --env production` against a real Prometheus scraping the real server on
   the default features (7 windows of 1d, the template's params): seconds per environment.
3. `modelops monitor --rows` on a request log of 1,000,000 rows: seconds and peak memory.

    python -m benchmarks.bench_monitor [--quick] [--statistics-only]

Results: benchmarks/results/monitor.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.bench_pipeline import RESULTS, environment, fresh, machine, timed, write_results
from modelops.monitoring import quality
from modelops.monitoring.decide import decide, window_status
from modelops.monitoring.drift import judge_drift
from modelops.monitoring.monitor import limits
from modelops.monitoring.windows import window_of
from modelops.params import load_params
from modelops.statistics import wilson
from modelops.synth import CATEGORICAL, NUMERIC, generate_churn
from modelops.telemetry.profile import build_profile
from tests.support import copy_template, small_params, venv_bin

LIMITS = limits(load_params(Path(__file__).resolve().parents[1] / "params.yaml"))
"""The template's: gates.drift, gates.model, monitoring.objectives and retrain."""
ROWS_PER_WINDOW = 5000
NOTE = (
    "What the limits let through, by design: `monthly_charges x1.3` moves the feature's KS to "
    "about 0.1, under the pull-request gate's `max_numeric_drift` 0.2 (the same limit in both "
    "places: tighten it there to see smaller moves); electronic_check from 28% to 40% of "
    "payment_method reads Cramér's V about 0.13, under `max_categorical_drift` 0.2, and the "
    "same at any window size, as the gate reads it; 10% of labels flipped moves each score "
    "bin's positive share by about 0.1 x |1 - 2p|, mostly under `max_calibration_gap` 0.05. "
    "Realized recall and precision catch the larger flips too."
)
M, N = 7, 3


def _scores(frame: pd.DataFrame) -> np.ndarray:
    tenure = pd.to_numeric(frame["tenure_months"], errors="coerce").fillna(24).to_numpy()
    calls = pd.to_numeric(frame["support_calls_90d"], errors="coerce").fillna(1).to_numpy()
    return 1.0 / (1.0 + np.exp(-(0.8 * calls - 0.06 * tenure)))


def _labels(scores: np.ndarray, seed: int, flip: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    positive = rng.uniform(size=scores.size) < scores
    flipped = rng.uniform(size=scores.size) < flip
    return positive ^ flipped


def _profile() -> Any:
    train, test = generate_churn(16_000, seed=100), generate_churn(4000, seed=101)
    scores = _scores(test)
    positive = _labels(scores, 1)
    flagged = scores >= 0.5
    expected = {
        "recall": float((flagged & positive).sum() / positive.sum()),
        "precision": float((flagged & positive).sum() / flagged.sum()),
    }
    return build_profile(
        train,
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        test_scores=scores,
        test_positive=positive,
        threshold=0.5,
        expected=expected,
        positive_label="1",
    )


Change = Callable[[pd.DataFrame], pd.DataFrame]


def _statuses(profile: Any, seed: int, change: Change, flip: float) -> Mapping[str, str]:
    frame = change(generate_churn(ROWS_PER_WINDOW, seed=seed))
    scores = _scores(frame)
    window = window_of(profile, frame, scores, _labels(scores, seed, flip))
    findings = [
        *judge_drift(profile, window, LIMITS),
        *quality.realized(dict(profile.expected), window, LIMITS),
        quality.concept_drift(profile.score, window, LIMITS),
    ]
    return window_status(findings)


def _rate(events: int, runs: int) -> dict[str, Any]:
    found = wilson(events, runs, z=1.96)
    return {"events": events, "runs": runs, "rate": events / runs, "ci": [found.low, found.high]}


def bench_statistics(windows: int) -> dict[str, Any]:
    profile = _profile()
    unchanged = [_statuses(profile, 10_000 + s, lambda f: f, 0.0) for s in range(windows)]
    criteria = sorted(unchanged[0])
    false_alarms = {c: _rate(sum(w[c] == "breach" for w in unchanged), windows) for c in criteria}
    any_breach = _rate(sum(any(s == "breach" for s in w.values()) for w in unchanged), windows)
    decisions = 0
    for end in range(M, windows + 1):
        from modelops.monitoring.drift import Finding

        series = [
            [Finding(c, c, s, "", None, None, 0, 0, "") for c, s in w.items()]  # type: ignore[arg-type]
            for w in unchanged[end - M : end]
        ]
        decisions += decide(
            series, breaches=N, retrain_on=criteria, age_days=None, max_age_days=90
        ).retrain
    drifts: dict[str, tuple[Change, float, str]] = {
        "monthly_charges x1.3": (
            lambda f: f.assign(monthly_charges=f["monthly_charges"] * 1.3),
            0.0,
            "feature_drift",
        ),
        "monthly_charges x2": (
            lambda f: f.assign(monthly_charges=f["monthly_charges"] * 2),
            0.0,
            "feature_drift",
        ),
        "payment_method: electronic_check 28% -> 40%": (
            _category_share("payment_method", "electronic_check", 0.40),
            0.0,
            "feature_drift",
        ),
        "payment_method: electronic_check 28% -> 80%": (
            _category_share("payment_method", "electronic_check", 0.80),
            0.0,
            "feature_drift",
        ),
        "region: 5% a new category": (_new_category(0.05), 0.0, "unseen_categories"),
        "age: 10% more missing": (_missing(0.10), 0.0, "missing_values"),
        "age: 30% more missing": (_missing(0.30), 0.0, "missing_values"),
        "labels: 10% flipped": (lambda f: f, 0.10, "concept_drift"),
        "labels: 30% flipped": (lambda f: f, 0.30, "concept_drift"),
    }
    detection = {}
    runs = max(windows // 5, 20)
    for name, (change, flip, criterion) in drifts.items():
        seen = [_statuses(profile, 20_000 + s, change, flip) for s in range(runs)]
        detection[name] = {
            "criterion": criterion,
            **_rate(sum(w[criterion] == "breach" for w in seen), runs),
            "other_criteria": sorted(
                {c for w in seen for c, s in w.items() if s == "breach"} - {criterion}
            ),
        }
    return {
        "windows": windows,
        "rows_per_window": ROWS_PER_WINDOW,
        "false_alarms": false_alarms,
        "any_breach": any_breach,
        "false_retrain": _rate(decisions, windows - M + 1),
        "detection": detection,
    }


def _category_share(feature: str, value: str, share: float) -> Change:
    """`value` takes `share` of the rows that have one (the others in the same proportions)."""

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        column = frame[feature].astype(object).copy()
        present = column.notna().to_numpy()
        before = float((column[present] == value).mean())
        moved = np.random.default_rng(len(frame)).uniform(size=len(column))
        chosen = present & (moved < (share - before) / (1 - before))
        return frame.assign(**{feature: column.mask(chosen, value)})

    return change


def _new_category(share: float) -> Change:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        region = frame["region"].astype(object).copy()
        new = np.arange(len(region)) < int(len(region) * share)
        region = pd.Series(np.where(new, "atlantis", region), index=region.index, dtype=object)
        return frame.assign(region=region)

    return change


def _missing(share: float) -> Change:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        age = frame["age"].astype(float).copy()
        age = age.mask(np.arange(len(age)) < int(len(age) * share))
        return frame.assign(age=age)

    return change


def bench_real(rows_in_log: int) -> dict[str, Any]:
    """A trained project (default features), a real server and Prometheus; then the log."""
    from modelops.cli import main
    from modelops.deploy.workflow import Plan, write
    from modelops.identity import content_hash
    from modelops.params import load_params
    from modelops.prepared import load_prepared
    from modelops.rehearsal import processes
    from modelops.rehearsal.plan import ServerPlan
    from modelops.rehearsal.traffic import post
    from modelops.releases import state
    from modelops.releases.files import load_releases
    from modelops.releases.publish import publish
    from tests.support import write_params

    project = copy_template(fresh("monitor"), small_params(5000))
    params = small_params(5000)
    params["deploy"]["environments"]["production"]["namespace"] = "rehearsal"
    write_params(project, params)
    (project / "serving" / ".venv").symlink_to(
        Path(__file__).resolve().parents[1] / "serving" / ".venv"
    )
    env = environment(project)
    for command in ("prepare", "train"):
        timed([str(venv_bin() / "modelops"), command], project, env)
    loaded = load_params(project / "params.yaml")
    model_dir = project / "models" / "model"
    uri, digest = publish(
        model_dir, store=loaded.deploy.store, name=loaded.deploy.name, root=project
    )
    model = state.ModelVersion("v-bench", uri, digest, "bench", "0" * 40)
    change = state.Change(
        at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), by="bench", reason="bench"
    )
    release = state.deploy(
        state.Release(environment="production"),
        model,
        strategy="direct",
        steps=[100],
        change=change,
    )
    releases = load_releases(project, loaded)
    releases["production"] = release  # type: ignore[assignment]
    write(project, loaded, Plan(releases, ("production",), "deploy"))
    prepared = load_prepared(project / "data" / "prepared")
    features = list(prepared.schema.features)
    ports = iter(processes.free_ports(3))
    server = ServerPlan(
        "stable", model_dir, "v-bench", content_hash(model_dir), next(ports), next(ports)
    )
    prometheus = next(ports)
    seconds: list[float] = []
    try:
        processes.up(
            project, [server], None, prometheus_port=prometheus, threshold=0.5, business_value=None
        )
        rows = prepared.test[features]
        values = rows.astype(object).where(rows.notna(), None).values.tolist()
        deadline = time.monotonic() + 30
        sent = 0
        while time.monotonic() < deadline:
            chunk = values[sent % 900 : sent % 900 + 100]
            post(
                f"{server.url}/api/v1.0/predictions",
                {"data": {"names": features, "ndarray": chunk}},
            )
            sent += 100
        time.sleep(2)
        for _ in range(5):
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed), contextlib.chdir(project):
                started = time.perf_counter()
                assert (
                    main(
                        [
                            "monitor",
                            "--env",
                            "production",
                            "--prometheus",
                            f"http://127.0.0.1:{prometheus}",
                        ]
                    )
                    == 0
                )
                seconds.append(time.perf_counter() - started)
    finally:
        processes.down(project)
    log = project / "requests.jsonl"
    _write_log(log, prepared.test[features], rows_in_log)
    batch, code = _timed_gate(project, log, env)
    return {
        "features": len(features),
        "monitor_seconds": [round(s, 2) for s in seconds],
        "monitor_median_s": round(float(np.median(seconds)), 2),
        "queries_per_look": 5 * 7 + 1,
        "batch_rows": rows_in_log,
        "batch_log_mb": round(log.stat().st_size / 1e6),
        "batch_seconds": round(batch.seconds, 1),
        "batch_peak_mb": round(batch.peak_mb),
        "batch_exit_code": code,
    }


def _timed_gate(project: Path, log: Path, env: dict[str, str]) -> tuple[Any, int]:
    """`modelops monitor --rows` as a child process: its time, peak memory and exit code (1 is
    a drift verdict, not a failure to run)."""
    import subprocess

    from benchmarks.bench_pipeline import Timing

    started = time.perf_counter()
    process = subprocess.Popen(
        [str(venv_bin() / "modelops"), "monitor", "--rows", str(log)],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode() if process.stderr else ""
    if code not in (0, 1):
        raise SystemExit(f"monitor --rows failed ({code}):\n{errors}")
    return Timing(time.perf_counter() - started, usage.ru_maxrss / 1024, ""), code


def _write_log(path: Path, rows: pd.DataFrame, count: int) -> None:
    records = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
    with path.open("w", encoding="utf-8") as out:
        for index in range(count):
            line = {
                "at": "2026-12-03T00:00:00Z",
                "model_version": "v-bench",
                "score": 0.5,
                "features": records[index % len(records)],
            }
            out.write(json.dumps(line) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer windows and log rows")
    parser.add_argument(
        "--statistics-only",
        action="store_true",
        help="rerun the simulated windows (part 1) only; keep the real parts' figures of the "
        "last full run (Prometheus, a million-row log: minutes and a gigabyte)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    windows = 100 if args.quick else 500
    statistics = bench_statistics(windows)
    kept: dict[str, Any] = {}
    if args.statistics_only:
        kept = json.loads((RESULTS / "monitor.json").read_text(encoding="utf-8"))
        real = kept["real"]
    else:
        real = bench_real(100_000 if args.quick else 1_000_000)
    seconds = time.perf_counter() - started
    result = {"statistics": statistics, "real": real, "machine": machine(), "seconds": seconds}
    command = "python -m benchmarks.bench_monitor" + " --quick" * args.quick
    if args.statistics_only:
        result["real_from"] = kept.get("real_from") or {
            "command": command,
            "machine": kept["machine"],
            "seconds": kept["seconds"],
        }
        command += " --statistics-only"
    alarms = statistics["false_alarms"]
    lines = [
        "# Drift monitor: false alarms, detection, speed",
        "",
        f"Machine: {machine()}. `{command}`; {seconds:.0f} s in all"
        + (" (the simulated windows only)." if args.statistics_only else "."),
        "",
        f"## Unchanged traffic: {windows} windows of {ROWS_PER_WINDOW} rows",
        "",
        "The template's limits (gates.drift, gates.model.max_prediction_drift, "
        "monitoring.objectives, monitoring.retrain), confidence 0.95, the features of a window "
        "sharing the error rate.",
        "",
        "| criterion | windows breached | rate [95% CI] |",
        "| --- | --- | --- |",
        *(
            f"| {c} | {r['events']} of {r['runs']} | {r['rate']:.1%} "
            f"[{r['ci'][0]:.1%}, {r['ci'][1]:.1%}] |"
            for c, r in alarms.items()
        ),
        f"| any criterion | {statistics['any_breach']['events']} of {windows} | "
        f"{statistics['any_breach']['rate']:.1%} [{statistics['any_breach']['ci'][0]:.1%}, "
        f"{statistics['any_breach']['ci'][1]:.1%}] |",
        "",
        f"Retraining decisions ({N} of the last {M} windows, the latest included) on unchanged "
        f"traffic: {statistics['false_retrain']['events']} of {statistics['false_retrain']['runs']}"
        f" ({statistics['false_retrain']['rate']:.1%}, 95% CI up to "
        f"{statistics['false_retrain']['ci'][1]:.1%}).",
        "",
        "## Injected drift: the share of windows that breach the right criterion",
        "",
        "| drift | criterion | windows breached | rate [95% CI] | other criteria breached |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {name} | {d['criterion']} | {d['events']} of {d['runs']} | {d['rate']:.0%} "
            f"[{d['ci'][0]:.0%}, {d['ci'][1]:.0%}] | {', '.join(d['other_criteria']) or 'none'} |"
            for name, d in statistics["detection"].items()
        ),
        "",
        NOTE,
        "",
        "## On real parts",
        "",
        *(
            [
                f"From the last full run (`{result['real_from']['command']}`, "
                f"{result['real_from']['seconds']:.0f} s): `--statistics-only` reran the "
                "sections above only.",
                "",
            ]
            if args.statistics_only
            else []
        ),
        f"`modelops monitor --env production` on the default {real['features']} features, 7 "
        f"windows of 1d from a real Prometheus ({real['queries_per_look']} queries): "
        f"{real['monitor_median_s']} s median of {real['monitor_seconds']}.",
        "",
        f"`modelops monitor --rows` on {real['batch_rows']:,} logged rows "
        f"({real['batch_log_mb']} MB of JSON lines): {real['batch_seconds']} s, peak memory "
        f"{real['batch_peak_mb']} MB.",
        "",
    ]
    write_results("monitor", result, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

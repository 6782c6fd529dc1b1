"""`modelops monitor --env`: one look at an environment in production, and what it leaves.

The edges of the monitor: the release file, the served model's profile, Prometheus
(`monitor.look`), and the files a look leaves: reports/monitor/<env>/ (report.md,
report.json, plots), one line appended to the decision log manifests/decisions/<env>.jsonl
(committed by monitor.yml) and, when asked, the commit message. Which files and what they say
is pure (`files`, `monitoring.report`); `monitor-issues` and `retrain` read the report back
(`read_report`).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

from modelops.errors import MonitorError
from modelops.io import bytes_writer, commit
from modelops.monitoring import report
from modelops.monitoring.decide import log_record
from modelops.monitoring.monitor import Look, load_profile, served_model
from modelops.monitoring.monitor import look as look_at
from modelops.params import load_params
from modelops.paths import ProjectPaths
from modelops.releases.files import load_releases
from modelops.telemetry.profile import ReferenceProfile
from modelops.telemetry.prometheus import connect


@dataclass(frozen=True)
class Watched:
    """One look at an environment, or nothing (nothing released, and that was fine)."""

    environment: str
    look: Look | None
    profile: ReferenceProfile | None
    seconds: float = 0.0
    """How long judging the windows took (Prometheus's answers included)."""


@dataclass(frozen=True)
class Kept:
    """Where a look was kept (empty when nothing was looked at)."""

    folder: Path | None = None
    log: Path | None = None


def moment(given: str | None) -> float:
    """`--at` (ISO 8601; UTC unless it says otherwise) as a Unix time; now when not given."""
    if given is None:
        return time.time()
    try:
        parsed = dt.datetime.fromisoformat(given.replace("Z", "+00:00"))
    except ValueError:
        raise MonitorError(
            f"--at must be ISO 8601 like 2026-12-03T08:00:00Z, got {given!r}"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def look(
    paths: ProjectPaths,
    environment: str,
    prometheus_url: str | None,
    profile: Path | None = None,
    *,
    at: str | None = None,
    if_released: bool = False,
) -> Watched:
    """Judge the environment's served model over its windows ending `at` (ISO 8601, default
    now), against its profile (`profile`: a model directory or profile.json, default from the
    store). With `if_released`, an environment with nothing released is no error."""
    root, params = paths.root, load_params(paths.params_file)
    if environment not in params.deploy.environments:
        raise MonitorError(
            f"unknown environment '{environment}'; params.yaml declares "
            f"{', '.join(sorted(params.deploy.environments))}"
        )
    release = load_releases(root, params)[environment]
    if release.stable is None and if_released:
        return Watched(environment, None, None)
    model = served_model(release)
    reference, source = load_profile(root, model, profile, deploy=params.deploy)
    prometheus = connect(prometheus_url, params.monitoring.prometheus_url)
    when = moment(at)
    started = time.perf_counter()
    seen = look_at(params, release, reference, prometheus, profile_source=source, at=when)
    return Watched(environment, seen, reference, time.perf_counter() - started)


def files(
    watched: Watched, *, folder: Path, log: Path, previous_log: str, message_file: Path | None
) -> dict[Path, bytes]:
    """Every file a look leaves, by path: the report, its plots, the decision log with one
    more line, the commit message (pure, given the log so far)."""
    seen, profile = watched.look, watched.profile
    if seen is None or profile is None:
        return {}
    decision = seen.decision
    record = log_record(
        decision,
        environment=seen.environment,
        model_version=seen.model.version,
        at=seen.at,
        window=seen.window,
    )
    outputs = {
        folder / "report.md": report.to_markdown(seen).encode(),
        folder / "report.json": report.to_json(seen).encode(),
        **{folder / name: png for name, png in report.plots(seen, profile).items()},
        log: (previous_log + json.dumps(record, sort_keys=True) + "\n").encode(),
    }
    if message_file is not None:
        message = report.commit_message(decision, seen.environment, seen.model.version)
        outputs[message_file] = message.encode()
    return outputs


def keep(
    root: Path, watched: Watched, *, folder: Path | None = None, message_file: Path | None = None
) -> Kept:
    """Write what the look leaves, all files or none (`folder`: default reports/monitor/)."""
    if watched.look is None:
        return Kept()
    project = ProjectPaths(root)
    where = (folder if folder is not None else project.monitor_dir) / watched.environment
    log = project.decisions_dir / f"{watched.environment}.jsonl"
    previous = log.read_text(encoding="utf-8") if log.is_file() else ""
    outputs = files(
        watched, folder=where, log=log, previous_log=previous, message_file=message_file
    )
    for path in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)
    commit({path: bytes_writer(content) for path, content in outputs.items()})
    return Kept(where, log)


def to_text(watched: Watched, kept: Kept, paths: ProjectPaths) -> str:
    """What `modelops monitor --env` prints: the decision, each criterion per window, where
    the report went."""
    if watched.look is None or kept.folder is None or kept.log is None:
        return f"monitor: nothing is released to {watched.environment}: nothing to monitor"
    return (
        report.to_text(watched.look, watched.seconds)
        + f"\nmonitor: wrote {paths.show(kept.folder)}/report.md, report.json; "
        f"{paths.show(kept.log)}"
    )


def read_report(
    paths: ProjectPaths, folder: Path | None, environment: str
) -> tuple[report.ReportDocument, str]:
    """The environment's latest report (JSON document, Markdown), or what to run first."""
    where = (folder if folder is not None else paths.monitor_dir) / environment
    try:
        # As `report.to_json` wrote it; only its environment is checked here.
        document: report.ReportDocument = json.loads(
            (where / "report.json").read_text(encoding="utf-8")
        )
        markdown = (where / "report.md").read_text(encoding="utf-8")
    except (OSError, ValueError):
        raise MonitorError(
            f"no monitor report in {paths.show(where)}: run `modelops monitor --env "
            f"{environment}` first"
        ) from None
    if document.get("environment") != environment:
        raise MonitorError(f"{paths.show(where)}/report.json is about another environment")
    return document, markdown

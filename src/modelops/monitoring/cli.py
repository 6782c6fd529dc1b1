"""`modelops monitor`: production drift and quality, and the retraining decision.

- `modelops monitor --env production`: the served model's telemetry from Prometheus, window by
  window, against its reference profile; writes reports/monitor/<env>/ (report.md, report.json,
  plots) and appends the decision to manifests/decisions/<env>.jsonl (committed).
- `modelops monitor --rows FILE`: the pull-request drift gate (Deepchecks) on logged request
  rows against the training data, with its HTML report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from modelops.paths import ProjectPaths


def register(commands: Any) -> None:
    """Add `monitor` to the `modelops` command."""
    monitor = commands.add_parser(
        "monitor",
        help="Production drift and quality against the served model's profile; decide retraining.",
        description="Judge the served model's recent telemetry window by window (the pull "
        "request drift gate's statistics and limits), estimate and measure its quality, and "
        "decide whether to retrain (runbooks/drift-and-retraining.md). With --rows, run the "
        "drift gate on logged request rows instead.",
    )
    target = monitor.add_mutually_exclusive_group(required=True)
    target.add_argument("--env", help="the environment (deploy.environments) to monitor")
    target.add_argument(
        "--rows",
        type=Path,
        metavar="FILE",
        help="a request log (JSON lines, the server's monitoring.request_log) to gate",
    )
    monitor.add_argument(
        "--prometheus",
        metavar="URL",
        default=None,
        help="Prometheus to ask (default: $MODELOPS_PROMETHEUS_URL, then "
        "monitoring.prometheus_url)",
    )
    monitor.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="the served model's directory or profile.json (default: from deploy.store)",
    )
    monitor.add_argument(
        "--at",
        default=None,
        help="judge windows ending at this time (ISO 8601, e.g. 2026-12-03T08:00:00Z; "
        "default: now)",
    )
    monitor.add_argument(
        "--output", type=Path, default=None, help="report directory (default reports/monitor/)"
    )
    monitor.add_argument(
        "--message-file", type=Path, default=None, help="write a commit message for the log"
    )
    monitor.add_argument(
        "--if-released",
        action="store_true",
        help="an environment with nothing released is fine (exit 0, nothing written)",
    )
    monitor.set_defaults(handler=_monitor)
    issues = commands.add_parser(
        "monitor-issues",
        help="Post the monitor's report to one GitHub issue per environment and cause.",
        description="From reports/monitor/<env>/report.json: open or update one issue per "
        "cause breached in the latest window (never a duplicate), close the ones that cleared. "
        "GitHub from $GITHUB_API_URL, $GITHUB_REPOSITORY and $GITHUB_TOKEN.",
    )
    issues.add_argument("--env", required=True, help="the environment the report is about")
    issues.add_argument("--report", type=Path, default=None, help="report directory")
    issues.set_defaults(handler=_issues)
    retrain = commands.add_parser(
        "retrain",
        help="On a retrain decision: a branch with fresh data, reproduced, as a pull request.",
        description="Read the monitor's decision (reports/monitor/<env>/report.json); when it "
        "is to retrain, start branch retrain/<env>, refresh the data (dvc update, or "
        "monitoring.retrain.refresh_command), run `dvc repro`, commit, and with --remote push "
        "it and open the pull request (GitHub from the environment). Never merges.",
    )
    retrain.add_argument("--env", required=True, help="the environment the decision is about")
    retrain.add_argument("--report", type=Path, default=None, help="report directory")
    retrain.add_argument("--remote", default=None, help="git remote to push the branch to")
    retrain.add_argument(
        "--force", action="store_true", help="retrain even when the decision is not to"
    )
    retrain.set_defaults(handler=_retrain)


def _monitor(args: argparse.Namespace, paths: ProjectPaths) -> int:
    if args.rows is not None:
        from modelops.monitoring.batch import gate_rows

        folder = args.output if args.output is not None else paths.monitor_dir / "rows"
        return gate_rows(paths, args.rows, folder)
    return _look(args, paths)


def _look(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.errors import MonitorError
    from modelops.io import bytes_writer, commit
    from modelops.monitoring import report
    from modelops.monitoring.decide import log_record
    from modelops.monitoring.monitor import load_profile, look, served_model
    from modelops.params import load_params
    from modelops.releases.files import load_releases
    from modelops.telemetry.prometheus import connect

    params = load_params(paths.params_file)
    if args.env not in params.deploy.environments:
        raise MonitorError(
            f"unknown environment '{args.env}'; params.yaml declares "
            f"{', '.join(sorted(params.deploy.environments))}"
        )
    release = load_releases(paths.root, params)[args.env]
    if release.stable is None and args.if_released:
        print(f"monitor: nothing is released to {args.env}: nothing to monitor")
        return 0
    model = served_model(release)
    profile, source = load_profile(paths.root, model, args.profile)
    prometheus = connect(args.prometheus, params.monitoring.prometheus_url)
    at = _moment(args.at)
    started = time.perf_counter()
    result = look(params, release, profile, prometheus, profile_source=source, at=at)
    seconds = time.perf_counter() - started
    folder = (args.output if args.output is not None else paths.monitor_dir) / args.env
    log = paths.decisions_dir / f"{args.env}.jsonl"
    record = log_record(
        result.decision,
        environment=args.env,
        model_version=model.version,
        at=at,
        window=params.monitoring.retrain.window,
    )
    previous = log.read_text(encoding="utf-8") if log.is_file() else ""
    outputs = {
        folder / "report.md": report.to_markdown(result).encode(),
        folder / "report.json": report.to_json(result).encode(),
        **{folder / name: png for name, png in report.plots(result, profile).items()},
        log: (previous + json.dumps(record, sort_keys=True) + "\n").encode(),
    }
    if args.message_file is not None:
        outputs[args.message_file] = _message(result.decision, args.env, model.version).encode()
    for path in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)
    commit({path: bytes_writer(content) for path, content in outputs.items()})
    _print(result, seconds)
    print(f"monitor: wrote {paths.show(folder)}/report.md, report.json; {paths.show(log)}")
    return 0


def _print(result: Any, seconds: float) -> None:
    decision = result.decision
    verdict = "retrain" if decision.retrain else "no retraining"
    print(
        f"{result.environment}: model {result.model.version}, {len(result.judged)} windows of "
        f"{result.window} judged in {seconds:.1f} s: {verdict}"
    )
    for reason in decision.reasons:
        print(f"  - {reason}")
    for cause in decision.causes:
        marks = " ".join(
            {"breach": "X", "ok": ".", "dismissed": "d"}.get(s, "?") for s in cause.statuses
        )
        subjects = f" ({', '.join(cause.subjects)})" if cause.subjects else ""
        print(f"  {cause.criterion:<18} {marks}{subjects}")
    print("  (X breach, . ok, ? too little data, d dismissed; oldest window first)")
    from modelops.monitoring.monitor import silent

    warning = silent(result)
    if warning:
        print(f"  warning: {warning}")


def _message(decision: Any, environment: str, version: str) -> str:
    verdict = "retrain" if decision.retrain else "no retraining"
    body = "\n".join(f"- {r}" for r in decision.reasons) or "- no criterion triggered"
    return (
        f"monitor {environment}: {verdict} (model {version})\n\n{body}\n\nRule: {decision.rule}\n"
    )


def _moment(given: str | None) -> float:
    from modelops.errors import MonitorError

    if given is None:
        return time.time()
    try:
        moment = dt.datetime.fromisoformat(given.replace("Z", "+00:00"))
    except ValueError:
        raise MonitorError(
            f"--at must be ISO 8601 like 2026-12-03T08:00:00Z, got {given!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


LABEL = "drift-monitor"


def _report(
    paths: ProjectPaths, folder: Path | None, environment: str
) -> tuple[dict[str, Any], str]:
    from modelops.errors import MonitorError

    where = (folder if folder is not None else paths.monitor_dir) / environment
    try:
        document = json.loads((where / "report.json").read_text(encoding="utf-8"))
        markdown = (where / "report.md").read_text(encoding="utf-8")
    except (OSError, ValueError):
        raise MonitorError(
            f"no monitor report in {paths.show(where)}: run `modelops monitor --env "
            f"{environment}` first"
        ) from None
    if document.get("environment") != environment:
        raise MonitorError(f"{paths.show(where)}/report.json is about another environment")
    return document, markdown


def _issues(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.github import connect, run_url, sync_issues

    document, markdown = _report(paths, args.report, args.env)
    causes = issue_texts(document, markdown, run_url=run_url())
    actions = sync_issues(
        connect(),
        label=LABEL,
        scope=f"{args.env}/",
        open_causes=causes,
        cleared_comment=f"Cleared: the latest monitor window ({document['at']}) shows no "
        "breach of this cause.",
    )
    for action, key, number in actions:
        print(f"monitor-issues: {action} #{number} ({key})")
    if not actions:
        print(f"monitor-issues: {args.env}: nothing breached, no issue open")
    return 0


def issue_texts(
    document: dict[str, Any], markdown: str, *, run_url: str | None
) -> dict[str, tuple[str, str]]:
    """(title, body) per open cause key (`<env>/<criterion>`, `<env>/age`) of a report."""
    environment = document["environment"]
    decision = document["decision"]
    found: dict[str, tuple[str, str]] = {}
    where = f"\n\nPlots and the JSON: the workflow run's artifacts ({run_url})." if run_url else ""
    for cause in decision["causes"]:
        if not cause["active"]:
            continue
        subjects = ", ".join(cause["subjects"])
        title = f"Drift monitor: {environment} {cause['criterion']} ({subjects})"
        status = (
            "retraining triggered"
            if cause["triggered"]
            else f"breached in {cause['breaches']} of {len(cause['statuses'])} windows"
        )
        body = (
            f"**{cause['criterion']}** on {subjects} in {environment} (model "
            f"{document['model_version']}): {status}. What it means and what to do: "
            f"runbooks/drift-and-retraining.md#{cause['criterion'].replace('_', '-')}.{where}"
            f"\n\n{markdown}"
        )
        found[f"{environment}/{cause['criterion']}"] = (title, body)
    age = decision.get("age_days")
    if any("days old" in reason for reason in decision["reasons"]):
        found[f"{environment}/age"] = (
            f"Drift monitor: {environment} model older than its schedule",
            f"The served model is {age} days old: retraining on schedule "
            f"(monitoring.retrain.max_age_days).{where}\n\n{markdown}",
        )
    return found


def _retrain(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.github import connect
    from modelops.monitoring.retrain import retrain
    from modelops.params import load_params

    document, markdown = _report(paths, args.report, args.env)
    decision = document["decision"]
    if not decision["retrain"] and not args.force:
        print(f"retrain: {args.env}: the monitor decided not to retrain; nothing to do")
        return 0
    params = load_params(paths.params_file)
    github = connect() if args.remote is not None else None
    done = retrain(
        paths.root,
        params,
        args.env,
        reasons=list(decision["reasons"]) or ["retraining requested (--force)"],
        report=markdown,
        remote=args.remote,
        github=github,
    )
    refreshed = "; ".join(done.refreshed)
    print(f"retrain: {args.env}: branch {done.branch}, {done.note}")
    if refreshed:
        print(f"  data: {refreshed}")
    if done.pull_request:
        print(f"  pull request: {done.pull_request}")
    return 0

"""`modelops monitor`: production drift and quality, and the retraining decision.

- `modelops monitor --env production`: the served model's telemetry from Prometheus, window by
  window, against its reference profile; writes reports/monitor/<env>/ (report.md, report.json,
  plots) and appends the decision to manifests/decisions/<env>.jsonl (committed).
- `modelops monitor --rows FILE`: the pull-request drift gate (Deepchecks) on logged request
  rows against the training data, with its HTML report.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.errors import ExitCode
from modelops.telemetry.prometheus import add_prometheus_option

if TYPE_CHECKING:
    from modelops.paths import ProjectPaths


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    add_prometheus_option(monitor)
    monitor.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="the served model's directory (refused if it holds another model; default: its "
        "profile in deploy.store)",
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
        "it and open the pull request (GitHub and its token from the environment: never an "
        "argument). --push-only does only that last part, for the branch an earlier run "
        "without --remote committed. Never merges.",
    )
    retrain.add_argument("--env", required=True, help="the environment the decision is about")
    retrain.add_argument("--report", type=Path, default=None, help="report directory")
    retrain.add_argument(
        "--remote",
        default=None,
        help="git remote to push the branch to (a name or a URL without credentials)",
    )
    retrain.add_argument(
        "--push-only",
        action="store_true",
        help="push the branch `retrain --env ENV` committed here and open its pull request; "
        "refresh and reproduce nothing (the step that holds the token, in monitor.yml)",
    )
    retrain.add_argument(
        "--force", action="store_true", help="retrain even when the decision is not to"
    )
    retrain.set_defaults(handler=_retrain)


def _monitor(args: argparse.Namespace, paths: ProjectPaths) -> int:
    return _rows(args, paths) if args.rows is not None else _look(args, paths)


def _rows(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.monitoring.batch import gate_rows

    gated = gate_rows(paths, args.rows, args.output)
    print(gated.to_text(paths))
    return gated.exit_code


def _look(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.monitoring import watch

    watched = watch.look(
        paths, args.env, args.prometheus, args.profile, at=args.at, if_released=args.if_released
    )
    kept = watch.keep(paths.root, watched, folder=args.output, message_file=args.message_file)
    print(watch.to_text(watched, kept, paths))
    return ExitCode.OK


def _issues(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.monitoring import issues

    print(issues.to_text(issues.post(paths, args.env, args.report), args.env))
    return ExitCode.OK


def _retrain(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.monitoring import retrain

    done = retrain.from_report(
        paths,
        args.env,
        folder=args.report,
        remote=args.remote,
        force=args.force,
        push_only=args.push_only,
    )
    print(retrain.to_text(done, args.env))
    return ExitCode.OK

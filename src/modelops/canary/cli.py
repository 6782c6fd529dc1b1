"""`modelops canary analyze | plan | auto`: the judge, its plan, the judge driving a rollout."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.errors import ExitCode
from modelops.releases.lock import one_at_a_time
from modelops.telemetry.prometheus import add_prometheus_option

if TYPE_CHECKING:
    from modelops.params import Params
    from modelops.paths import ProjectPaths


Handler = Callable[[argparse.Namespace, "ProjectPaths"], int]


def judge_action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    handler: Handler,
) -> argparse.ArgumentParser:
    """An action of a command that judges an environment from Prometheus (the canary judge,
    the experiment analysis): `--env`, `--prometheus`, and exit 2 when it cannot judge, since
    1 is one of its verdicts."""
    parser: argparse.ArgumentParser = actions.add_parser(
        name, help=help_text, description=help_text
    )
    parser.add_argument("--env", required=True, help="the environment (deploy.environments)")
    add_prometheus_option(parser)
    parser.set_defaults(handler=handler, error_code=ExitCode.UNDECIDED)
    return parser


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `canary` and its actions to the `modelops` command."""
    canary = commands.add_parser(
        "canary",
        help="Judge a running canary from telemetry: promote, hold or roll back.",
        description="Compare an environment's canary with its stable model over the current "
        "step, from the telemetry Prometheus scraped (runbooks/canary-promotion.md).",
    )
    actions = canary.add_subparsers(dest="canary_action", metavar="ACTION")

    def action(name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
        return judge_action(actions, name, help_text, handler)

    analyze = action(
        "analyze",
        "Print the verdict for the current step and write it to reports/canary/<env>.md and "
        ".json. Exits 0 promote, 3 hold, 1 roll back, 2 when it cannot judge (no canary, no "
        "Prometheus).",
        _analyze,
    )
    analyze.add_argument("--output", type=Path, default=None, help="directory for the verdict")
    plan = action(
        "plan",
        "Say how long each canary step needs, from the current traffic and the judge's bounds "
        "under canary: in params.yaml (the smallest effects it must detect).",
        _plan,
    )
    plan.add_argument(
        "--window", default="1h", help="traffic window to plan from (PromQL duration, default 1h)"
    )
    auto = action(
        "auto",
        "Judge the current step and act on it: promote (commit the next step), roll back, or "
        "hold (change nothing); the verdict is kept beside the release and linked from its "
        "history. A hold past canary.max_step_duration does canary.on_timeout. Exits 0 when "
        "it acted or held, 3 when a person must decide.",
        one_at_a_time(_auto),
    )
    auto.add_argument("--message-file", type=Path, default=None, help="write the commit message")
    canary.set_defaults(handler=lambda args, paths: _usage(canary))


def _analyze(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.canary import analysis, document

    looked = analysis.look(paths.root, _params(paths), args.env, args.prometheus)
    print(document.to_text(looked.verdict))
    written = analysis.keep(paths.root, looked, args.output)
    print(f"verdict: {', '.join(paths.show(path) for path in written)}")
    return looked.verdict.exit_code


def _plan(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.canary import analysis, plan

    planned = analysis.plan(_params(paths), args.env, args.prometheus, window=args.window)
    print(plan.to_text(planned))
    return planned.exit_code


def _auto(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.canary import document, rollout

    params = _params(paths)
    looked = rollout.look(paths.root, params, args.env, args.prometheus)
    if looked.analysis is not None:
        print(document.to_text(looked.analysis.verdict))
    outcome = rollout.act(paths.root, params, looked, message_file=args.message_file)
    print(rollout.to_text(outcome), end="")
    return outcome.exit_code


def _params(paths: ProjectPaths) -> Params:
    from modelops.params import load_params

    return load_params(paths.params_file)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return ExitCode.UNDECIDED

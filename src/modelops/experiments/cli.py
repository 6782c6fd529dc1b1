"""`modelops experiment plan | analyze`: an A/B experiment's duration and verdict."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.canary.cli import Handler, judge_action
from modelops.errors import ExitCode

if TYPE_CHECKING:
    from modelops.params import Params
    from modelops.paths import ProjectPaths


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `experiment` and its actions to the `modelops` command."""
    experiment = commands.add_parser(
        "experiment",
        help="Plan an A/B experiment between models, and judge it from telemetry.",
        description="The experiment params.yaml declares for an environment (experiments: "
        "runbooks/ab-experiments.md): how long it needs, and its verdict so far.",
    )
    actions = experiment.add_subparsers(dest="experiment_action", metavar="ACTION")

    def action(name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
        return judge_action(actions, name, help_text, handler)

    plan = action(
        "plan",
        "Say how many KPI rows and days the experiment needs at the current traffic, before "
        "it starts. Exits 1 when that is longer than its max_days.",
        _plan,
    )
    plan.add_argument(
        "--window", default="7d", help="traffic window to plan from (PromQL duration, default 7d)"
    )
    analyze = action(
        "analyze",
        "Judge the running experiment: the sample ratio first, then the guardrails and the "
        "primary KPI, with intervals valid at every look. Writes reports/experiments/<env>.md "
        "and .json. Exits 0 winner or no difference, 3 keep running, 1 stop, 2 when it "
        "cannot judge.",
        _analyze,
    )
    analyze.add_argument("--output", type=Path, default=None, help="directory for the verdict")
    experiment.set_defaults(handler=lambda args, paths: _usage(experiment))


def _plan(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.experiments import analysis, document

    planned = analysis.plan(
        _params(paths), args.env, args.prometheus, root=paths.root, window=args.window
    )
    print(document.plan_text(planned))
    return planned.exit_code


def _analyze(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.experiments import analysis, document

    looked = analysis.look(paths.root, _params(paths), args.env, args.prometheus)
    print(document.to_text(looked))
    written = analysis.keep(paths.root, looked, args.output)
    print(f"verdict: {', '.join(paths.show(path) for path in written)}")
    return looked.judgement.verdict.exit_code


def _params(paths: ProjectPaths) -> Params:
    from modelops.params import load_params

    return load_params(paths.params_file)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return ExitCode.UNDECIDED

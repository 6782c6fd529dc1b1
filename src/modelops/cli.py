"""The `modelops` command: one subcommand per stage plus a few helpers.

Each subcommand loads params, resolves paths from the working directory (the project root), calls
one stage or library function, prints what it returns and returns an exit code (`ExitCode`):
a handler translates, the library decides (tests/cli/test_handlers.py holds handlers to 15
lines). Expected failures (`ModelopsError`) print one clear message and exit 1 (2 for a judge);
heavy imports happen inside subcommands so `modelops --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modelops import interrupt, orphan
from modelops.batch import cli as batch_cli
from modelops.canary import cli as canary_cli
from modelops.capacity import cli as capacity_cli
from modelops.deploy import cli as deploy_cli
from modelops.edge import cli as edge_cli
from modelops.errors import ExitCode, ModelopsError
from modelops.experiments import cli as experiment_cli
from modelops.gates.registry import GATE_NAMES
from modelops.monitoring import cli as monitor_cli
from modelops.rehearsal import cli as rehearsal_cli

if TYPE_CHECKING:
    from modelops.params import Params
    from modelops.paths import ProjectPaths

Handler = Callable[[argparse.Namespace, "ProjectPaths"], int]
_UPSTREAM_DEPRECATIONS = (
    "pkg_resources is deprecated",
    "DataFrame.applymap has been deprecated",
    "ChainedAssignmentError",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return ExitCode.UNDECIDED
    from modelops.paths import ProjectPaths  # params and pydantic: not for `--help`

    _configure_environment()
    paths = ProjectPaths(root=Path.cwd())
    started = time.perf_counter()
    with interrupt.handled(), orphan.stopped_when_dvc_is_gone():
        try:
            if hasattr(args, "announce"):  # a command that makes one wait says what runs first
                print(args.announce(args), file=sys.stderr, flush=True)
            handler: Handler = args.handler
            code = handler(args, paths)
            interrupt.ignore_from_now()
            interrupt.raise_if_requested()  # pressed while a library swallowed it
        except KeyboardInterrupt:
            interrupt.ignore_from_now()
            print(_interrupted(), file=sys.stderr)
            return ExitCode.INTERRUPTED
        except Exception as exc:
            if interrupt.requested():  # a library turned Ctrl-C (or a worker it killed) into this
                interrupt.ignore_from_now()
                print(_interrupted(), file=sys.stderr)
                return ExitCode.INTERRUPTED
            if not isinstance(exc, ModelopsError):
                raise
            print(f"error: {exc}", file=sys.stderr)
            return int(getattr(args, "error_code", ExitCode.FAILED))
        if args.handler in _STAGE_HANDLERS:
            _record_timing(paths, " ".join(argv if argv is not None else sys.argv[1:]), started)
    return code


def _interrupted() -> str:
    if interrupt.wrote_outputs():
        return "interrupted after writing some outputs: run the command again to finish"
    # Outputs are written atomically at the end, so an interrupted command changed nothing.
    return "interrupted: nothing was written"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelops",
        description="Train, evaluate and track the model described by params.yaml. "
        "Run from the project root; `dvc repro` calls the stage commands.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    command("prepare", _prepare, "Load or generate the data, validate it, split train/test.")
    command("train", _train, "Fit the model on the training set and save it under models/.")
    command("evaluate", _evaluate, "Score the model on the test set; record the run in MLflow.")
    command("champion", _champion, "Record which model the champion gate compares with.")
    gate = command(
        "gate", _gate, "Run the named gates (Deepchecks, the champion comparison, latency)."
    )
    gate.add_argument("names", nargs="+", choices=GATE_NAMES, metavar="GATE", help=str(GATE_NAMES))
    # Deepchecks takes seconds to import and run: say what runs before the wait.
    gate.set_defaults(announce=lambda args: f"gate {' '.join(args.names)}: running…")
    command("gates", _gates, "Collect the gate results into reports/gates.json; print them.")
    verdict = command(
        "verdict", _verdict, "Print the verdict; exit 1 when an enforced gate failed."
    )
    verdict.add_argument(
        "--committed",
        action="store_true",
        help="also fail when reports/gates.json as committed (HEAD) is not what this run gated "
        "(pr.yml: what merges is what deploys)",
    )
    verdict.add_argument(
        "--exact",
        action="store_true",
        help="with --committed: the very same model, not only the same training inputs "
        "(a DVC remote holds the model)",
    )
    report = command("report", _report, "Build the pull-request report: reports/report.md.")
    report.add_argument("--base", help="git ref to compare with (default: gates.champion.ref)")
    report.add_argument(
        "--no-images", action="store_true", help="list plots instead of embedding them"
    )
    params = command("params", _params, "Validate params.yaml and print it with defaults filled.")
    params.add_argument("--schema", action="store_true", help="print the JSON schema instead")
    generate = command("generate", _generate, "Write the built-in synthetic data to a file.")
    generate.add_argument("--rows", type=int, default=20_000, help="rows (default 20000)")
    generate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    generate.add_argument("--out", type=Path, required=True, help="a .csv or .parquet path")
    command("summary", _summary, "Print where the data, model, metrics, plots and run are.")
    deploy_cli.register(commands)
    rehearsal_cli.register(commands)
    canary_cli.register(commands)
    experiment_cli.register(commands)
    monitor_cli.register(commands)
    batch_cli.register(commands)
    capacity_cli.register(commands)
    edge_cli.register(commands)
    return parser


def _configure_environment() -> None:
    """Quiet third-party chatter, opt out of telemetry and keep idle threads from spinning,
    unless the user said otherwise."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("DISABLE_DEEPCHECKS_ANONYMOUS_TELEMETRY", "true")
    # scikit-learn's OpenMP threads otherwise spin between parallel regions (HistGradientBoosting
    # opens one per tree): when other processes hold the cores, the permutation importance of
    # `evaluate` took 4 to 5 times the CPU. Sleeping instead changes no result.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Deepchecks 0.19 (its last release) uses APIs its dependencies deprecated since; the
    # warnings are not actionable here. Worker processes it spawns read PYTHONWARNINGS.
    for message in _UPSTREAM_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message)
    os.environ.setdefault("PYTHONWARNINGS", ",".join(f"ignore:{m}" for m in _UPSTREAM_DEPRECATIONS))


def _prepare(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.stages import prepare, text

    result = prepare.run(
        _load_params(paths).prepare,
        root=paths.root,
        out_dir=paths.prepared_dir,
        metrics_file=paths.data_metrics,
    )
    print(text.prepared(result, out=paths.show(paths.prepared_dir)))
    return ExitCode.OK


def _train(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.stages import text, train

    params = _load_params(paths)
    result = train.run(
        params.train,
        threshold=params.evaluate.threshold,
        data_dir=paths.prepared_dir,
        model_dir=paths.model_dir,
    )
    print(text.trained(result, out=paths.show(paths.model_dir)))
    return ExitCode.OK


def _evaluate(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.stages import evaluate, text

    result = evaluate.run(
        _load_params(paths),
        root=paths.root,
        data_dir=paths.prepared_dir,
        model_dir=paths.model_dir,
        metrics_file=paths.model_metrics,
        plots_dir=paths.plots_dir,
        importance_file=paths.importance_file,
        run_file=paths.mlflow_run_file,
    )
    print(text.evaluated(result, metrics_file=paths.show(paths.model_metrics)))
    return ExitCode.OK


def _champion(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.stages import champion, text

    params = _load_params(paths).gates.champion
    identity = champion.run(params, root=paths.root, out_file=paths.champion_file)
    print(text.champion(identity, out=paths.show(paths.champion_file)))
    return ExitCode.OK


def _gate(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.stages import gate, text

    results = gate.run(
        args.names,
        _load_params(paths),
        root=paths.root,
        data_dir=paths.prepared_dir,
        model_dir=paths.model_dir,
        importance_file=paths.importance_file,
        out_dir=paths.gate_dir,
        html_dir=paths.html_dir,
    )
    print(text.gate_lines(results))
    return ExitCode.OK


def _gates(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.stages import gates, text

    outcome, results = gates.run(
        gate_dir=paths.gate_dir,
        out_file=paths.gates_file,
        run_file=paths.mlflow_run_file,
        root=paths.root,
    )
    print(text.collected(outcome, results, out=paths.show(paths.gates_file)))
    return ExitCode.OK


def _verdict(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy import gated

    record = gated.workspace_record(paths)
    print(f"verdict: {record.verdict.headline}")
    if args.committed:
        print(f"verdict: {gated.check_head(paths, record, exact=args.exact)}")
    return ExitCode.FAILED if record.verdict.blocking else ExitCode.OK


def _report(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.io import bytes_writer, commit
    from modelops.report.inputs import gather
    from modelops.report.markdown import render

    base = args.base or _load_params(paths).gates.champion.ref
    inputs = gather(paths, base=base, images_dir=paths.report_images_dir)
    text = render(inputs, images=not args.no_images)
    commit({paths.report_file: bytes_writer(text.encode())})
    print(f"report: {text.splitlines()[0].removeprefix('## ')} -> {paths.show(paths.report_file)}")
    return ExitCode.OK


def _record_timing(paths: ProjectPaths, command: str, started: float) -> None:
    """Remember how long a stage command took, for the report (not a DVC output)."""
    from modelops.io import bytes_writer, commit, json_bytes

    try:
        timings = json.loads(paths.timings_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        timings = {}
    timings[command] = round(time.perf_counter() - started, 2)
    commit({paths.timings_file: bytes_writer(json_bytes(timings))})


def _load_params(paths: ProjectPaths) -> Params:
    from modelops.params import load_params

    return load_params(paths.params_file)


def _params(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.params import params_schema

    if args.schema:
        print(json.dumps(params_schema(), indent=2, sort_keys=True))
        return ExitCode.OK
    import yaml

    print(f"# {paths.show(paths.params_file)} is valid; with defaults filled in:")
    print(yaml.safe_dump(_load_params(paths).model_dump(mode="json"), sort_keys=False), end="")
    return ExitCode.OK


def _generate(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.synth import write_churn

    write_churn(args.out, args.rows, seed=args.seed)
    print(f"generate: {args.rows} rows (seed {args.seed}) -> {args.out}")
    return ExitCode.OK


def _summary(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.summary import describe

    print(describe(paths))
    return ExitCode.OK


_STAGE_HANDLERS = {_prepare, _train, _evaluate, _champion, _gate, _gates}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

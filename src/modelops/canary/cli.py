"""`modelops canary analyze | plan | auto`: the judge, its plan, the judge driving a rollout."""

from __future__ import annotations

import argparse
import dataclasses
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.paths import ProjectPaths

if TYPE_CHECKING:
    from modelops.canary.analysis import Analysis
    from modelops.canary.judge import Verdict
    from modelops.params import Params

JUDGE = "canary-judge"
_MARK = {"pass": "ok  ", "fail": "FAIL", "inconclusive": "wait", "skipped": "skip"}


def register(commands: Any) -> None:
    """Add `canary` and its actions to the `modelops` command."""
    canary = commands.add_parser(
        "canary",
        help="Judge a running canary from telemetry: promote, hold or roll back.",
        description="Compare an environment's canary with its stable model over the current "
        "step, from the telemetry Prometheus scraped (runbooks/canary-promotion.md).",
    )
    actions = canary.add_subparsers(dest="canary_action", metavar="ACTION")

    def action(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text
        )
        parser.add_argument("--env", required=True, help="the environment (deploy.environments)")
        parser.add_argument(
            "--prometheus",
            metavar="URL",
            default=None,
            help="Prometheus to ask (default: $MODELOPS_PROMETHEUS_URL, then "
            "monitoring.prometheus_url)",
        )
        # 1 means "roll back" here: a command that cannot judge exits 2.
        parser.set_defaults(handler=handler, error_code=2)
        return parser

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
        _auto,
    )
    auto.add_argument("--message-file", type=Path, default=None, help="write the commit message")
    canary.set_defaults(handler=lambda args, paths: _usage(canary))


def _analyze(args: argparse.Namespace, paths: ProjectPaths) -> int:
    params, release = _release(args, paths)
    analysis = _look(args, params, release)
    _print(analysis.verdict)
    written = _report(paths, args.output, analysis)
    print(f"verdict: {', '.join(written)}")
    return analysis.verdict.exit_code


def _plan(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.canary.analysis import business_values
    from modelops.canary.plan import plan_steps
    from modelops.canary.queries import covered_query, step_queries, track_counts
    from modelops.errors import CanaryError
    from modelops.params import duration_seconds
    from modelops.telemetry.prometheus import connect
    from modelops.telemetry.promql import scalar

    params = _params(paths)
    environment = _environment(params, args.env)
    prometheus = connect(args.prometheus, params.monitoring.prometheus_url)
    window = args.window
    seconds = _window_seconds(window)
    queries = step_queries(environment.namespace, seconds)
    answers = {name: prometheus.query(query) for name, query in queries.items()}
    stable, canary = track_counts(answers, "stable"), track_counts(answers, "canary")
    covered = min(scalar(prometheus.query(covered_query(environment.namespace, window))), seconds)
    requests = stable.requests + canary.requests
    if requests <= 0 or covered <= 0:
        raise CanaryError(
            f"no predict requests in namespace {environment.namespace} over the last {window}: "
            "the plan needs current traffic (try a longer --window)"
        )
    per_second = requests / covered
    baseline = stable if stable.requests > 0 else canary
    plans = plan_steps(
        environment.canary_steps, per_second, baseline, params.canary, business_values(params)
    )
    judge = params.canary
    print(
        f"plan for {args.env}: {per_second:.3g} predict requests/s over the last "
        f"{_duration(covered)} (of --window {window}) "
        f"(error ratio {_ratio(baseline.server_errors, baseline.requests)}, positive rate "
        f"{_ratio(baseline.positive, baseline.predicted)}); bounds from params.yaml canary:, "
        f"alpha {judge.alpha:g}, min_soak {judge.min_soak}, max_step_duration "
        f"{judge.max_step_duration}"
    )
    limit = duration_seconds(judge.max_step_duration)
    too_long = False
    for step in plans:
        if step.requests is None or step.seconds is None:
            print(f"  {step.weight:>3}%: cannot be decided at any traffic ({step.binding})")
            too_long = True
            continue
        fits = "" if step.seconds <= limit else "  > max_step_duration: raise traffic or bounds"
        too_long |= step.seconds > limit
        print(
            f"  {step.weight:>3}%: {step.requests:>9.0f} canary requests at "
            f"{step.canary_per_second:.3g}/s = {_duration(step.seconds)} (set by "
            f"{step.binding}){fits}"
        )
    total = sum(s.seconds for s in plans if s.seconds is not None)
    print(f"  whole rollout: about {_duration(total)} if every step promotes at its first chance")
    return 1 if too_long else 0


def _auto(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.canary import document
    from modelops.canary.analysis import verdict_paths
    from modelops.deploy import workflow
    from modelops.params import duration_seconds
    from modelops.releases.state import Change

    params, release = _release(args, paths, missing_is_fine=True)
    if release is None:
        return 0
    analysis = _look(args, params, release)
    verdict = analysis.verdict
    _print(verdict)
    _report(paths, None, analysis)
    judge = params.canary
    decision, reason = verdict.decision, verdict.summary
    if decision == "hold":
        age = verdict.step_seconds
        if age <= duration_seconds(judge.max_step_duration):
            print("auto: hold, nothing changed")
            return 0
        timeout = (
            f"the step held for {_duration(age)}, past canary.max_step_duration "
            f"{judge.max_step_duration}"
        )
        if judge.on_timeout == "ask":
            print(
                f"auto: {timeout}; canary.on_timeout is ask: a person must decide, with the "
                f"verdict above: modelops release promote --env {args.env} --reason ... or "
                f"modelops release rollback --env {args.env} --reason ..."
            )
            return 3
        decision, reason = "rollback", f"{timeout} (on_timeout rollback): {verdict.summary}"
    markdown_path, json_path = verdict_paths(args.env, analysis.step, decision)
    change = Change(
        at=analysis.step.judged_at, by=JUDGE, reason=_short(reason), verdict=str(markdown_path)
    )
    if decision == "promote":
        plan = workflow.promote(paths.root, params, args.env, change=change)
    else:
        plan = workflow.rollback(paths.root, params, args.env, change=change)
    lines = [f"  {_MARK[f.status]} {f.criterion}: {f.reason}" for f in verdict.findings]
    message = plan.message + f"\nVerdict: {markdown_path}\n" + "\n".join(lines) + "\n"
    plan = dataclasses.replace(
        plan,
        message=message,
        files={
            str(markdown_path): document.to_markdown(verdict, analysis.step),
            str(json_path): document.to_json(verdict, analysis.step),
        },
    )
    written = workflow.write(paths.root, params, plan)
    if args.message_file is not None:
        args.message_file.write_text(plan.message, encoding="utf-8")
    print(plan.message, end="")
    print(f"auto: {decision}; wrote {', '.join(str(p) for p in written)}")
    return 0


def _look(args: argparse.Namespace, params: Params, release: Any) -> Analysis:
    from modelops.canary.analysis import analyze
    from modelops.telemetry.prometheus import connect

    prometheus = connect(args.prometheus, params.monitoring.prometheus_url)
    return analyze(release, params, prometheus, now=datetime.now(UTC))


def _release(
    args: argparse.Namespace, paths: ProjectPaths, *, missing_is_fine: bool = False
) -> tuple[Params, Any]:
    from modelops.errors import CanaryError
    from modelops.releases.files import load_releases

    params = _params(paths)
    _environment(params, args.env)
    release = load_releases(paths.root, params)[args.env]
    if release.canary is None:
        if missing_is_fine:
            print(f"auto: {release.describe()}: no canary, nothing to judge")
            return params, None
        raise CanaryError(f"{release.describe()}: no canary to judge")
    return params, release


def _environment(params: Params, name: str) -> Any:
    from modelops.errors import CanaryError

    if name not in params.deploy.environments:
        raise CanaryError(
            f"unknown environment '{name}'; params.yaml declares "
            f"{sorted(params.deploy.environments)}"
        )
    return params.deploy.environments[name]


def _report(paths: ProjectPaths, output: Path | None, analysis: Analysis) -> list[str]:
    from modelops.canary import document
    from modelops.io import bytes_writer, commit

    folder = output if output is not None else paths.canary_dir
    environment = analysis.step.environment
    targets = {
        folder / f"{environment}.md": document.to_markdown(analysis.verdict, analysis.step),
        folder / f"{environment}.json": document.to_json(analysis.verdict, analysis.step),
    }
    folder.mkdir(parents=True, exist_ok=True)
    commit({path: bytes_writer(text.encode()) for path, text in targets.items()})
    return [paths.show(path) for path in targets]


def _print(verdict: Verdict) -> None:
    print(verdict.summary)
    for f in verdict.findings:
        if f.status == "skipped" and math.isnan(f.estimate):
            print(f"  {_MARK[f.status]} {f.criterion}: {f.reason}")
            continue
        print(
            f"  {_MARK[f.status]} {f.criterion}: {f.statistic} {_number(f.estimate)} "
            f"[{_number(f.low)}, {_number(f.high)}], bound {f.threshold} (n canary "
            f"{f.canary_samples:.0f}, stable {f.stable_samples:.0f}); {f.reason}"
        )
    print(
        f"  ({verdict.method}; alpha {verdict.alpha:g} per step over every look, "
        f"{verdict.step_seconds / 60:.1f} min into the step)"
    )


def _params(paths: ProjectPaths) -> Params:
    from modelops.params import load_params

    return load_params(paths.params_file)


def _window_seconds(window: str) -> float:
    from modelops.errors import CanaryError
    from modelops.params import duration_seconds

    try:
        return float(duration_seconds(window))
    except (KeyError, ValueError):
        raise CanaryError(f"--window must be like 30m, 1h or 1d, got {window!r}") from None


def _short(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _ratio(part: float, whole: float) -> str:
    return f"{part / whole:.2%}" if whole > 0 else "n/a"


def _duration(seconds: float) -> str:
    from modelops.canary.judge import duration_words

    return duration_words(seconds)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2

"""`modelops release ...` and `modelops render`: the deploy half of the command line.

Each handler loads params, calls `deploy.workflow` (or `deploy.preview`), prints what
`deploy.text` makes of the result and returns an exit code. A request that would change nothing
says so and succeeds; an illegal one raises `ReleaseError`, which `modelops.cli` prints as one
line and exits 1 with nothing written. Help texts are %-formatted by argparse: a literal
percent sign is written `%%`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.errors import ExitCode
from modelops.paths import PREVIEW_DIR
from modelops.releases.lock import one_at_a_time

if TYPE_CHECKING:
    from modelops.deploy.fleet_release import BundleRequest
    from modelops.deploy.workflow import DeployRequest, Plan
    from modelops.params import Params
    from modelops.paths import ProjectPaths
    from modelops.releases.state import Change

Handler = Callable[[argparse.Namespace, "ProjectPaths"], int]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `release` (with its actions) and `render` to the `modelops` parser."""
    release = commands.add_parser(
        "release",
        help="Deploy, promote, roll back and inspect releases (manifests/releases/).",
        description="Change what each environment serves. Every action writes the release "
        "file and the rendered manifests together; commit them and Argo CD applies them.",
    )
    release.set_defaults(handler=lambda args, paths: _usage(release))
    actions = release.add_subparsers(title="actions", metavar="ACTION")

    def action(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text
        )
        # Every action but `status` reads then writes the release files: one at a time.
        sub.set_defaults(handler=handler if name == "status" else one_at_a_time(handler))
        return sub

    status = action("status", _status, "Show what each environment serves and its history.")
    status.add_argument("--env", help="one environment (default: all)")
    status.add_argument("--history", type=int, default=5, help="events to show (default 5)")

    deploy = action(
        "deploy",
        _deploy,
        "Publish models/model under its content hash and deploy it: stable in `direct` "
        "environments, a canary at the first step in `canary` ones (first a shadow on mirrored "
        "traffic where shadow_first is set), the model of the scheduled runs in `batch` ones. With "
        "--bundle: an edge bundle to the first cohort of devices in `edge` ones.",
    )
    deploy.add_argument("--env", action="append", help="only this environment (repeatable)")
    deploy.add_argument("--model-dir", type=Path, help="default: models/model")
    deploy.add_argument(
        "--bundle",
        type=Path,
        metavar="PATH.tar.gz",
        help="deploy an edge bundle (modelops export's archive) to the edge environments "
        "instead: published under its sha256, rolled out from the first of cohort_steps",
    )
    deploy.add_argument("--commit", help="commit the model was trained at (default: HEAD)")
    deploy.add_argument(
        "--dry-run", action="store_true", help="print the plan; publish and write nothing"
    )
    deploy.add_argument(
        "--retry",
        action="store_true",
        help="deploy it even though it was rolled back before (otherwise skipped)",
    )
    deploy.add_argument(
        "--object-store-only",
        action="store_true",
        help="refuse a local folder as deploy.store (deploy.yml: the runner's disk is gone "
        "after the job)",
    )
    deploy.add_argument(
        "--exact",
        action="store_true",
        help="deploy only the very model the merged commit's gates passed, never a retrain of "
        "its inputs (deploy.yml with a DVC remote)",
    )
    deploy.add_argument(
        "--override-budget",
        metavar="REASON",
        default=None,
        help="start a canary although an error budget of the environment is spent, and say "
        "why (recorded in the commit); without it such a deploy is refused",
    )
    _change_options(deploy, reason_required=False)

    promote = action(
        "promote",
        _promote,
        "Move the canary to the next traffic step (a shadow to the first one; past the last "
        "one it becomes stable). "
        "Needs a reason: asked for at a terminal, refused without --reason elsewhere.",
    )
    promote.add_argument("--env", required=True, help="the environment, e.g. production")
    _change_options(promote, reason_required=False)

    rollback = action(
        "rollback",
        _rollback,
        "Remove the canary or shadow: all traffic to the stable model. In a batch environment: "
        "go back to the previous model (the next scheduled run scores with it).",
    )
    rollback.add_argument("--env", required=True, help="the environment, e.g. production")
    _change_options(rollback, reason_required=True)

    restore = action(
        "restore",
        _restore,
        "Make a model that was stable before the current one stable again, at 100%%. The "
        "model it replaces is not deployed again by a later merge (only with deploy --retry).",
    )
    restore.add_argument("--env", required=True, help="the environment, e.g. production")
    restore.add_argument(
        "--version", required=True, help="a version under `previous:` in its release file"
    )
    _change_options(restore, reason_required=True)

    _experiment_actions(action)

    preview = action(
        "preview",
        _preview,
        "Show what merging this branch would deploy (a dry run) and the manifest diff.",
    )
    preview.add_argument("--model-dir", type=Path, help="default: models/model")
    preview.add_argument(
        "--out",
        type=Path,
        default=Path(PREVIEW_DIR),
        help=f"write the manifests here ({PREVIEW_DIR})",
    )
    preview.add_argument(
        "--diff", action="store_true", help="print the whole diff, not one line per file"
    )

    action(
        "sync-registry",
        _sync_registry,
        "Point the MLflow registry's aliases (<env>, <env>-canary, <env>-shadow) at what the "
        "release files "
        "serve; deploy.yml and rollout.yml run it after their push.",
    )

    render = commands.add_parser(
        "render",
        help="Regenerate manifests/rendered/, manifests/argocd/ and manifests/prometheus/ "
        "from templates, releases and monitoring objectives.",
        description="Regenerate the generated manifests after a change to the templates or to "
        "deploy: in params.yaml. With --check, change nothing and exit 1 when they are stale.",
    )
    render.add_argument("--check", action="store_true", help="only check they are current")
    render.set_defaults(handler=one_at_a_time(_render))

    crds = commands.add_parser(
        "crds",
        help="Write the pinned CRDs and the namespaces the generated manifests need into a "
        "folder, to apply to an empty cluster before a server-side dry run.",
        description="Write, into OUT, one file per CRD of the custom kinds the generated "
        "manifests use (as pinned upstream, sha256-checked) and namespaces.yaml; pr.yml's "
        "cluster job applies them to a kind cluster, then dry-runs every generated object.",
    )
    crds.add_argument("out", type=Path, help="the folder to write (replaced whole)")
    crds.set_defaults(handler=_crds)


def _experiment_actions(
    action: Callable[[str, Handler, str], argparse.ArgumentParser],
) -> None:
    """`release experiment start|stop|conclude`: an A/B experiment's commits."""
    experiment = action(
        "experiment",
        lambda args, paths: _usage(experiment),
        "Start, stop or conclude the A/B experiment params.yaml declares for an environment "
        "(experiments.<env>; runbooks/ab-experiments.md).",
    )
    steps = experiment.add_subparsers(title="steps", metavar="STEP")
    for name, handler, help_text in (
        (
            "start",
            _experiment_start,
            "Split the environment's units between its stable model and the candidates; each "
            "unit always meets the same variant.",
        ),
        (
            "stop",
            _experiment_stop,
            "End the experiment with nothing judged: the stable model takes all traffic.",
        ),
        (
            "conclude",
            _experiment_conclude,
            "End the experiment on a verdict: its winner takes all traffic, as the stable "
            "model; the verdict is kept beside the release and linked from its history.",
        ),
    ):
        step = steps.add_parser(name, help=help_text, description=help_text)
        step.set_defaults(handler=one_at_a_time(handler))
        step.add_argument("--env", required=True, help="the environment, e.g. production")
        if name == "conclude":
            step.add_argument(
                "--verdict", type=Path, help="reports/experiments/<env>.json (experiment analyze)"
            )
            step.add_argument("--winner", help="a variant's name, to conclude without a verdict")
        _change_options(step, reason_required=name != "start")


def _experiment_start(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.experiment import start

    params = _params(paths)
    reason = args.reason or f"start the experiment declared in params.yaml for {args.env}"
    change = _change(args, paths, reason)
    plan = start(paths.root, params, args.env, change=change, cache=paths.fetched_models_dir)
    return _finish(args, paths, params, plan)


def _experiment_stop(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.experiment import stop

    params = _params(paths)
    plan = stop(paths.root, params, args.env, change=_change(args, paths, args.reason))
    return _finish(args, paths, params, plan)


def _experiment_conclude(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.experiment import conclude

    params = _params(paths)
    change = _change(args, paths, args.reason)
    plan = conclude(
        paths.root, params, args.env, change=change, verdict=args.verdict, winner=args.winner
    )
    return _finish(args, paths, params, plan)


def _change_options(parser: argparse.ArgumentParser, *, reason_required: bool) -> None:
    parser.add_argument(
        "--reason", required=reason_required, help="why (recorded in the release history)"
    )
    parser.add_argument("--by", help="who (default: $GITHUB_ACTOR, git user.name, $USER)")
    parser.add_argument(
        "--message-file", type=Path, help="also write the commit message to this file"
    )


def _status(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy import text
    from modelops.deploy.workflow import releases_of, stale

    params = _params(paths)
    releases = releases_of(paths.root, params, args.env)
    print(text.status(releases, params, history=args.history))
    print(text.manifests_state(stale(paths.root, params)))
    return ExitCode.OK


def _deploy(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.fleet_release import deploy_bundle
    from modelops.deploy.workflow import configured_budget, deploy_model

    params = _params(paths)
    if args.bundle is not None:
        plan = deploy_bundle(paths.root, params, _bundle_request(args, paths))
    else:
        request = _deploy_request(args, paths)
        plan = deploy_model(paths.root, params, request, budget=configured_budget(params))
    return _finish(args, paths, params, plan, dry_run=args.dry_run)


def _promote(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.workflow import promote, trial_role

    params = _params(paths)
    role = trial_role(paths.root, params, args.env)
    reason = args.reason or _ask_reason(f"promote the {role} of {args.env}")
    plan = promote(paths.root, params, args.env, change=_change(args, paths, reason))
    return _finish(args, paths, params, plan)


def _rollback(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.workflow import rollback

    params = _params(paths)
    plan = rollback(paths.root, params, args.env, change=_change(args, paths, args.reason))
    return _finish(args, paths, params, plan)


def _restore(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.workflow import restore

    params = _params(paths)
    change = _change(args, paths, args.reason)
    plan = restore(paths.root, params, args.env, args.version, change=change)
    return _finish(args, paths, params, plan)


def _sync_registry(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.workflow import sync_registry

    for note in sync_registry(paths.root, _params(paths)):
        print(f"registry: {note}")
    return ExitCode.OK


def _preview(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy import preview, text

    model_dir = args.model_dir or paths.model_dir
    planned = preview.preview(paths.root, _params(paths), model_dir=model_dir)
    if planned.problem is not None:  # a preview informs; deploy.yml is where it fails
        print(f"preview: a merge would not deploy: {planned.problem}", file=sys.stderr)
        return ExitCode.OK
    out = preview.keep(planned, paths.root / args.out)
    print(text.preview(planned, full_diff=args.diff, out=paths.show(out)), end="")
    return ExitCode.OK


def _render(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy import text, workflow

    params = _params(paths)
    _note_skipped_checks(paths)
    if not args.check:
        print(text.rendered(workflow.render_all(paths.root, params)))
        return ExitCode.OK
    differences = workflow.stale(paths.root, params)
    print(text.stale(differences))
    if differences:
        print(text.STALE_HINT, file=sys.stderr)
    return ExitCode.FAILED if differences else ExitCode.OK


def _crds(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy import cluster, schemas

    source = schemas.schema_source(paths.root)
    written = cluster.write_prerequisites(paths.root, args.out, source)
    print("\n".join(paths.show(path) for path in written))
    return ExitCode.OK


def _finish(
    args: argparse.Namespace,
    paths: ProjectPaths,
    params: Params,
    plan: Plan,
    *,
    dry_run: bool = False,
) -> int:
    """Print the plan's notes; unless it is a dry run or changes nothing, write it; print what
    it did."""
    from modelops.deploy import text, workflow

    print(text.plan_notes(plan), end="")
    written: list[Path] = []
    if plan.changed and not dry_run:
        written = workflow.write(paths.root, params, plan)
        _note_skipped_checks(paths)
        if args.message_file is not None:
            args.message_file.write_text(plan.message, encoding="utf-8")
    print(text.plan_outcome(plan, written, dry_run=dry_run), end="")
    return ExitCode.OK


def _deploy_request(args: argparse.Namespace, paths: ProjectPaths) -> DeployRequest:
    """`release deploy`'s options as the workflow takes them (commit and reason defaulted from
    git: the merge being deployed)."""
    from modelops.deploy.workflow import DeployRequest
    from modelops.gitinfo import describe_commit, git_state

    commit = args.commit or git_state(paths.root).commit
    reason = args.reason or f"merge of {commit[:12]}: {describe_commit(paths.root, commit)[0]}"
    return DeployRequest(
        model_dir=args.model_dir or paths.model_dir,
        trained_at=commit,
        change=_change(args, paths, reason),
        environments=tuple(args.env or ()),
        dry_run=args.dry_run,
        object_store_only=args.object_store_only,
        retry=args.retry,
        gates="exact" if args.exact else "merged",
        budget_override=args.override_budget,
    )


def _bundle_request(args: argparse.Namespace, paths: ProjectPaths) -> BundleRequest:
    """`release deploy --bundle`'s options; those that only mean something for a model
    directory are refused rather than ignored."""
    from modelops.deploy.fleet_release import BundleRequest
    from modelops.errors import DeployError
    from modelops.gitinfo import git_state

    given = [f"--{o}" for o in ("model-dir", "exact", "override-budget") if _given(args, o)]
    if given:
        raise DeployError(f"{', '.join(given)}: for a model directory, not with --bundle")
    commit = args.commit or git_state(paths.root).commit
    reason = args.reason or f"roll out bundle {args.bundle.name} (at {commit[:12]})"
    return BundleRequest(
        archive=args.bundle,
        trained_at=commit,
        change=_change(args, paths, reason),
        environments=tuple(args.env or ()),
        dry_run=args.dry_run,
        object_store_only=args.object_store_only,
        retry=args.retry,
    )


def _given(args: argparse.Namespace, option: str) -> bool:
    value = getattr(args, option.replace("-", "_"))
    return value is not None and value is not False


def _ask_reason(what: str) -> str:
    """A reason typed at a terminal; in CI or without a terminal, --reason is required."""
    from modelops.errors import ReleaseError

    refused = ReleaseError(
        f"to {what}, say why with --reason (what you checked, e.g. 'errors and latency as "
        "stable's for 2 h'): every release step records its reason"
    )
    if os.environ.get("CI") or os.environ.get("GITHUB_ACTIONS") or not sys.stdin.isatty():
        raise refused
    try:
        reason = input(f"Why {what}? ").strip()
    except EOFError:
        reason = ""
    if not reason:
        raise refused
    return reason


def _note_skipped_checks(paths: ProjectPaths) -> None:
    from modelops.deploy.schemas import schema_source
    from modelops.deploy.validate import skipped_checks
    from modelops.deploy.workflow import generated_files

    files = {str(path): text for path, text in generated_files(paths.root).items()}
    for skipped in skipped_checks(files, schemas=schema_source(paths.root)):
        print(f"note: {skipped}", file=sys.stderr)


def _params(paths: ProjectPaths) -> Params:
    from modelops.params import load_params

    return load_params(paths.params_file)


def _change(args: argparse.Namespace, paths: ProjectPaths, reason: str) -> Change:
    from modelops.gitinfo import user_name
    from modelops.releases.state import Change

    by = (
        args.by
        or os.environ.get("GITHUB_ACTOR")
        or user_name(paths.root)
        or os.environ.get("USER")
        or "unknown"
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Change(at=now, by=by, reason=reason)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return ExitCode.UNDECIDED

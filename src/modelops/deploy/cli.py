"""`modelops release ...` and `modelops render`: the deploy half of the command line.

Each handler loads params, calls `deploy.workflow`, prints what changed and returns an exit code.
A request that would change nothing says so and succeeds; an illegal one raises `ReleaseError`,
which `modelops.cli` prints as one line and exits 1 with nothing written. Help texts are
%-formatted by argparse: a literal percent sign is written `%%`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.paths import MANIFESTS_DIR, PREVIEW_DIR, ProjectPaths

if TYPE_CHECKING:
    from modelops.deploy.workflow import Plan
    from modelops.params import Params
    from modelops.releases.state import Change

Handler = Callable[[argparse.Namespace, ProjectPaths], int]
Subparsers = Any  # argparse's _SubParsersAction is private
DIFF_FILE = "changes.diff"


def register(commands: Subparsers) -> None:
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
        sub.set_defaults(handler=handler)
        return sub

    status = action("status", _status, "Show what each environment serves and its history.")
    status.add_argument("--env", help="one environment (default: all)")
    status.add_argument("--history", type=int, default=5, help="events to show (default 5)")

    deploy = action(
        "deploy",
        _deploy,
        "Publish models/model under its content hash and deploy it: stable in `direct` "
        "environments, a canary at the first step in `canary` ones (first a shadow on mirrored "
        "traffic where shadow_first is set).",
    )
    deploy.add_argument("--env", action="append", help="only this environment (repeatable)")
    deploy.add_argument("--model-dir", type=Path, help="default: models/model")
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
        "rollback", _rollback, "Remove the canary or shadow: all traffic to the stable model."
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

    preview = action(
        "preview",
        _preview,
        "Show what merging this branch would deploy (a dry run) and the manifest diff.",
    )
    preview.add_argument("--model-dir", type=Path, help="default: models/model")
    preview.add_argument(
        "--out", type=Path, default=PREVIEW_DIR, help=f"write the manifests here ({PREVIEW_DIR})"
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
    render.set_defaults(handler=_render)


def _change_options(parser: argparse.ArgumentParser, *, reason_required: bool) -> None:
    parser.add_argument(
        "--reason", required=reason_required, help="why (recorded in the release history)"
    )
    parser.add_argument("--by", help="who (default: $GITHUB_ACTOR, git user.name, $USER)")
    parser.add_argument(
        "--message-file", type=Path, help="also write the commit message to this file"
    )


def _status(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.workflow import stale
    from modelops.errors import ReleaseError
    from modelops.releases.files import load_releases
    from modelops.releases.state import next_step

    params = _params(paths)
    releases = load_releases(paths.root, params)
    if args.env is not None and args.env not in releases:
        raise ReleaseError(
            f"unknown environment '{args.env}'; params.yaml declares {sorted(releases)}"
        )
    for name, release in releases.items():
        if args.env not in (None, name):
            continue
        environment = params.deploy.environments[name]
        strategy = environment.strategy + (", shadow first" if environment.shadow_first else "")
        print(f"{release.describe()}   [{strategy}, namespace {environment.namespace}]")
        models = [("stable", release.stable)]
        trial = release.canary
        if trial is not None:
            models.append((trial.role, trial.model))
            step = next_step(trial.weight, environment.canary_steps)
            after = f"a canary at {step}%" if trial.shadow else f"{step}%"
            print(f"  next promote: {trial.role} {f'to {after}' if step else 'becomes stable'}")
        for role, model in models:
            if model is not None:
                print(f"  {role} {model.version}: {model.model_uri}")
        if release.previous:
            restorable = ", ".join(m.version for m in release.previous)
            print(f"  can restore: {restorable} (modelops release restore --env {name} ...)")
        if release.rolled_back:
            taken_out = ", ".join(m.version for m in release.rolled_back)
            print(
                f"  taken out: {taken_out} (rolled back or restored away from; a merge does "
                "not bring them back, `deploy --retry` does)"
            )
        for event in release.history[-args.history :] if args.history > 0 else ():
            traffic = ", ".join(f"{k} {v}%" for k, v in event.traffic.items())
            print(f"  {event.at}  {event.action:<12} {event.version:<12} [{traffic}]")
            print(f"    by {event.by}: {event.reason}")
    differences = stale(paths.root, params)
    current = "current" if not differences else f"{len(differences)} stale, run `make render`"
    print(f"manifests: {current}")
    return 0


def _deploy(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.workflow import deploy_model
    from modelops.gitinfo import describe_commit, git_state

    params = _params(paths)
    commit = args.commit or git_state(paths.root).commit
    reason = args.reason or f"merge of {commit[:12]}: {describe_commit(paths.root, commit)[0]}"
    plan = deploy_model(
        paths.root,
        params,
        model_dir=args.model_dir or paths.model_dir,
        trained_at=commit,
        change=_change(args, paths, reason),
        environments=tuple(args.env or ()),
        dry_run=args.dry_run,
        object_store_only=args.object_store_only,
        retry=args.retry,
        gates="exact" if args.exact else "merged",
        budget=_budget(params),
        budget_override=args.override_budget,
    )
    return _finish(args, paths, params, plan, dry_run=args.dry_run)


def _budget(params: Params) -> Any:
    """Checks a namespace's error budget against the configured Prometheus (a note when none)."""
    from functools import partial

    from modelops.observability.budget import check_budget
    from modelops.telemetry.prometheus import URL_ENV, connect

    configured = params.monitoring.prometheus_url or os.environ.get(URL_ENV)
    prometheus = connect(None, configured) if configured else None
    return partial(check_budget, prometheus)


def _promote(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.workflow import promote
    from modelops.errors import ReleaseError

    params = _params(paths)
    if args.env not in params.deploy.environments:
        raise ReleaseError(
            f"unknown environment '{args.env}'; params.yaml declares "
            f"{sorted(params.deploy.environments)}"
        )
    reason = args.reason or _ask_reason(
        f"promote the {_trial_role(paths, params, args.env)} of {args.env}"
    )
    plan = promote(paths.root, params, args.env, change=_change(args, paths, reason))
    return _finish(args, paths, params, plan)


def _trial_role(paths: ProjectPaths, params: Params, environment: str) -> str:
    """`shadow` when the environment runs one, else `canary` (the words of the reason prompt)."""
    from modelops.releases.files import load_releases

    trial = load_releases(paths.root, params)[environment].canary
    return trial.role if trial is not None else "canary"


def _sync_registry(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.workflow import sync_registry

    for note in sync_registry(paths.root, _params(paths)):
        print(f"registry: {note}")
    return 0


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


def _finish(
    args: argparse.Namespace,
    paths: ProjectPaths,
    params: Params,
    plan: Plan,
    *,
    dry_run: bool = False,
) -> int:
    from modelops.deploy.workflow import write

    for note in plan.notes:
        print(f"release: {note}")
    if not plan.changed:
        print("release: nothing to change; no file written")
        return 0
    if dry_run:
        print("release: dry run, nothing published or written; the commit would say:\n")
        print(plan.message, end="")
        return 0
    written = write(paths.root, params, plan)
    _note_skipped_checks(paths)
    if args.message_file is not None:
        args.message_file.write_text(plan.message, encoding="utf-8")
    print(plan.message, end="")
    print(f"release: wrote {', '.join(str(p) for p in written)}")
    return 0


def _preview(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.preview import diff_stat, preview
    from modelops.gitinfo import git_state
    from modelops.io import commit, tree_writer

    params = _params(paths)
    planned = preview(
        paths.root,
        params,
        model_dir=args.model_dir or paths.model_dir,
        trained_at=git_state(paths.root).commit,
    )
    if planned.problem is not None:
        # A preview informs; deploy.yml is where the refusal fails.
        print(f"preview: a merge would not deploy: {planned.problem}", file=sys.stderr)
        return 0
    for change in planned.changes:
        after = "(unchanged)" if change.before == change.after else "-> " + change.after
        print(f"preview: {change.before} {after.replace(f'{change.environment}: ', '')}")
    out = paths.root / args.out
    assert planned.files is not None
    files = {p.relative_to(MANIFESTS_DIR): t for p, t in planned.files.items()}
    files[Path(DIFF_FILE)] = planned.diff
    commit({out: tree_writer(files)})
    if args.diff:
        print(planned.diff, end="")
    for path, added, removed in diff_stat(planned.diff):
        print(f"preview: {path}: +{added} -{removed}")
    if not planned.diff:
        print("preview: the manifests would not change")
    print(f"preview: manifests a merge would commit and their diff -> {paths.show(out)}/")
    return 0


def _render(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.deploy.workflow import render_all, stale

    params = _params(paths)
    _note_skipped_checks(paths)
    if args.check:
        differences = stale(paths.root, params)
        for difference in differences:
            print(f"stale: {difference}")
        if differences:
            print(
                "render: manifests/ is not what the templates and releases produce; "
                "run `make render` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(
            "render: manifests/rendered/, manifests/argocd/ and manifests/prometheus/ are current"
        )
        return 0
    written = render_all(paths.root, params)
    print(f"render: {', '.join(str(p) for p in written)} regenerated")
    return 0


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
    return 2

"""`modelops up` and `modelops down`: production rehearsed on this machine, on loopback."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.errors import RehearsalError
from modelops.identity import content_hash
from modelops.paths import ALERTMANAGER_FILE, ProjectPaths
from modelops.rehearsal import processes
from modelops.rehearsal.plan import (
    MODEL_COPIES,
    ServerPlan,
    Shift,
    TrafficPlan,
    alertmanager_config,
    queries,
)

if TYPE_CHECKING:
    from modelops.params import Params
    from modelops.releases.state import ModelVersion


def register(commands: Any) -> None:
    """Add `up` and `down` to the `modelops` command."""
    up = commands.add_parser(
        "up",
        help="Rehearse production here: Prometheus, a stable and a canary server, traffic.",
        description="Start, on 127.0.0.1, a real Prometheus with --env's rules (every window "
        "divided by --time-scale), an Alertmanager with manifests/alertmanager/alertmanager.yml's "
        "routes, a stable and a canary model server (the canary of --env's release when the "
        "local store has it, else the same model) and a bounded traffic generator that replays "
        "test rows, sends their truth back after --label-delay and, with --shift, drifts one "
        "feature for a while. `modelops down` stops all of it.",
    )
    up.add_argument("--env", default="production", help="whose release to rehearse")
    up.add_argument("--minutes", type=float, default=10.0, help="traffic duration (default 10)")
    up.add_argument("--rate", type=float, default=5.0, help="requests per second (default 5)")
    up.add_argument("--rows", type=int, default=1, help="rows per request (default 1)")
    up.add_argument(
        "--canary-percent",
        type=int,
        default=None,
        help="share of requests to the canary (default: the release's weight, followed as "
        "it changes, e.g. by `modelops canary auto`; 10 without a canary)",
    )
    up.add_argument(
        "--canary-errors",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="the canary fails this share of predictions with a server error (rehearse a bad "
        "canary: the judge rolls it back), 0 to 1",
    )
    up.add_argument(
        "--label-delay", type=float, default=30.0, help="seconds until truth comes (default 30)"
    )
    up.add_argument(
        "--time-scale",
        type=float,
        default=60.0,
        help="divide every rule window and `for` by this (default 60: an hour in a minute)",
    )
    up.add_argument(
        "--shift",
        metavar="FEATURE=FACTOR",
        default=None,
        help="drift FEATURE: numbers times FACTOR, categories replaced by an unseen one",
    )
    up.add_argument(
        "--shift-at", type=float, default=60.0, help="seconds after the start (default 60)"
    )
    up.add_argument(
        "--shift-for", type=float, default=120.0, help="seconds the shift lasts (default 120)"
    )
    up.add_argument("--prometheus-port", type=int, default=9090)
    up.add_argument("--alertmanager-port", type=int, default=9093)
    up.add_argument("--stable-port", type=int, default=9000, help="stable HTTP (metrics 6000)")
    up.add_argument("--canary-port", type=int, default=9001, help="canary HTTP (metrics 6001)")
    up.add_argument("--stable-metrics-port", type=int, default=6000)
    up.add_argument("--canary-metrics-port", type=int, default=6001)
    up.set_defaults(handler=_up)
    down = commands.add_parser(
        "down",
        help="Stop exactly what `modelops up` started.",
        description="Stop exactly what `modelops up` started (recorded in .rehearsal/).",
    )
    down.set_defaults(handler=_down)


def _up(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.params import load_params
    from modelops.prepared import TEST_FILE, load_meta
    from modelops.releases.files import load_releases, release_file

    params = load_params(paths.params_file)
    if not (paths.model_dir / "MLmodel").is_file():
        raise RehearsalError(f"no trained model in {paths.show(paths.model_dir)}: run `make repro`")
    meta = load_meta(paths.prepared_dir)  # the traffic process reads the test rows itself
    release = load_releases(paths.root, params).get(args.env)
    stable_dir, stable_note = _model(paths, release.stable if release else None)
    canary = release.canary if release is not None else None
    canary_dir, canary_note = _model(paths, canary.model if canary else None)
    if canary is None:
        canary_note = f"the same model: {args.env} runs no canary"
    elif canary.shadow:
        canary_note += ", a shadow: it gets a copy of every request (restart after promoting it)"
    percent = args.canary_percent
    if percent is None:
        percent = canary.weight if canary is not None else 10
    shift = _shift(args, list(meta.schema.features))
    traffic = TrafficPlan(
        seconds=args.minutes * 60,
        requests_per_second=args.rate,
        rows_per_request=args.rows,
        canary_percent=percent,
        label_delay_seconds=args.label_delay,
        shift=shift,
    )
    if not 0.0 <= args.canary_errors <= 1.0:
        raise RehearsalError(f"--canary-errors must be from 0 to 1, got {args.canary_errors:g}")
    # A shadow gets a copy of every request (its answers go nowhere) and its own track label.
    shadow = canary is not None and canary.shadow
    servers = [
        _server("stable", stable_dir, args.stable_port, args.stable_metrics_port),
        _server(
            "shadow" if shadow else "canary",
            canary_dir,
            args.canary_port,
            args.canary_metrics_port,
            inject_server_errors=args.canary_errors,
        ),
    ]
    follow = args.canary_percent is None and release is not None
    state = paths.rehearsal_dir
    schema = meta.schema
    started = processes.up(
        paths.root,
        servers,
        traffic,
        prometheus_port=args.prometheus_port,
        threshold=params.evaluate.threshold,
        business_value=(
            params.monitoring.business.server_value() if params.monitoring.business else None
        ),
        traffic_config={
            "servers": [{"track": s.track, "url": s.url} for s in servers],
            "rows_file": str(paths.prepared_dir.resolve() / TEST_FILE),
            "features": list(schema.features),
            "label": schema.label,
            "ledger": str((state / "traffic.jsonl").resolve()),
            "release_file": str(paths.root.resolve() / release_file(args.env))
            if follow and not shadow
            else None,
            "mirror": "shadow" if shadow else None,
        },
        alerting=_alerting(paths, params, args),
    )
    prometheus = f"http://127.0.0.1:{args.prometheus_port}"
    print(
        f"up: {len(started)} processes (PIDs {', '.join(str(p.pid) for p in started)}); "
        f"traffic for {args.minutes:g} min at {args.rate:g} requests/s, {percent}% to the "
        f"canary, truth after {args.label_delay:g} s"
    )
    print(
        f"  Prometheus  {prometheus}  (targets: {prometheus}/targets, alerts: {prometheus}/alerts;"
        f" {args.env}'s rules, windows divided by {args.time_scale:g})"
    )
    print(
        f"  Alertmanager http://127.0.0.1:{args.alertmanager_port}  (routes of {ALERTMANAGER_FILE})"
    )
    if shift is not None:
        categorical = shift.feature in schema.categorical
        how = "a category training never saw" if categorical else f"x{shift.factor:g}"
        expect = "ModelopsFeatureDrift" + (" and ModelopsUnseenCategories" if categorical else "")
        print(
            f"  shift       {shift.feature}: {how}, from {shift.at_seconds:g} s for "
            f"{shift.seconds:g} s: {expect} should fire, then resolve"
        )
    if args.canary_errors:
        print(
            f"  errors      the canary fails {args.canary_errors:.0%} of predictions: "
            f"`modelops canary analyze --env {args.env} --prometheus {prometheus}` rolls it back"
        )
    if follow:
        print(f"  split       follows {release_file(args.env)} as the canary is promoted")
    for server, note in zip(servers, (stable_note, canary_note), strict=True):
        print(
            f"  {server.track:<10}  {server.url}  model {server.model_version} ({note}); "
            f"metrics http://127.0.0.1:{server.metrics_port}/prometheus"
        )
    print(
        f"  logs        {paths.show(state)}/*.log, what was sent: {paths.show(state)}/traffic.jsonl"
    )
    print(f"Try in Prometheus ({prometheus}/graph):")
    feature = schema.numeric[0] if schema.numeric else schema.features[0]
    for meaning, query in queries(feature=feature, positive_label=schema.positive_label):
        print(f"  # {meaning}\n  {query}")
    print("Stop everything with: make down")
    return 0


def _shift(args: argparse.Namespace, features: list[str]) -> Shift | None:
    if args.shift is None:
        return None
    feature, equals, factor = args.shift.partition("=")
    try:
        value = float(factor)
    except ValueError:
        value = float("nan")
    if not equals or feature not in features or value != value:
        raise RehearsalError(
            f"--shift must be FEATURE=FACTOR with one of the model's features "
            f"({', '.join(features)}) and a number, got {args.shift!r} (e.g. --shift "
            f"{features[0]}=3)"
        )
    return Shift(feature, value, args.shift_at, args.shift_for)


def _alerting(paths: ProjectPaths, params: Params, args: argparse.Namespace) -> processes.Alerting:
    """The environment's rules in compressed time, and the example Alertmanager routes."""
    from modelops.observability import rules

    if args.env not in params.deploy.environments:
        raise RehearsalError(
            f"--env {args.env} is not one of deploy.environments "
            f"({', '.join(sorted(params.deploy.environments))})"
        )
    if not args.time_scale >= 1:
        raise RehearsalError(f"--time-scale must be at least 1, got {args.time_scale:g}")
    groups = rules.environment_groups(
        params.deploy, params.monitoring, args.env, time_scale=args.time_scale
    )
    example = paths.root / ALERTMANAGER_FILE
    if not example.is_file():
        raise RehearsalError(f"{ALERTMANAGER_FILE} is missing: the rehearsal routes alerts with it")
    return processes.Alerting(
        rules=rules.to_yaml({"groups": groups}, header="modelops up: rules in compressed time"),
        alertmanager_config=alertmanager_config(example.read_text(encoding="utf-8")),
        alertmanager_port=args.alertmanager_port,
        namespace=params.deploy.environments[args.env].namespace,
    )


def _down(args: argparse.Namespace, paths: ProjectPaths) -> int:
    stopped = processes.down(paths.root)
    if not stopped:
        print("down: nothing of a rehearsal was running")
        return 0
    names = ", ".join(f"{p.name} ({p.pid})" for p in stopped)
    print(f"down: stopped {names}")
    return 0


def _server(
    track: str,
    model_dir: Path,
    http_port: int,
    metrics_port: int,
    *,
    inject_server_errors: float = 0.0,
) -> ServerPlan:
    digest = content_hash(model_dir)
    return ServerPlan(
        track=track,
        model_dir=model_dir.resolve(),
        model_version=digest[:12],
        model_hash=digest,
        http_port=http_port,
        metrics_port=metrics_port,
        inject_server_errors=inject_server_errors,
    )


def _model(paths: ProjectPaths, model: ModelVersion | None) -> tuple[Path, str]:
    """A released model's directory in the local store, else the workspace's model."""
    from modelops.errors import PublishError
    from modelops.releases.publish import fetch

    if model is None:
        return paths.model_dir, "the workspace model"
    copy = paths.rehearsal_dir / MODEL_COPIES / model.model_hash
    if copy.is_dir():
        return copy, f"release {model.version}"
    copy.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=copy.parent) as scratch:
            staging = Path(scratch) / "model"
            fetch(model.model_uri, staging, root=paths.root)
            shutil.move(staging, copy)
    except PublishError as exc:
        return paths.model_dir, f"the workspace model: release {model.version} unavailable ({exc})"
    return copy, f"release {model.version}"

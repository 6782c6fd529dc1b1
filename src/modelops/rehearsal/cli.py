"""`modelops up` and `modelops down`: production rehearsed on this machine, on loopback."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

from modelops.errors import ExitCode

if TYPE_CHECKING:
    from modelops.paths import ProjectPaths
    from modelops.rehearsal.plan import UpRequest


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `up` and `down` to the `modelops` command."""
    up = commands.add_parser(
        "up",
        help="Rehearse production here: Prometheus, a stable and a canary server, traffic "
        "(a batch environment: a Pushgateway and scheduled runs).",
        description="Start, on 127.0.0.1, a real Prometheus with --env's rules (every window "
        "divided by --time-scale), an Alertmanager with manifests/alertmanager/alertmanager.yml's "
        "routes, a stable and a canary model server (the canary of --env's release when the "
        "local store has it, else the same model) and a bounded traffic generator that replays "
        "test rows, sends their truth back after --label-delay and, with --shift, drifts one "
        "feature for a while. When --env's release runs an A/B experiment: two replicas of the "
        "stable predictor, each serving every variant (fetched from the store), and traffic from "
        "units that come back (the experiment's unit field on every row) spread over both; "
        "--effect and --broken-split plant something for `modelops experiment analyze` to find. "
        "For a batch environment (strategy: batch) instead: a Pushgateway "
        "that Prometheus scrapes, and a scheduler running modelops-score with the release's "
        "model over the test rows (or --batch-input) every (longest gap of the schedule / "
        "--time-scale) seconds, pushing each run's figures; the traffic options do not apply. "
        "`modelops down` stops all of it.",
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
    up.add_argument(
        "--batch-input",
        metavar="FILE",
        default=None,
        help="a batch environment: the CSV/Parquet table each run scores (default: the prepared "
        "test rows), read again at every run: a drifted one fires ModelopsBatchFeatureDrift, "
        "one the model cannot score ModelopsBatchRunFailed",
    )
    up.add_argument(
        "--units",
        type=int,
        default=None,
        metavar="N",
        help="an experiment: N made-up units, each sending one test row again and again "
        "(default: the test rows' own unit column when they have it, else 3000)",
    )
    up.add_argument(
        "--effect",
        action="append",
        default=[],
        metavar="VARIANT=SIZE",
        help="an experiment: a true effect for VARIANT: with probability SIZE (0 to 1) the truth "
        "of a row it answered is its own predicted class, so it is right more often and earns "
        "more per labelled prediction (repeat for several variants)",
    )
    up.add_argument(
        "--broken-split",
        action="append",
        default=[],
        metavar="VARIANT=SHARE",
        help="an experiment: the client loses SHARE (0 to 1) of VARIANT's units, decided once "
        "per unit (a crash in one variant): the sample-ratio check should stop the experiment",
    )
    up.add_argument("--prometheus-port", type=int, default=9090)
    up.add_argument(
        "--pushgateway-port", type=int, default=9091, help="a batch environment's Pushgateway"
    )
    up.add_argument("--alertmanager-port", type=int, default=9093)
    up.add_argument("--stable-port", type=int, default=9000, help="stable HTTP (metrics 6000)")
    up.add_argument(
        "--canary-port",
        type=int,
        default=9001,
        help="canary HTTP (metrics 6001); in an experiment, stable's second replica",
    )
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
    from modelops.rehearsal import rehearse

    rehearsal, started = rehearse.up(paths, _request(args))
    print(rehearse.to_text(rehearsal, started, paths=paths))
    return ExitCode.OK


def _down(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.rehearsal import rehearse

    stopped = rehearse.down(paths)
    names = ", ".join(f"{p.name} ({p.pid})" for p in stopped)
    print(f"down: stopped {names}" if stopped else "down: nothing of a rehearsal was running")
    return ExitCode.OK


def _request(args: argparse.Namespace) -> UpRequest:
    """`up`'s options as the plan takes them (each field of `UpRequest` is an option)."""
    from modelops.rehearsal.plan import UpRequest

    return UpRequest(
        **{field.name: getattr(args, field.name) for field in dataclasses.fields(UpRequest)}
    )

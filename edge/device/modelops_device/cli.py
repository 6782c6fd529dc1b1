"""`modelops-device`: what a device runs, offline but for its downloads and its reports.

- `update --fleet URL|PATH --device-id ID --public-key PEM --state DIR`: take the bundle the
  fleet manifest names for this device, verified, or keep the current one and say why;
- `score --state DIR --rows FILE`: one JSON line per raw row (`{"probability": p, "class": c}`),
  and the rows added to the device's counts;
- `encode --state DIR --rows FILE`: the model's inputs per row, as CSV (what the C example reads);
- `report --state DIR --pushgateway URL --job JOB --device-id ID`: push the counts.

A refusal prints `error: ...` on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from modelops_contract.bundle import BundleError

from modelops_device import device
from modelops_device.counts import ProfileError
from modelops_device.signed import SignatureError
from modelops_device.state import DeviceError
from modelops_device.update import MAX_BUNDLE_BYTES, update

_REFUSALS = (DeviceError, BundleError, SignatureError, ProfileError, OSError)


def _update(args: argparse.Namespace) -> None:
    done = update(
        args.fleet,
        device_id=args.device_id,
        public_key=args.public_key,
        state=args.state,
        max_bytes=args.max_bytes,
    )
    print(done)


def _score(args: argparse.Namespace) -> None:
    for scored in device.score(args.state, device.read_rows(args.rows)):
        print(scored.to_json())


def _encode(args: argparse.Namespace) -> None:
    print("\n".join(device.csv_lines(device.encode(args.state, device.read_rows(args.rows)))))


def _report(args: argparse.Namespace) -> None:
    url = device.push_report(
        args.state, pushgateway=args.pushgateway, job=args.job, device_id=args.device_id
    )
    print(f"reported to {url}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelops-device", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("update", help="take this device's bundle from the fleet manifest")
    up.add_argument("--fleet", required=True, help="the fleet manifest's URL or path")
    up.add_argument("--device-id", required=True, help="this device's stable id")
    up.add_argument("--public-key", type=Path, required=True, help="the fleet's key (PEM)")
    up.add_argument("--max-bytes", type=int, default=MAX_BUNDLE_BYTES, help="archive size cap")
    up.set_defaults(run=_update)
    for name, run, what in (
        ("score", _score, "score raw rows (JSON lines) and count them"),
        ("encode", _encode, "the model's inputs of raw rows, as CSV"),
    ):
        command = commands.add_parser(name, help=what)
        command.add_argument("--rows", required=True, help="JSON lines of raw rows, - for stdin")
        command.set_defaults(run=run)
    push = commands.add_parser("report", help="push the counts to a Pushgateway")
    push.add_argument("--pushgateway", required=True, help="the Pushgateway's URL")
    push.add_argument("--job", required=True, help="the fleet's job (deploy.name-environment)")
    push.add_argument("--device-id", required=True, help="this device's stable id")
    push.set_defaults(run=_report)
    for command in commands.choices.values():
        command.add_argument("--state", type=Path, required=True, help="the device's state dir")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except _REFUSALS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

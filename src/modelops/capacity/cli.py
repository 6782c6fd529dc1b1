"""`modelops capacity`: what one replica sustains at the latency objective, and its replicas."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.telemetry.prometheus import add_prometheus_option

if TYPE_CHECKING:
    from modelops.capacity.run import CapacityRequest
    from modelops.paths import ProjectPaths


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `capacity` to the `modelops` command."""
    text = (
        "Load-test one replica (the model server started as a pod runs it, on loopback; "
        "locust, open loop, a ladder of request rates) and find the highest rate at which the "
        "latency objective (monitoring.objectives.latency) holds with no error: the knee. "
        "Proposes min_replicas, max_replicas and a per-replica target in requests/s from the "
        "environment's peak traffic (Prometheus, or --peak-rps). Writes "
        "reports/capacity/<env>.md and .json. Exits 0 with a proposal, 1 when some request "
        "size has no knee (runbooks/capacity.md)."
    )
    capacity = commands.add_parser("capacity", help=text.split(": the knee")[0], description=text)
    capacity.add_argument("--env", required=True, help="the environment (deploy.environments)")
    capacity.add_argument(
        "--rows",
        type=_numbers(int),
        default=(1, 100),
        help="rows per request, comma-separated: one curve each (default 1,100)",
    )
    capacity.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds per step; longer at low rates, until a step holds enough requests to "
        "estimate the objective's quantile (default 10)",
    )
    ladder = capacity.add_mutually_exclusive_group()
    ladder.add_argument(
        "--rates",
        type=_numbers(float),
        default=(),
        help="requests/s to offer, comma-separated, in order until one fails (default: a "
        "search that doubles the rate, then narrows the knee to 10 %%)",
    )
    ladder.add_argument(
        "--max-rate", type=float, default=2000.0, help="the search's highest rate (default 2000)"
    )
    capacity.add_argument("--peak-rps", type=float, help="peak requests/s to size for")
    capacity.add_argument(
        "--baseline-rps", type=float, help="usual requests/s (with --peak-rps; default: the peak)"
    )
    add_prometheus_option(capacity)
    capacity.add_argument(
        "--window", default="7d", help="traffic window to read the peak from (default 7d)"
    )
    capacity.add_argument(
        "--headroom",
        type=float,
        default=0.3,
        help="share of the knee kept free: target = knee x (1 - headroom) (default 0.3)",
    )
    capacity.add_argument(
        "--budget", type=float, default=600.0, help="seconds the whole run may take (default 600)"
    )
    capacity.add_argument(
        "--url", help="load a server already running there instead (its CPU is not measured)"
    )
    capacity.add_argument(
        "--model",
        type=Path,
        help="model directory to serve (default: the environment's released model, else "
        "models/model)",
    )
    capacity.add_argument("--output", type=Path, help="directory for the report")
    capacity.set_defaults(handler=_capacity, announce=_announce)


def _capacity(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.capacity import document, run
    from modelops.params import load_params

    capacity = run.measure(_request(args), load_params(paths.params_file), paths)
    print(document.to_text(capacity))
    written = run.keep(paths, capacity, args.output)
    print(f"capacity: {', '.join(paths.show(path) for path in written)}")
    return capacity.exit_code


def _announce(args: argparse.Namespace) -> str:
    from modelops.capacity.run import budget_note

    return budget_note(_request(args))


def _request(args: argparse.Namespace) -> CapacityRequest:
    from modelops.capacity.run import CapacityRequest

    return CapacityRequest(
        env=args.env,
        rows=tuple(args.rows),
        duration=args.duration,
        rates=tuple(args.rates),
        max_rate=args.max_rate,
        peak_rps=args.peak_rps,
        baseline_rps=args.baseline_rps,
        prometheus=args.prometheus,
        window=args.window,
        headroom=args.headroom,
        budget=args.budget,
        url=args.url,
        model_dir=args.model,
    )


def _numbers(kind: Callable[[str], float]) -> Callable[[str], tuple[float, ...]]:
    """An argparse type: a comma-separated list of `kind`, refused with the bad item."""

    def parse(text: str) -> tuple[float, ...]:
        try:
            return tuple(kind(item) for item in text.split(",") if item.strip())
        except ValueError:
            message = f"not a comma-separated list of numbers: {text!r}"
            raise argparse.ArgumentTypeError(message) from None

    return parse

"""`modelops score`: score a table with a released or trained model (runbooks/batch-scoring.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelops.batch.score import ScoreRequest
    from modelops.paths import ProjectPaths


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `score` to the `modelops` command."""
    score = commands.add_parser(
        "score",
        help="Score a CSV/Parquet table with a released (--env) or trained model.",
        description="Score a CSV or Parquet file, a folder of them or a partitioned dataset "
        "(a path or an fsspec URL) with the stable model of --env's release (fetched from the "
        "store, its content hash checked) or a model directory (--model, default models/model). "
        "Writes a Parquet dataset to --output in one step: the id column(s), score, prediction "
        "at the profile's threshold, model_hash and run_id, plus _run.json (what ran, rows in, "
        "scored and refused, counts in the reference profile's bins) and _refused.parquet "
        "(rows the model cannot take, each with its reason).",
    )
    which = score.add_mutually_exclusive_group()
    which.add_argument("--env", help="score with this environment's released stable model")
    which.add_argument("--model", type=Path, help="a model directory (default: models/model)")
    score.add_argument("--input", required=True, help="file, folder or URL to score")
    score.add_argument("--output", type=Path, required=True, help="folder the scores replace")
    score.add_argument(
        "--id-column",
        action="append",
        default=[],
        help="copied to the output as its key (repeat for several; default: "
        "prepare.columns.id, else the row's position as `row`)",
    )
    score.add_argument(
        "--max-refused",
        type=int,
        default=1000,
        help="rows the model cannot take before the run fails (default 1000)",
    )
    score.add_argument(
        "--batch-rows", type=int, default=100_000, help="rows in memory at a time (default 100000)"
    )
    score.add_argument(
        "--candidate",
        type=Path,
        help="shadow-score: this model scores the same input too, and the canary judge says "
        "whether it may take over (exit 0 take over, 1 reject, 3 hold: not enough rows to tell)",
    )
    score.add_argument(
        "--candidate-output",
        type=Path,
        help="where the candidate's scores and _shadow.json go (default: OUTPUT.candidate)",
    )
    score.add_argument(
        "--pushgateway",
        help="push the run's figures to this Prometheus Pushgateway (with --env: under the "
        "group the environment's rendered rules read, as its scheduled runs push)",
    )
    score.set_defaults(handler=_score)


def _score(args: argparse.Namespace, paths: ProjectPaths) -> int:
    from modelops.batch.score import score
    from modelops.params import load_params

    return score(_request(args), load_params(paths.params_file), paths)


def _request(args: argparse.Namespace) -> ScoreRequest:
    from modelops.batch.score import ScoreRequest

    return ScoreRequest(
        input=args.input,
        output=args.output,
        env=args.env,
        model_dir=args.model,
        id_columns=tuple(args.id_column),
        max_refused=args.max_refused,
        batch_rows=args.batch_rows,
        candidate_dir=args.candidate,
        candidate_output=args.candidate_output,
        pushgateway=args.pushgateway,
    )

"""`modelops-score`: score a table with a model directory (`modelops_serving.batch`).

What `modelops score` runs once it has found the model a release names, and what the batch
CronJob runs in the model server's image. Exit codes: 0 scored, 1 refused (the message says
why; the previous output is untouched), 130 interrupted (Ctrl-C or SIGTERM; likewise).

`--engine spark` scores the same way on Apache Spark (`modelops_serving.spark_engine`, after
`make install-spark`): at `--master`, else SPARK_REMOTE, else spark-submit's master when
spark-submit started it, else `local[*]`.

`--pushgateway URL` (or $MODELOPS_PUSHGATEWAY) pushes the run's figures when it ends, success
or failure, for the batch alerts (`modelops_serving.push`).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from modelops_serving import push, spark_engine
from modelops_serving.artifact import PROFILE_FILE
from modelops_serving.batch import BatchError, Job, run
from modelops_serving.profile import parse_profile

INTERRUPTED = 130
PUSHGATEWAY_ENV = "MODELOPS_PUSHGATEWAY"
DEFAULT_PUSH_JOB = "modelops-batch"


def parse(argv: list[str] | None) -> Job:
    return _job(*_arguments(argv))


def _arguments(argv: list[str] | None) -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    parser = argparse.ArgumentParser(prog="modelops-score", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="the model directory")
    parser.add_argument(
        "--model-hash", default="", help="refuse a model directory without this content hash"
    )
    parser.add_argument("--input", required=True, help="CSV/Parquet file, folder, or URL")
    parser.add_argument("--output", type=Path, required=True, help="the output folder")
    parser.add_argument(
        "--id-column",
        action="append",
        default=[],
        help="key column(s) copied to the output (default: the row's position, `row`)",
    )
    parser.add_argument("--max-refused", type=int, default=1000, help="rows refused before failing")
    parser.add_argument("--batch-rows", type=int, default=100_000, help="rows read at a time")
    parser.add_argument("--run-id", default="", help="the run's id (default: a new one)")
    parser.add_argument(
        "--engine", choices=("local", "spark"), default="local", help="where rows are scored"
    )
    parser.add_argument(
        "--master",
        help=f"--engine spark: the Spark master URL (default: ${spark_engine.REMOTE_ENV}, "
        f"else spark-submit's when it started this, else {spark_engine.DEFAULT_MASTER})",
    )
    parser.add_argument(
        "--pushgateway",
        default=os.environ.get(PUSHGATEWAY_ENV, ""),
        help=f"push the run's figures to this Prometheus Pushgateway (default ${PUSHGATEWAY_ENV})",
    )
    parser.add_argument(
        "--push-job",
        default=DEFAULT_PUSH_JOB,
        help=f"the pushed group's job (default {DEFAULT_PUSH_JOB}; a batch environment's: its "
        "CronJob's name)",
    )
    parser.add_argument(
        "--push-label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more of the pushed group's key, e.g. namespace=churn-batch (repeat for several)",
    )
    parser.add_argument(
        "--model-version",
        default="",
        help="the pushed series' model_version (default: the first 12 characters of "
        "--model-hash, else `unreleased`)",
    )
    args = parser.parse_args(argv)
    if args.master and args.engine != "spark":
        parser.error("--master is for --engine spark")
    for label in args.push_label:
        key, _, value = label.partition("=")
        if not key.isidentifier() or not value or key in ("job", "model_version"):
            parser.error(
                f"--push-label {label!r}: give KEY=VALUE, KEY a label name other than job "
                "(--push-job) and model_version (--model-version)"
            )
    return args, parser


def _job(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Job:
    if args.max_refused < 0 or args.batch_rows < 1:
        parser.error("--max-refused must be >= 0 and --batch-rows >= 1")
    return Job(
        model_dir=args.model,
        input=args.input,
        output=args.output,
        expected_hash=args.model_hash,
        id_columns=tuple(args.id_column),
        max_refused=args.max_refused,
        batch_rows=args.batch_rows,
        run_id=args.run_id or uuid.uuid4().hex,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _engine(args: argparse.Namespace) -> Callable[[Job], dict[str, Any]]:
    if args.engine == "local":
        return run
    return functools.partial(spark_engine.run, master=spark_engine.chosen_master(args.master))


def _gateway(args: argparse.Namespace) -> push.Gateway | None:
    if not args.pushgateway:
        return None
    version = args.model_version or args.model_hash[:12] or "unreleased"
    labels = dict(label.partition("=")[::2] for label in args.push_label)
    return push.Gateway(args.pushgateway, args.push_job, labels, version)


def _report(problem: str | None) -> None:
    if problem:
        print(f"score: warning: the run's figures were not pushed: {problem}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args, parser = _arguments(argv)
    job, engine, gateway = _job(args, parser), _engine(args), _gateway(args)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        record = engine(job)
    except (BatchError, KeyboardInterrupt) as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        if interrupted:
            print(f"score: interrupted; {job.output} is as it was", file=sys.stderr)
        else:
            print(f"score: {exc}", file=sys.stderr)
        if gateway is not None:
            _report(push.push_failure(gateway, stopped=time.time()))
        return INTERRUPTED if interrupted else 1
    if gateway is not None:
        profile = parse_profile(
            (job.model_dir / PROFILE_FILE).read_bytes(), where=str(job.model_dir)
        )
        _report(push.push_success(gateway, record, profile, finished=time.time()))
    rows = record["rows"]
    print(
        f"score: {rows['scored']:,} rows scored, {rows['refused']:,} refused -> {job.output} "
        f"(model {record['model']['hash'][:12]}, run {record['run_id']})"
    )
    if rows["refused"]:
        print(f"score: refused rows and why: {job.output / '_refused.parquet'}")
    print(json.dumps({"rows": rows, "seconds": record["seconds"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`modelops monitor --rows FILE`: the pull-request drift gate on logged production rows.

The server's request log (serving/modelops_serving/request_log.py) holds one JSON line
per sampled row. The file is read once, line by line, keeping a uniform sample (reservoir) of
`gates.runner.sample_rows` rows, the most Deepchecks' checks look at anyway: memory stays
bounded however long the log. The rows are compared with the training data (`data/prepared`)
by the drift gate's checks that need no label (feature drift, multivariate drift, new
categories), judged by the same judges and limits as in a pull request; the checks that need
labels are not run (a request log has none), and the report says so. Writes gate.json,
report.md and the Deepchecks HTML; nothing when a line is malformed (the error names it).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from deepchecks.tabular import Dataset

from modelops.data import Schema
from modelops.errors import ExitCode, RowsError
from modelops.gates.catalog import DRIFT, Facts
from modelops.gates.inputs import sizes
from modelops.gates.results import GateResult
from modelops.gates.runner import GateInputs, RunSettings, run_gate
from modelops.io import JSONObject, Writer, bytes_writer, commit, json_bytes
from modelops.params import load_params
from modelops.paths import ProjectPaths
from modelops.prepared import load_prepared

UNLABELLED_CHECKS = ("feature_drift", "multivariate_drift", "new_categories")


@dataclass(frozen=True)
class Sample:
    """A uniform sample of a request log, and how much it was drawn from."""

    frame: pd.DataFrame
    total: int
    versions: tuple[str, ...]


def read_sample(path: Path, features: tuple[str, ...], *, size: int, seed: int = 0) -> Sample:
    """A uniform sample of `size` rows of the log (all of them when it is shorter)."""
    chooser = random.Random(seed)
    kept: list[JSONObject] = []
    versions: set[str] = set()
    total = 0
    for number, record in _records(path):
        row = record.get("features")
        if not isinstance(row, dict):
            raise RowsError(f"{path}:{number}: no 'features' object: is this a request log?")
        unknown = [name for name in features if name not in row]
        if unknown:
            raise RowsError(
                f"{path}:{number}: no value for {', '.join(unknown)}: the log is of another "
                "model (its features differ from the training data's)"
            )
        versions.add(str(record.get("model_version", "")))
        total += 1
        if len(kept) < size:
            kept.append(row)
        else:
            slot = chooser.randrange(total)
            if slot < size:
                kept[slot] = row
    if total == 0:
        raise RowsError(f"{path} holds no rows: set monitoring.request_log.sample_rate above 0")
    frame = pd.DataFrame.from_records(kept, columns=list(features))
    return Sample(frame=frame, total=total, versions=tuple(sorted(versions)))


@dataclass(frozen=True)
class RowsGate:
    """The drift gate on a request log: its result, its report, and where both went."""

    result: GateResult
    summary: str
    """The report (Markdown), as written to report.md."""
    folder: Path

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.result.status == "fail" else ExitCode.OK

    def to_text(self, paths: ProjectPaths) -> str:
        """What `monitor --rows` prints: the report and where it was written."""
        written = f"{paths.show(self.folder)}/gate.json, report.md, drift.html"
        return f"{self.summary}monitor --rows: wrote {written}"


def gate_rows(paths: ProjectPaths, log: Path, folder: Path | None = None) -> RowsGate:
    """Run the unlabelled drift checks on the log against the training data, writing
    gate.json, report.md and the Deepchecks HTML to `folder` (default reports/monitor/rows/)."""
    folder = folder if folder is not None else paths.monitor_dir / "rows"
    if not log.is_file():
        raise RowsError(f"{log} does not exist: give the request log the server wrote")
    params = load_params(paths.params_file)
    prepared = load_prepared(paths.prepared_dir)
    schema = prepared.schema
    runner = params.gates.runner
    sample = read_sample(log, schema.features, size=runner.sample_rows)
    rows = _typed(sample.frame, schema)
    train = prepared.train
    labelled = rows.assign(**{schema.label: np.nan})
    gate_params = params.gates.drift
    checks = tuple(spec for spec in DRIFT if spec.key in UNLABELLED_CHECKS)
    inputs = GateInputs(
        train=_dataset(train, schema),
        test=_dataset(rows, schema),
        facts=Facts(
            id_column=None,
            has_timestamp=False,
            time_split=False,
            positive_label=schema.positive_label,
        ),
        sizes=sizes(train, labelled, schema, sample_rows=runner.sample_rows),
        threshold=params.evaluate.threshold,
    )
    settings = RunSettings(
        sample_rows=runner.sample_rows,
        timeout_seconds=runner.check_timeout_seconds,
        html="always",
        confidence=params.gates.statistics.confidence,
        resamples=params.gates.statistics.bootstrap_resamples,
        seed=params.gates.statistics.seed,
        trusted=params.gates.drift.trusted_features,
    )
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / ".drift.deepchecks.html"
    staging.unlink(missing_ok=True)
    result = run_gate("drift", checks, gate_params, inputs, settings, html_file=staging)
    result = replace(result, html="drift.html" if staging.exists() else None)
    summary = _summary(result, sample, log)
    outputs = {
        folder / "gate.json": bytes_writer(json_bytes(result.to_dict())),
        folder / "report.md": bytes_writer(summary.encode()),
    }
    if staging.exists():
        outputs[folder / "drift.html"] = _moved_from(staging)
    commit(outputs)
    return RowsGate(result, summary, folder)


def _records(path: Path) -> Iterator[tuple[int, JSONObject]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise RowsError(f"{path}:{number}: not a JSON line ({exc})") from None
            if not isinstance(record, dict):
                raise RowsError(f"{path}:{number}: a line must be a JSON object")
            yield number, record


def _typed(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The logged values with the training data's types (numbers, categories as text)."""
    typed = frame.copy()
    for name in schema.numeric:
        typed[name] = pd.to_numeric(typed[name], errors="coerce").astype(np.float64)
    for name in schema.categorical:
        typed[name] = typed[name].map(lambda v: None if v is None else str(v)).astype(object)
    return typed


def _dataset(frame: pd.DataFrame, schema: Schema) -> Dataset:
    return Dataset(
        frame.loc[:, list(schema.features)],
        features=list(schema.features),
        cat_features=list(schema.categorical),
    )


def _summary(result: GateResult, sample: Sample, log: Path) -> str:
    lines = [
        f"# Drift on logged rows: {result.status}",
        "",
        f"{len(sample.frame)} rows sampled uniformly of {sample.total} in {log.name} (model "
        f"{', '.join(v for v in sample.versions if v) or 'unknown'}), against the training data; "
        "the pull-request drift gate's checks and limits (gates.drift). Its label checks "
        "(label drift, leakage, overlap) need labels, which a request log does not have: not run.",
        "",
        "| check | condition | status | value | note |",
        "|---|---|---|---|---|",
    ]
    for check in result.checks:
        lines.append(
            f"| {check.title} | {check.condition} | {check.status} | {check.value} | "
            f"{check.reason} |"
        )
    return "\n".join(lines) + "\n"


def _moved_from(staging: Path) -> Writer:
    def move(target: Path) -> None:
        staging.replace(target)

    return move

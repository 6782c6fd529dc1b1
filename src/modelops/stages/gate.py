"""Stages `gate_data` and `gate_model`: run the named gates and record each one.

Writes `reports/gates/<gate>.json` for every gate named (deterministic, but for the latency
gate's timings; the model gates also record which model they judged: its content hash and
training inputs), and the full Deepchecks HTML report of each gate that ran to
`reports/deepchecks/<gate>.html` (a run artifact, not a DVC output: plotly gives every figure a
random id). All files land together at the end. The champion is found and loaded once, for
every gate that compares the candidate with it; the edge gate gets `modelops export`'s own code,
run on the candidate unsigned into a temporary folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from modelops import tracking
from modelops.data import Schema
from modelops.edge.export import ExportRequest, Outcome, attempt
from modelops.gates.catalog import Facts
from modelops.gates.champion import Matchup, matchup
from modelops.gates.edge import Exporter
from modelops.gates.inputs import (
    ThresholdedClassifier,
    datasets,
    importance_series,
    predictions,
    sizes,
)
from modelops.gates.registry import gate
from modelops.gates.results import GateResult
from modelops.gates.runner import GateInputs, RunSettings, run_gate
from modelops.identity import identify
from modelops.io import Writer, bytes_writer, commit, json_bytes
from modelops.params import EdgeFormat, Params
from modelops.paths import ProjectPaths
from modelops.prepared import Prepared, load_prepared

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def run(
    names: Sequence[str],
    params: Params,
    *,
    root: Path,
    data_dir: Path,
    model_dir: Path,
    importance_file: Path,
    out_dir: Path,
    html_dir: Path,
) -> tuple[GateResult, ...]:
    """Run the gates in `names` (`gates.registry`), in that order, and write their results."""
    gates = [gate(name) for name in names]
    prepared = load_prepared(data_dir)
    schema = prepared.schema
    active = [g for g in gates if g.section(params.gates).mode != "off"]
    # The edge gate's exporter loads the model in its own environment.
    loads = any(g.needs_model and g.judge_export is None for g in active)
    pipeline = tracking.load_model(model_dir) if loads else None
    train, test = datasets(prepared.train, prepared.test, schema)
    runner, statistics = params.gates.runner, params.gates.statistics
    inputs = GateInputs(
        train=train,
        test=test,
        facts=_facts(params, schema),
        sizes=sizes(prepared.train, prepared.test, schema, sample_rows=runner.sample_rows),
        threshold=params.evaluate.threshold,
    )
    settings = RunSettings(
        sample_rows=runner.sample_rows,
        timeout_seconds=runner.check_timeout_seconds,
        html=runner.html_reports,
        confidence=statistics.confidence,
        resamples=statistics.bootstrap_resamples,
        seed=statistics.seed,
        trusted=params.gates.drift.trusted_features,
    )
    html_dir.mkdir(parents=True, exist_ok=True)

    results: list[GateResult] = []
    outputs: dict[Path, Writer] = {}
    against: Matchup | None = None
    for current in gates:
        name, gate_params = current.name, current.section(params.gates)
        if current not in active:
            note = f"turned off in params.yaml (gates.{name}.mode: off)"
            results.append(GateResult(name, "off", "off", notes=(note,)))
        elif current.against_champion is not None:
            assert pipeline is not None, "loaded above: the champion gates need the model"
            if against is None:  # found once, for every gate that compares with it
                against = matchup(
                    params.gates.champion,
                    root=root,
                    candidate=pipeline,
                    test=prepared.test,
                    schema=schema,
                    threshold=params.evaluate.threshold,
                )
            results.append(current.against_champion()(params.gates, against))
        elif current.judge_export is not None:
            with tempfile.TemporaryDirectory(prefix="modelops-edge-gate-") as scratch:
                export = _exporter(params, ProjectPaths(root), model_dir, Path(scratch))
                results.append(current.judge_export()(params, export))
        else:
            assert current.checks is not None, "a gate has Deepchecks checks or a comparison"
            gate_inputs = inputs
            if current.needs_model:
                gate_inputs = _with_model(inputs, pipeline, prepared, params, importance_file)
            staging = None
            if settings.with_display:
                staging = html_dir / f".{name}-{os.getpid()}.deepchecks.html"
                staging.unlink(missing_ok=True)
            result = run_gate(
                name, current.checks(), gate_params, gate_inputs, settings, html_file=staging
            )
            if staging is not None and staging.exists():
                outputs[html_dir / f"{name}.html"] = _moved_from(staging)
                result = replace(result, html=f"{name}.html")
            results.append(result)

    judging = {g.name for g in gates if g.needs_model}
    if judging:
        # Whatever their modes, the model gates record which model they judged: a deploy
        # publishes only that model (or a retrain of its inputs that passed its own gates).
        judged = identify(model_dir, root=root)
        results = [
            replace(result, judged=judged) if result.name in judging else result
            for result in results
        ]
    for result in results:
        outputs[out_dir / f"{result.name}.json"] = bytes_writer(json_bytes(result.to_dict()))
    commit(outputs)
    return tuple(results)


def _exporter(params: Params, paths: ProjectPaths, model_dir: Path, scratch: Path) -> Exporter:
    """`modelops export` on the candidate, unsigned (a pull request holds no signing key), into
    `scratch` (it publishes nothing)."""

    def export(fmt: EdgeFormat) -> Outcome:
        request = ExportRequest(fmt, model_dir=model_dir, out_dir=scratch / fmt, unsigned=True)
        return attempt(request, params, paths)

    return export


def _facts(params: Params, schema: Schema) -> Facts:
    return Facts(
        id_column=schema.id,
        has_timestamp=schema.timestamp is not None,
        time_split=params.prepare.split.strategy == "time",
        positive_label=schema.positive_label,
    )


def _with_model(
    inputs: GateInputs,
    pipeline: Pipeline,
    prepared: Prepared,
    params: Params,
    importance_file: Path,
) -> GateInputs:
    """Add the thresholded model, its predictions and the evaluate stage's feature importance."""
    schema = prepared.schema
    model = ThresholdedClassifier(pipeline, schema=schema, threshold=params.evaluate.threshold)
    ranked = json.loads(importance_file.read_text(encoding="utf-8"))["features"]
    return replace(
        inputs,
        model=model,
        predictions=predictions(model, prepared.train, prepared.test, schema),
        feature_importance=importance_series(ranked, schema),
    )


def _moved_from(staging: Path) -> Writer:
    def move(path: Path) -> None:
        staging.replace(path)

    return move

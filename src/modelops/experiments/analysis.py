"""`modelops experiment plan | analyze`: the edges (params, the release file, Prometheus, the
verdict files) around the pure statistics (`experiments.evidence`, `stats`, `verdict`).

The plan is made before the experiment starts, from the stable model's test-set figures (its
servers export them) and the labelled predictions of the last `window`. The analysis reads the
experiment since its start (the release's `start-experiment` step) and judges it with the same
plan, so the confidence sequences are tuned before any of the data they judge.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import modelops_contract as contract

from modelops.canary.analysis import business_values, parse_time
from modelops.canary.plan import window_seconds
from modelops.canary.queries import covered_query
from modelops.errors import ExperimentError
from modelops.experiments.evidence import (
    Evidence,
    Judgement,
    experiment_plan,
    judge,
    kpi_rows_per_label,
    reference_cells,
)
from modelops.experiments.queries import experiment_queries, reference_query, variant_counts
from modelops.experiments.stats import Plan, days_needed
from modelops.io import bytes_writer, commit
from modelops.params import ExperimentParams, Params, RealtimeEnvironmentParams, duration_seconds
from modelops.paths import ProjectPaths
from modelops.releases.files import load_releases
from modelops.releases.state import Release
from modelops.telemetry.prometheus import Prometheus, connect
from modelops.telemetry.promql import sample_value, scalar

NEUTRAL_VALUES = dict.fromkeys(contract.CELLS, 0.0)


@dataclass(frozen=True)
class ExperimentPlan:
    """How long the experiment declared for an environment needs at current traffic."""

    environment: str
    settings: ExperimentParams
    plan: Plan
    rows_per_label: float
    """KPI rows per labelled prediction (1 for business value)."""
    labels_per_day: float
    window: str
    delay_days: float
    """Truth arrives this long after a prediction (monitoring.labels.delay)."""

    @property
    def days(self) -> float:
        """Days of traffic to the planned KPI rows, plus the labels' delay."""
        rows_per_day = self.labels_per_day * self.rows_per_label
        return days_needed(self.plan.units_total, rows_per_day) + self.delay_days

    @property
    def fits(self) -> bool:
        return self.days <= self.settings.max_days

    @property
    def exit_code(self) -> int:
        return 0 if self.fits else 1


@dataclass(frozen=True)
class Analysis:
    """An experiment judged: where, on what, and the verdict."""

    evidence: Evidence
    judgement: Judgement
    settings: ExperimentParams
    judged_at: str
    prometheus: str


def values_of(params: Params) -> Mapping[str, float]:
    """Value per confusion cell (zeros when monitoring.business is null: recall or precision
    decide then, and params refuse business_value)."""
    return business_values(params) or NEUTRAL_VALUES


def reference(prometheus: Prometheus, namespace: str, release: Release) -> dict[str, float]:
    """The stable model's cell shares on its test set, from what its servers export."""
    assert release.stable is not None
    version = release.stable.version
    answer = prometheus.query(reference_query(namespace, version))
    expected = {s.get("metric", {}).get(contract.METRIC, ""): sample_value(s) for s in answer}
    cells = reference_cells(expected)
    if cells is None:
        raise ExperimentError(
            f"the stable model {version}'s servers in {namespace} export no usable test-set "
            f"positive rate, precision and recall ({contract.REFERENCE_METRIC.name}: "
            f"{expected or 'none'}): is it serving, and scraped by this Prometheus?"
        )
    return cells


def plan(
    params: Params, environment: str, prometheus_url: str | None, *, root: Path, window: str
) -> ExperimentPlan:
    """The experiment's KPI rows and days at the labelled predictions of the last `window`."""
    settings = params.experiment(environment)
    namespace = _namespace(params, environment)
    release = load_releases(root, params)[environment]
    if release.stable is None:
        raise ExperimentError(f"{environment} has no stable model yet: nothing to compare with")
    prometheus = connect(prometheus_url, params.monitoring.prometheus_url)
    cells = reference(prometheus, namespace, release)
    seconds = window_seconds(window)
    where = f'namespace="{namespace}"'
    labelled = scalar(
        prometheus.query(f"sum(increase({contract.FEEDBACK_ROWS.total}{{{where}}}[{window}]))")
    )
    covered = min(scalar(prometheus.query(covered_query(namespace, window))), seconds)
    per_day = labelled / covered * 86_400 if covered > 0 and not math.isnan(labelled) else 0.0
    delay = params.monitoring.labels.delay
    return ExperimentPlan(
        environment=environment,
        settings=settings,
        plan=experiment_plan(settings, cells, values_of(params)),
        rows_per_label=kpi_rows_per_label(settings.primary, cells),
        labels_per_day=per_day,
        window=window,
        delay_days=(duration_seconds(delay) / 86_400) if delay else 0.0,
    )


def look(
    root: Path,
    params: Params,
    environment: str,
    prometheus_url: str | None,
    *,
    now: datetime | None = None,
) -> Analysis:
    """The running experiment judged from Prometheus, since its start."""
    settings = params.experiment(environment)
    release = load_releases(root, params)[environment]
    experiment = release.experiment
    if experiment is None:
        raise ExperimentError(
            f"{release.describe()}: no experiment runs (start it with modelops release "
            f"experiment start --env {environment})"
        )
    declared = {name: settings.variants.get(name, "") for name in settings.candidates}
    running = {v.name: v.model.model_hash for v in experiment.variants[1:]}
    if (experiment.name, experiment.split, running) != (settings.name, settings.split, declared):
        raise ExperimentError(
            f"{environment} runs {experiment.describe()}, but params.yaml's experiments."
            f"{environment} declares {settings.name} with split {settings.split} and other "
            "variants: judge it with the params it was started with (check out the commit that "
            "started it), or stop it and start the one declared now"
        )
    prometheus = connect(prometheus_url, params.monitoring.prometheus_url)
    moment = now or datetime.now(UTC)
    namespace = _namespace(params, environment)
    started = _started(release)
    seconds = max((moment - parse_time(started)).total_seconds(), 1.0)
    queries = experiment_queries(namespace, experiment, seconds)
    at = moment.timestamp()
    answers = {name: prometheus.query(query, at=at) for name, query in queries.items()}
    processes = scalar(answers["processes"])
    evidence = Evidence(
        environment=environment,
        experiment=experiment.name,
        started_at=started,
        seconds=seconds,
        processes=0.0 if math.isnan(processes) else processes,
        variants=variant_counts(answers, experiment),
        latency_threshold=params.monitoring.objectives.latency.threshold_seconds,
        queries=queries,
    )
    cells = reference(prometheus, namespace, release)
    values = values_of(params)
    judgement = judge(
        evidence, settings, values=values, plan=experiment_plan(settings, cells, values)
    )
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return Analysis(evidence, judgement, settings, stamp, prometheus.url)


def keep(root: Path, analysis: Analysis, folder: Path | None = None) -> list[Path]:
    """Write the verdict as Markdown and JSON to `folder` (default reports/experiments/)."""
    from modelops.experiments import document

    where = folder if folder is not None else ProjectPaths(root).experiments_dir
    name = analysis.evidence.environment
    targets = {
        where / f"{name}.md": document.to_markdown(analysis),
        where / f"{name}.json": document.to_json(analysis),
    }
    where.mkdir(parents=True, exist_ok=True)
    commit({path: bytes_writer(text.encode()) for path, text in targets.items()})
    return list(targets)


def _namespace(params: Params, environment: str) -> str:
    settings = params.deploy.environments[environment]
    if not isinstance(settings, RealtimeEnvironmentParams):
        raise ExperimentError(f"{environment} is a batch environment: it runs no experiment")
    return settings.namespace


def _started(release: Release) -> str:
    """When the running experiment started (its `start-experiment` step)."""
    starts = [event for event in release.history if event.action == "start-experiment"]
    return starts[-1].at

"""One look at an environment's canary: its step from the release, its counts from Prometheus.

The edges of `modelops canary`: the release file, Prometheus and the verdict files. What is
decided from what they hold is pure (`canary.judge`, `canary.plan`, `canary.rollout`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from modelops.canary import document
from modelops.canary.document import Step
from modelops.canary.evidence import Evidence
from modelops.canary.judge import Verdict, judge
from modelops.canary.plan import RolloutPlan, Traffic, plan_rollout, window_seconds
from modelops.canary.queries import covered_query, step_queries, track_counts
from modelops.errors import CanaryError
from modelops.io import bytes_writer, commit
from modelops.params import BatchEnvironmentParams, EnvironmentParams, Params, served_by_pods
from modelops.paths import RELEASES_DIR, ProjectPaths
from modelops.releases.files import load_releases
from modelops.releases.state import Canary, Event, Release
from modelops.telemetry.prometheus import Prometheus, connect
from modelops.telemetry.promql import scalar

STEP_ACTIONS = frozenset({"start-canary", "start-shadow", "promote"})
MIRRORED_WEIGHT = 50
"""A shadow sees every request stable sees: as many samples as a canary at 50%."""
"""Where `canary analyze` and `canary auto` keep the latest verdict of each environment."""


@dataclass(frozen=True)
class Analysis:
    """A verdict and the step it is about."""

    verdict: Verdict
    step: Step
    canary: Canary


def current_step(release: Release) -> tuple[Canary, Event]:
    """The running canary and the history event that put it at its current weight."""
    if release.canary is None or release.stable is None:
        raise CanaryError(
            f"{release.describe()}: no canary to judge (a deploy with strategy canary starts one)"
        )
    canary = release.canary
    for event in reversed(release.history):
        if event.version == canary.model.version and event.action in STEP_ACTIONS:
            return canary, event
    raise CanaryError(
        f"{release.environment}: the history has no step that started canary "
        f"{canary.model.version}; restore the release file from git"
    )


def analyze(
    release: Release,
    params: Params,
    prometheus: Prometheus,
    *,
    now: datetime | None = None,
) -> Analysis:
    """Judge the current step of `release`'s canary from what Prometheus counted."""
    canary, event = current_step(release)
    assert release.stable is not None
    moment = now or datetime.now(UTC)
    started = parse_time(event.at)
    seconds = max((moment - started).total_seconds(), 0.0)
    environment = params.deploy.environments[release.environment]
    namespace = served_by_pods(environment, name=release.environment, what="the judge").namespace
    role = canary.role  # a shadow's series carry track="shadow"
    queries = step_queries(namespace, seconds, (role, "stable"))
    at = moment.timestamp()
    answers = {name: prometheus.query(query, at=at) for name, query in queries.items()}
    evidence = Evidence(
        canary=track_counts(answers, role),
        stable=track_counts(answers, "stable"),
        step_seconds=seconds,
        weight=MIRRORED_WEIGHT if canary.shadow else canary.weight,
        queries=queries,
        shadow=canary.shadow,
    )
    verdict = judge(evidence, params.canary, business_values(params), drift=params.gates.drift)
    step = Step(
        environment=release.environment,
        canary_version=canary.model.version,
        stable_version=release.stable.version,
        weight=canary.weight,
        started=event.at,
        judged_at=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        prometheus=prometheus.url,
    )
    return Analysis(verdict=verdict, step=step, canary=canary)


def business_values(params: Params) -> Mapping[str, float] | None:
    """Value per confusion-matrix cell from monitoring.business, if set."""
    business = params.monitoring.business
    if business is None:
        return None
    return {
        "true_positive": business.true_positive,
        "false_positive": business.false_positive,
        "true_negative": business.true_negative,
        "false_negative": business.false_negative,
    }


def parse_time(stamp: str) -> datetime:
    """A history timestamp (`2026-12-03T08:00:00Z`) as an aware datetime."""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise CanaryError(f"history time {stamp!r} is not ISO 8601") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def verdict_paths(environment: str, step: Step, decision: str) -> tuple[Path, Path]:
    """Where a verdict that changed the release is kept, beside the release (md, json)."""
    stamp = step.judged_at.replace("-", "").replace(":", "")
    base = Path(RELEASES_DIR) / environment / "verdicts" / f"{stamp}-{decision}"
    return base.with_suffix(".md"), base.with_suffix(".json")


def environment_of(params: Params, name: str) -> EnvironmentParams:
    """The environment `name` of deploy.environments, or a refusal that lists them."""
    if name not in params.deploy.environments:
        raise CanaryError(
            f"unknown environment '{name}'; params.yaml declares "
            f"{sorted(params.deploy.environments)}"
        )
    return params.deploy.environments[name]


def release_of(root: Path, params: Params, environment: str) -> Release:
    """The environment's release as its file holds it (a canary or not)."""
    environment_of(params, environment)
    return load_releases(root, params)[environment]


def look(
    root: Path,
    params: Params,
    environment: str,
    prometheus_url: str | None,
    *,
    now: datetime | None = None,
) -> Analysis:
    """The environment's current step judged from the Prometheus the flag, the environment
    or params name (`prometheus_url` is the flag)."""
    release = release_of(root, params, environment)
    if release.canary is None:
        raise CanaryError(f"{release.describe()}: no canary to judge")
    prometheus = connect(prometheus_url, params.monitoring.prometheus_url)
    return analyze(release, params, prometheus, now=now or datetime.now(UTC))


def keep(root: Path, analysis: Analysis, folder: Path | None = None) -> list[Path]:
    """Write the verdict as Markdown and JSON to `folder` (default reports/canary/)."""
    where = folder if folder is not None else ProjectPaths(root).canary_dir
    name = analysis.step.environment
    targets = {
        where / f"{name}.md": document.to_markdown(analysis.verdict, analysis.step),
        where / f"{name}.json": document.to_json(analysis.verdict, analysis.step),
    }
    where.mkdir(parents=True, exist_ok=True)
    commit({path: bytes_writer(text.encode()) for path, text in targets.items()})
    return list(targets)


def plan(
    params: Params, environment: str, prometheus_url: str | None, *, window: str
) -> RolloutPlan:
    """How long each step of the environment's rollout needs at the traffic of the last
    `window` (the canary's and stable's requests together, as one model's)."""
    settings = served_by_pods(
        environment_of(params, environment), name=environment, what="the rollout plan"
    )
    if isinstance(settings, BatchEnvironmentParams):
        raise CanaryError(
            f"{environment} is a batch environment: it serves no traffic, so there is no "
            "rollout to plan (a new model replaces the previous one at once)"
        )
    namespace = settings.namespace
    prometheus = connect(prometheus_url, params.monitoring.prometheus_url)
    seconds = window_seconds(window)
    queries = step_queries(namespace, seconds)
    answers = {name: prometheus.query(query) for name, query in queries.items()}
    covered = scalar(prometheus.query(covered_query(namespace, window)))
    traffic = Traffic(
        namespace=namespace,
        window=window,
        stable=track_counts(answers, "stable"),
        canary=track_counts(answers, "canary"),
        covered=min(covered, seconds),
    )
    return plan_rollout(
        environment,
        settings.canary_steps,
        traffic,
        params.canary,
        business_values(params),
        drift=params.gates.drift,
    )

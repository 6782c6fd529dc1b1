"""One look at an environment in production: M windows from Prometheus, judged and decided.

The served model is the release's stable one (an edge environment's: its stable bundle); its
reference profile comes from the model store (the published model directory holds
`profile.json`; a bundle archive may carry its own copy) or from `--profile`. Prometheus is asked
for each window's counts at the window's end, so the look is the same whenever it is repeated.
"""

from __future__ import annotations

import datetime as dt
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from modelops.errors import MonitorError
from modelops.identity import identify
from modelops.monitoring import quality
from modelops.monitoring.decide import Decision, Dismissal, decide, dismiss
from modelops.monitoring.drift import Finding, Limits, Window, judge_drift
from modelops.monitoring.windows import to_window, trained_query, window_queries
from modelops.params import DeployParams, Params, duration_seconds
from modelops.releases.publish import is_object_store, model_uri
from modelops.releases.state import ModelVersion, Release
from modelops.telemetry.profile import PROFILE_FILE, ReferenceProfile
from modelops.telemetry.prometheus import Prometheus
from modelops.telemetry.promql import scalar
from modelops.telemetry.selector import Selector, selector


@dataclass(frozen=True)
class JudgedWindow:
    """One window: its counts, what was found, and the quality its scores suggest."""

    window: Window
    findings: tuple[Finding, ...]
    estimate: quality.Estimate | None


@dataclass(frozen=True)
class Look:
    """Everything `modelops monitor` reports for one environment."""

    environment: str
    model: ModelVersion
    profile_source: str
    at: float
    window: str
    label_delay: str | None
    judged: tuple[JudgedWindow, ...]
    decision: Decision
    queries: dict[str, str]
    prometheus: str
    selector: Selector
    """Which series are the environment's, and how they reach Prometheus."""


def silent(look: Look) -> str | None:
    """Why the latest window has no rows at all, for the report to say it (None when it has)."""
    window = look.judged[-1].window
    if any(sum(bins.values()) > 0 for bins in window.features.values()) or any(
        window.scores.values()
    ):
        return None
    check = {
        "pods": "is Prometheus scraping its servers (the PodMonitor), is the release file "
        "current, and is traffic reaching the model?",
        "batch": "is Prometheus scraping the Pushgateway its runs push to, is the release file "
        "current, and has a run succeeded?",
        "edge": "is Prometheus scraping the Pushgateway the devices push to (with "
        "honor_labels), is the fleet manifest current, and do the devices running the stable "
        "bundle push their counts?",
    }[look.selector.kind]
    return (
        f"no telemetry in the latest window for model_version {look.model.version} in "
        f"{look.selector.describe()}: {check} Every criterion is n/a."
    )


def unjudged(look: Look) -> str | None:
    """What the monitor cannot judge in this kind of environment, and why (None: all of it)."""
    return {
        "pods": None,
        "batch": "no feedback comes back to a batch run: recall, precision and concept drift "
        "are not judged",
        "edge": "devices send counts of their rows and scores, no labels and no latencies: "
        "recall, precision, concept drift, business value and latency are not judged for a "
        "fleet",
    }[look.selector.kind]


def devices(window: Window) -> tuple[int, float] | None:
    """How many devices reported rows in an edge window, and those rows (None: not edge)."""
    if window.devices is None:
        return None
    return len(window.devices), sum(window.devices.values())


def limits(params: Params) -> Limits:
    """The PR drift gate's limits, and the monitoring objectives' for what only production has."""
    drift, objectives = params.gates.drift, params.monitoring.objectives
    return Limits(
        max_numeric_drift=drift.max_numeric_drift,
        max_categorical_drift=drift.max_categorical_drift,
        max_score_drift=params.gates.model.max_prediction_drift,
        max_missing_increase=objectives.missing_values.max_increase,
        max_unseen_rate=objectives.unseen_categories.max_rate,
        min_rows=objectives.feature_drift.min_rows,
        recall_max_drop=objectives.recall.max_drop,
        precision_max_drop=objectives.precision.max_drop,
        min_labels=objectives.recall.min_labels,
        max_calibration_gap=params.monitoring.retrain.max_calibration_gap,
        confidence=params.gates.statistics.confidence,
    )


def served_model(release: Release) -> ModelVersion:
    """The stable model of a release, or a clear refusal."""
    if release.stable is None:
        raise MonitorError(
            f"nothing is released to {release.environment} yet: deploy a model first "
            "(runbooks/deploy.md)"
        )
    return release.stable


def load_profile(
    root: Path, model: ModelVersion, given: Path | None, *, deploy: DeployParams
) -> tuple[ReferenceProfile, str]:
    """The served model's profile: `given` (the served model's directory), else the store's
    (`profile_sources`, the first found).

    Raises:
        MonitorError: `given` is another model's (during a canary, `models/model` is often the
            canary's: judged against it, production would show a false concept drift); no
            source holds a profile.
    """
    if given is not None:
        _check_served(root, model, given.parent if given.name == PROFILE_FILE else given)
        path = given / PROFILE_FILE if given.is_dir() else given
        return _read_profile(path.read_bytes() if path.is_file() else None, str(path)), str(path)
    sources = profile_sources(model, store=deploy.store, name=deploy.name)
    for uri, member in sources:
        raw = _read_stored(root, uri, member)
        if raw is not None:
            where = uri if member is None else f"{member} in {uri}"
            return _read_profile(raw, where), where
    if model.bundle is None:
        return _read_profile(None, sources[0][0]), sources[0][0]
    raise MonitorError(
        f"no reference profile for bundle {model.version}: its archive {model.model_uri} holds "
        f"no {PROFILE_FILE}, and the model it was exported from ({model.model_hash[:12]}) is "
        f"not in the store at {sources[-1][0]}. Pass --profile with that model's directory "
        "(the one `modelops export --model` was given), or deploy the model to any other "
        "environment once, which publishes it"
    )


def profile_sources(
    model: ModelVersion, *, store: str, name: str
) -> tuple[tuple[str, str | None], ...]:
    """Where the served model's profile is in the store, in the order looked, as (address,
    member of the archive there or None): a model's directory; for an edge bundle, the
    archive's own copy (what its devices bin by), then the directory of the model it was
    exported from (published under the same content hash, so the same bytes)."""
    if model.bundle is None:
        return ((f"{model.model_uri.rstrip('/')}/{PROFILE_FILE}", None),)
    exported_from = model_uri(store, name, model.model_hash)
    return ((model.model_uri, PROFILE_FILE), (f"{exported_from}/{PROFILE_FILE}", None))


def _read_stored(root: Path, uri: str, member: str | None) -> bytes | None:
    """The bytes at `uri` (of `member` in the tar.gz there), None when there are none."""
    try:
        if is_object_store(uri):
            import fsspec

            with fsspec.open(uri, "rb") as handle:
                return _member(handle, member) if member else handle.read()
        local = Path(uri.removeprefix("file://"))
        path = local if local.is_absolute() else root / local
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            return _member(handle, member) if member else handle.read()
    except FileNotFoundError:
        return None
    except (ImportError, ValueError, OSError, tarfile.TarError) as exc:
        raise MonitorError(
            f"cannot read {uri} ({type(exc).__name__}: {exc}): give this job read access "
            "to deploy.store, or pass --profile (the served model's directory)"
        ) from None


def _member(archive: IO[bytes], name: str) -> bytes | None:
    """A file at the root of a tar.gz (None when it has none)."""
    with tarfile.open(fileobj=archive, mode="r:gz") as bundle:
        try:
            found = bundle.extractfile(name)
        except KeyError:
            return None
        return None if found is None else found.read()


def _check_served(root: Path, model: ModelVersion, directory: Path) -> None:
    """Refuse a profile that is not the served model's: its directory must hold that model."""
    if not (directory / "MLmodel").is_file():
        raise MonitorError(
            f"{directory} is not a model directory, so nothing says its profile is the served "
            f"model's ({model.version}): pass the served model's directory, or leave --profile "
            "out to read the profile from the model store"
        )
    found = identify(directory, root=root)
    inputs = found.training_inputs
    if found.model_hash != model.model_hash and not (inputs and inputs == model.training_inputs):
        raise MonitorError(
            f"{directory} holds model {found.model_hash[:12]}, but {model.version} "
            f"({model.model_hash[:12]}) is served: judged against another model's profile, "
            "production would show drift that is not there (during a canary, models/model is "
            "usually the canary). Pass the served model's directory, or leave --profile out to "
            "read it from the model store"
        )


def look(
    params: Params,
    release: Release,
    profile: ReferenceProfile,
    prometheus: Prometheus,
    *,
    profile_source: str,
    at: float,
) -> Look:
    """Judge the last `monitoring.retrain.windows` windows ending at `at` and decide."""
    model = served_model(release)
    retrain = params.monitoring.retrain
    where = selector(params.deploy, release.environment)
    seconds = float(duration_seconds(retrain.window))
    queries = window_queries(where, model.version, retrain.window)
    windows = []
    for back in reversed(range(retrain.windows)):
        end = at - back * seconds
        answers = {name: prometheus.query(query, at=end) for name, query in queries.items()}
        windows.append(to_window(answers, profile, end=end, seconds=seconds))
    age_query = trained_query(where, model.version)
    trained = 0.0 if age_query is None else scalar(prometheus.query(age_query, at=at))
    feedback = where.kind == "pods"
    judged, decision = judge_windows(
        params, profile, windows, at=at, trained_at=trained, feedback=feedback
    )
    labels = params.monitoring.labels
    return Look(
        environment=release.environment,
        model=model,
        profile_source=profile_source,
        at=at,
        window=retrain.window,
        label_delay=labels.delay if labels.expected and feedback else None,
        judged=judged,
        decision=decision,
        queries=queries if age_query is None else {**queries, "trained": age_query},
        prometheus=prometheus.url,
        selector=where,
    )


def judge_windows(
    params: Params,
    profile: ReferenceProfile,
    windows: Sequence[Window],
    *,
    at: float,
    trained_at: float,
    feedback: bool = True,
) -> tuple[tuple[JudgedWindow, ...], Decision]:
    """Each window judged against the profile, and the decision over them (pure): N of the
    last M windows, the latest included, or the model's age (`trained_at`: a Unix time, 0 when
    unknown) past `monitoring.retrain.max_age_days`. Windows are oldest first. Quality is judged
    only where feedback comes back (`monitoring.labels.expected`, and not a batch run)."""
    retrain = params.monitoring.retrain
    thresholds = limits(params)
    dismissals = [Dismissal(d.criterion, d.subject, d.until, d.reason) for d in retrain.dismissed]
    today = dt.datetime.fromtimestamp(at, dt.UTC).date()
    judged = []
    for window in windows:
        findings = judge_drift(profile, window, thresholds)
        if feedback and params.monitoring.labels.expected:
            findings += quality.realized(dict(profile.expected), window, thresholds)
            findings.append(quality.concept_drift(profile.score, window, thresholds))
        judged.append(
            JudgedWindow(
                window=window,
                findings=tuple(dismiss(findings, dismissals, today)),
                estimate=quality.estimate(profile.score, window, confidence=thresholds.confidence),
            )
        )
    decision = decide(
        [j.findings for j in judged],
        breaches=retrain.breaches,
        retrain_on=retrain.retrain_on,
        age_days=(at - trained_at) / 86_400 if trained_at > 0 else None,
        max_age_days=retrain.max_age_days,
    )
    return tuple(judged), decision


def _read_profile(raw: bytes | None, where: str) -> ReferenceProfile:
    if raw is None:
        raise MonitorError(
            f"no reference profile at {where}: the served model was published without one "
            "(retrain and deploy it), or pass --profile (the served model's directory)"
        )
    try:
        return ReferenceProfile.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise MonitorError(f"{where} is not a reference profile ({exc})") from None

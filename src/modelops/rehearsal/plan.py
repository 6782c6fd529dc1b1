"""What a rehearsal runs, decided before anything starts: pure functions, no processes.

A rehearsal is production on one machine, on loopback: a stable and a canary model server, a
Prometheus scraping both (each target labelled with its `track`, as the PodMonitor labels pods
in a cluster), and a bounded traffic generator that replays test rows and sends their truth
back after a label delay. `plan_up` decides all of it from what `modelops up` was asked
(`UpRequest`) and what the project holds; `rehearsal.rehearse` gathers that and starts it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import modelops_contract as contract
import yaml

from modelops.data import Schema
from modelops.errors import RehearsalError
from modelops.io import JSONObject
from modelops.paths import ALERTMANAGER_FILE, RELEASES_DIR
from modelops.releases.state import Canary, Experiment

if TYPE_CHECKING:
    from modelops.rehearsal.experiment import UnitTraffic

LOOPBACK = "127.0.0.1"
MODEL_COPIES = "models"
"""Inside `paths.REHEARSAL_DIR`: released models fetched for the servers, kept between runs
(the rest of that folder is one run's processes and logs)."""
PROCESSES_FILE = "processes.json"
"""The example routes the rehearsal's Alertmanager uses (with receivers that notify nobody)."""
INSTALL_ALERTMANAGER = (
    "no Alertmanager on PATH (`alertmanager`, or Debian's `prometheus-alertmanager`): install "
    "it (Debian/Ubuntu: `sudo apt-get install prometheus-alertmanager`; macOS: `brew install "
    "alertmanager`), or name the binary with ALERTMANAGER=/path/to/alertmanager"
)
INSTALL_PROMETHEUS = (
    "no `prometheus` on PATH: install it (Debian/Ubuntu: `sudo apt-get install prometheus`; "
    "macOS: `brew install prometheus`), or name the binary with PROMETHEUS=/path/to/prometheus, "
    "then run `make up` again"
)
INSTALL_PUSHGATEWAY = (
    "no Pushgateway on PATH (`pushgateway`, or Debian's `prometheus-pushgateway`): install it "
    "(Debian/Ubuntu: `sudo apt-get install prometheus-pushgateway`; macOS: `brew install "
    "pushgateway`), or name the binary with PUSHGATEWAY=/path/to/pushgateway"
)


@dataclass(frozen=True)
class ServerPlan:
    """One model server: its track, model and ports."""

    track: str
    model_dir: Path
    model_version: str
    model_hash: str
    http_port: int
    metrics_port: int
    inject_server_errors: float = 0.0
    """Share of predictions this server fails on purpose (rehearsing a bad canary)."""
    request_log: str = ""
    """Where the server writes its sampled request log (monitoring.request_log.path)."""
    request_log_sample_rate: float = 0.0
    pod: str = ""
    """A replica's own name (its log, its `pod` label); empty: the track names it."""
    experiment: str = ""
    """The `experiment` graph parameter (`modelops_contract.Experiment.to_json`), or empty."""

    @property
    def name(self) -> str:
        """What names its process and log: the pod, else the track."""
        return self.pod or self.track

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def metrics_target(self) -> str:
        return f"{LOOPBACK}:{self.metrics_port}"


@dataclass(frozen=True)
class Shift:
    """Inputs that drift on cue: one feature changed for a while, the rest as they were.

    A numeric feature is multiplied by `factor`; a categorical one gets a category training
    never saw (`SHIFTED_CATEGORY`), so drift and unseen-category alerts can be rehearsed.
    """

    feature: str
    factor: float
    at_seconds: float
    seconds: float


SHIFTED_CATEGORY = "__rehearsal_shift__"


@dataclass(frozen=True)
class TrafficPlan:
    """How long, how fast, how requests split between the tracks, when truth comes back."""

    seconds: float
    requests_per_second: float
    rows_per_request: int
    canary_percent: int
    label_delay_seconds: float
    seed: int = 0
    shift: Shift | None = None
    units: UnitTraffic | None = None
    """An experiment's units (`rehearsal.experiment`): rows carry them, truth may favour one."""

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.seconds <= 24 * 3600:
            problems.append(
                f"--minutes must be above 0 and at most 1440, got {self.seconds / 60:g}"
            )
        if not 0 < self.requests_per_second <= 1000:
            problems.append(
                f"--rate must be from above 0 to 1000, got {self.requests_per_second:g}"
            )
        if not 1 <= self.rows_per_request <= 1000:
            problems.append(f"--rows must be from 1 to 1000, got {self.rows_per_request}")
        if not 0 <= self.canary_percent <= 100:
            problems.append(f"--canary-percent must be from 0 to 100, got {self.canary_percent}")
        if not 0 <= self.label_delay_seconds <= self.seconds:
            problems.append(
                f"--label-delay must be from 0 to the run's length ({self.seconds:g} s), got "
                f"{self.label_delay_seconds:g}"
            )
        shift = self.shift
        if shift is not None and not (
            shift.at_seconds >= 0
            and shift.seconds > 0
            and shift.at_seconds + shift.seconds <= self.seconds
        ):
            problems.append(
                f"the shift ({shift.at_seconds:g} s after the start, for {shift.seconds:g} s) "
                f"must end within the run ({self.seconds:g} s): lower --shift-at or --shift-for, "
                "or raise --minutes"
            )
        if shift is not None and not math.isfinite(shift.factor):
            problems.append(f"the shift's factor must be a finite number, got {shift.factor}")
        if problems:
            raise RehearsalError("; ".join(problems))


@dataclass(frozen=True)
class UpRequest:
    """What `modelops up` was asked: its options, typed (each field is the option's name)."""

    env: str
    minutes: float
    rate: float
    rows: int
    canary_percent: int | None
    """None: the release's weight, followed as it changes (10 without a canary)."""
    canary_errors: float
    label_delay: float
    time_scale: float
    shift: str | None
    """FEATURE=FACTOR, or None for no shift."""
    shift_at: float
    shift_for: float
    prometheus_port: int
    alertmanager_port: int
    stable_port: int
    canary_port: int
    stable_metrics_port: int
    canary_metrics_port: int
    batch_input: str | None = None
    """A batch environment: the table each run scores (None: the prepared test rows)."""
    pushgateway_port: int = 9091
    """A batch environment: where its runs push their figures."""
    units: int | None = None
    """An experiment: how many units to make up (None: the test rows' unit column, if any)."""
    effect: Sequence[str] = ()
    """An experiment: VARIANT=SIZE, a true effect on the KPI for VARIANT."""
    broken_split: Sequence[str] = ()
    """An experiment: VARIANT=SHARE, the share of VARIANT's units the client loses."""

    def __post_init__(self) -> None:
        # argparse gives lists (or None); a request compares and prints the same either way.
        for field in ("effect", "broken_split"):
            object.__setattr__(self, field, tuple(getattr(self, field) or ()))

    @property
    def prometheus_url(self) -> str:
        return f"http://{LOOPBACK}:{self.prometheus_port}"


@dataclass(frozen=True)
class Served:
    """A model directory a server loads, its content hash, and where it came from (in words)."""

    directory: Path
    digest: str
    note: str


@dataclass(frozen=True)
class Rehearsal:
    """Everything `modelops up` starts, decided before anything starts."""

    request: UpRequest
    servers: tuple[ServerPlan, ...]
    notes: tuple[str, ...]
    """Where each server's model came from, in the servers' order."""
    traffic: TrafficPlan
    schema: Schema
    follow: bool
    """The traffic's split follows the release file (no --canary-percent, a release exists)."""
    shadow: bool
    """The second server is a shadow: it gets a copy of every request."""
    experiment: Experiment | None = None
    """The release's running experiment: the servers are replicas of stable serving it."""


def check_request(request: UpRequest, environments: Collection[str]) -> None:
    """Refuse what cannot be rehearsed before anything is fetched or started."""
    if request.env not in environments:
        raise RehearsalError(
            f"--env {request.env} is not one of deploy.environments "
            f"({', '.join(sorted(environments))})"
        )
    if not request.time_scale >= 1:
        raise RehearsalError(f"--time-scale must be at least 1, got {request.time_scale:g}")
    if not 0.0 <= request.canary_errors <= 1.0:
        raise RehearsalError(f"--canary-errors must be from 0 to 1, got {request.canary_errors:g}")


def parse_shift(request: UpRequest, features: Sequence[str]) -> Shift | None:
    """`--shift FEATURE=FACTOR` as a `Shift`, or a refusal naming the model's features."""
    if request.shift is None:
        return None
    feature, equals, factor = request.shift.partition("=")
    try:
        value = float(factor)
    except ValueError:
        value = math.nan
    if not equals or feature not in features or math.isnan(value):
        raise RehearsalError(
            f"--shift must be FEATURE=FACTOR with one of the model's features "
            f"({', '.join(features)}) and a number, got {request.shift!r} (e.g. --shift "
            f"{features[0]}=3)"
        )
    return Shift(feature, value, request.shift_at, request.shift_for)


def plan_up(
    request: UpRequest,
    *,
    schema: Schema,
    canary: Canary | None,
    released: bool,
    stable: Served,
    trial: Served,
) -> Rehearsal:
    """The servers, the traffic and what to say about them: `stable` and `trial` are the models
    found for the release's stable and canary (the workspace's where there is none), `canary`
    the release's canary, `released` whether the environment has a release at all."""
    trial_note = trial.note
    if canary is None:
        trial_note = f"the same model: {request.env} runs no canary"
    elif canary.shadow:
        trial_note += ", a shadow: it gets a copy of every request (restart after promoting it)"
    percent = request.canary_percent
    if percent is None:
        percent = canary.weight if canary is not None else 10
    traffic = TrafficPlan(
        seconds=request.minutes * 60,
        requests_per_second=request.rate,
        rows_per_request=request.rows,
        canary_percent=percent,
        label_delay_seconds=request.label_delay,
        shift=parse_shift(request, schema.features),
    )
    # A shadow gets a copy of every request (its answers go nowhere) and its own track label.
    shadow = canary is not None and canary.shadow
    servers = (
        _server("stable", stable, request.stable_port, request.stable_metrics_port),
        _server(
            "shadow" if shadow else "canary",
            trial,
            request.canary_port,
            request.canary_metrics_port,
            inject_server_errors=request.canary_errors,
        ),
    )
    return Rehearsal(
        request=request,
        servers=servers,
        notes=(stable.note, trial_note),
        traffic=traffic,
        schema=schema,
        follow=request.canary_percent is None and released,
        shadow=shadow,
    )


def _server(
    track: str,
    served: Served,
    http_port: int,
    metrics_port: int,
    *,
    inject_server_errors: float = 0,
) -> ServerPlan:
    return ServerPlan(
        track=track,
        model_dir=served.directory,
        model_version=served.digest[:12],
        model_hash=served.digest,
        http_port=http_port,
        metrics_port=metrics_port,
        inject_server_errors=inject_server_errors,
    )


class TrafficServer(TypedDict):
    track: str
    url: str


class TrafficConfig(TypedDict):
    """What the traffic process reads besides its `TrafficPlan` (see `traffic_config`)."""

    servers: list[TrafficServer]
    rows_file: str
    features: list[str]
    label: str
    ledger: str
    release_file: str | None
    mirror: str | None


def traffic_config(
    rehearsal: Rehearsal, *, rows_file: Path, ledger: Path, release_file: Path
) -> TrafficConfig:
    """What the traffic process reads: where to send, which rows, where to log what it sent,
    and which release file's split to follow (none for a fixed split or a shadow)."""
    schema = rehearsal.schema
    return {
        "servers": [{"track": s.track, "url": s.url} for s in rehearsal.servers],
        "rows_file": str(rows_file),
        "features": list(schema.features),
        "label": schema.label,
        "ledger": str(ledger),
        "release_file": str(release_file) if rehearsal.follow and not rehearsal.shadow else None,
        "mirror": "shadow" if rehearsal.shadow else None,
    }


def to_text(
    rehearsal: Rehearsal,
    pids: Sequence[int],
    *,
    state: str,
    heading: Sequence[str] = (),
    shown_queries: Sequence[tuple[str, str]] | None = None,
) -> str:
    """What `modelops up` prints once everything runs: the processes, each address, what
    to expect, and queries to paste (`state`: the state folder as shown to the user).

    `heading` replaces the first line and adds lines after the addresses (an experiment's
    own); `shown_queries` replaces the queries by track.
    """
    request, traffic, schema = rehearsal.request, rehearsal.traffic, rehearsal.schema
    prometheus = request.prometheus_url
    first = (
        f"up: {len(pids)} processes (PIDs {', '.join(str(pid) for pid in pids)}); "
        f"traffic for {request.minutes:g} min at {request.rate:g} requests/s, "
        f"{traffic.canary_percent}% to the canary, truth after {request.label_delay:g} s"
    )
    lines = [
        heading[0] if heading else first,
        f"  Prometheus  {prometheus}  (targets: {prometheus}/targets, alerts: {prometheus}/alerts;"
        f" {request.env}'s rules, windows divided by {request.time_scale:g})",
        f"  Alertmanager http://{LOOPBACK}:{request.alertmanager_port}  "
        f"(routes of {ALERTMANAGER_FILE})",
        *heading[1:],
    ]
    shift = traffic.shift
    if shift is not None:
        categorical = shift.feature in schema.categorical
        how = "a category training never saw" if categorical else f"x{shift.factor:g}"
        expect = "ModelopsFeatureDrift" + (" and ModelopsUnseenCategories" if categorical else "")
        lines.append(
            f"  shift       {shift.feature}: {how}, from {shift.at_seconds:g} s for "
            f"{shift.seconds:g} s: {expect} should fire, then resolve"
        )
    if request.canary_errors:
        lines.append(
            f"  errors      the canary fails {request.canary_errors:.0%} of predictions: "
            f"`modelops canary analyze --env {request.env} --prometheus {prometheus}` rolls it "
            "back"
        )
    if rehearsal.follow:
        lines.append(
            f"  split       follows {RELEASES_DIR}/{request.env}.yaml as the canary is promoted"
        )
    for server, note in zip(rehearsal.servers, rehearsal.notes, strict=True):
        lines.append(
            f"  {server.name:<10}  {server.url}  model {server.model_version} ({note}); "
            f"metrics http://{LOOPBACK}:{server.metrics_port}/prometheus"
        )
    lines += [
        f"  logs        {state}/*.log, what was sent: {state}/traffic.jsonl",
        f"Try in Prometheus ({prometheus}/graph):",
    ]
    feature = schema.numeric[0] if schema.numeric else schema.features[0]
    if shown_queries is None:
        shown_queries = queries(feature=feature, positive_label=schema.positive_label)
    for meaning, query in shown_queries:
        lines.append(f"  # {meaning}\n  {query}")
    lines.append("Stop everything with: make down")
    return "\n".join(lines)


def prometheus_config(
    servers: Sequence[ServerPlan],
    *,
    scrape_seconds: float = 1.0,
    namespace: str = "rehearsal",
    rule_files: Sequence[str] = (),
    alertmanager: str | None = None,
    itself: str | None = None,
) -> str:
    """A Prometheus configuration scraping each server's metrics port, labelled as in a pod
    (track, container, and the namespace the rendered rules select), with rules and the
    Alertmanager to send alerts to when given."""
    models: dict[str, object] = {
        "job_name": "modelops",
        "metrics_path": "/prometheus",
        "static_configs": [
            {
                "targets": [server.metrics_target],
                "labels": {
                    contract.TRACK: server.track,
                    "container": "classifier",
                    contract.NAMESPACE: namespace,
                    **({"pod": server.pod} if server.pod else {}),
                },
            }
            for server in servers
        ],
    }
    return _prometheus_config(
        [models],
        scrape_seconds=scrape_seconds,
        rule_files=rule_files,
        alertmanager=alertmanager,
        itself=itself,
    )


def pushgateway_prometheus_config(
    pushgateway: str,
    *,
    scrape_seconds: float = 1.0,
    rule_files: Sequence[str] = (),
    alertmanager: str | None = None,
    itself: str | None = None,
) -> str:
    """A Prometheus configuration scraping a Pushgateway as production's does: with
    `honor_labels`, so the pushed `job` and `namespace` (the ones the batch rules select) stay."""
    gateway: dict[str, object] = {
        "job_name": "pushgateway",
        "honor_labels": True,
        "static_configs": [{"targets": [pushgateway]}],
    }
    return _prometheus_config(
        [gateway],
        scrape_seconds=scrape_seconds,
        rule_files=rule_files,
        alertmanager=alertmanager,
        itself=itself,
    )


def _prometheus_config(
    scrape_configs: list[dict[str, object]],
    *,
    scrape_seconds: float,
    rule_files: Sequence[str],
    alertmanager: str | None,
    itself: str | None,
) -> str:
    interval = f"{max(int(scrape_seconds * 1000), 100)}ms"
    if itself:  # its own series: what rule evaluation costs (prometheus_rule_group_*)
        scrape_configs.append({"job_name": "prometheus", "static_configs": [{"targets": [itself]}]})
    config: dict[str, object] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": scrape_configs,
    }
    if rule_files:
        config["rule_files"] = list(rule_files)
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return yaml.safe_dump(config, sort_keys=False)


def alertmanager_config(example: str) -> str:
    """The example Alertmanager configuration with its routes and inhibitions as they are, and
    receivers that notify nobody (alerts show in its UI and API): a rehearsal pages no one."""
    config: JSONObject = yaml.safe_load(example)
    config["receivers"] = [{"name": receiver["name"]} for receiver in config["receivers"]]
    return yaml.safe_dump(config, sort_keys=False)


def server_parameters(
    server: ServerPlan, *, threshold: float, business_value: Mapping[str, float] | None
) -> list[dict[str, str]]:
    """The graph parameters a SeldonDeployment gives this model (as the template renders them)."""
    parameters = [
        {"name": "model_uri", "type": "STRING", "value": str(server.model_dir)},
        {"name": "model_version", "type": "STRING", "value": server.model_version},
        {"name": "model_hash", "type": "STRING", "value": server.model_hash},
        {"name": "threshold", "type": "FLOAT", "value": str(threshold)},
    ]
    if business_value is not None:
        value = json.dumps(dict(business_value), sort_keys=True)
        parameters.append({"name": "business_value", "type": "STRING", "value": value})
    if server.request_log_sample_rate > 0:
        parameters.append({"name": "request_log", "type": "STRING", "value": server.request_log})
        rate = str(server.request_log_sample_rate)
        parameters.append({"name": "request_log_sample_rate", "type": "FLOAT", "value": rate})
    if server.inject_server_errors:
        share = str(server.inject_server_errors)
        parameters.append({"name": "inject_server_errors", "type": "FLOAT", "value": share})
    if server.experiment:
        parameters.append({"name": "experiment", "type": "STRING", "value": server.experiment})
    return parameters


def queries(*, feature: str, positive_label: str) -> list[tuple[str, str]]:
    """Ready-to-paste PromQL for what the rehearsal shows, each with what it answers."""
    positive = f'class="{positive_label}"'
    caught = f'actual="{positive_label}",predicted="{positive_label}"'
    requests, predictions = contract.REQUESTS.total, contract.PREDICTIONS.total
    feedback, value = contract.FEEDBACK_ROWS.total, contract.BUSINESS_VALUE.total
    return [
        (
            "requests per second by track and outcome",
            f"sum by (track, outcome) (rate({requests}[1m]))",
        ),
        (
            "positive rate by track",
            f"sum by (track) (rate({predictions}{{{positive}}}[5m])) "
            f"/ sum by (track) (rate({predictions}[5m]))",
        ),
        (
            "p95 server latency by track",
            "histogram_quantile(0.95, sum by (track, le) "
            f"(rate({contract.REQUEST_DURATION.bucket}[1m])))",
        ),
        (
            f"bins of {feature} by track",
            "sum by (track, bin) "
            f'(increase({contract.FEATURE_BIN.total}{{feature="{feature}"}}[5m]))',
        ),
        (
            "realized recall by track (from feedback)",
            f"sum by (track) ({feedback}{{{caught}}}) / sum by (track) "
            f'({feedback}{{actual="{positive_label}"}})',
        ),
        (
            "net business value by track",
            f'sum by (track) ({value}{{sign="{contract.GAIN}"}}) '
            f'- sum by (track) ({value}{{sign="{contract.COST}"}})',
        ),
    ]

"""What a rehearsal runs, decided before anything starts: pure functions, no processes.

A rehearsal is production on one machine, on loopback: a stable and a canary model server, a
Prometheus scraping both (each target labelled with its `track`, as the PodMonitor labels pods
in a cluster), and a bounded traffic generator that replays test rows and sends their truth
back after a label delay.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import modelops_contract as contract
import yaml

from modelops.errors import RehearsalError

LOOPBACK = "127.0.0.1"
MODEL_COPIES = "models"
"""Inside `paths.REHEARSAL_DIR`: released models fetched for the servers, kept between runs
(the rest of that folder is one run's processes and logs)."""
PROCESSES_FILE = "processes.json"
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
    interval = f"{max(int(scrape_seconds * 1000), 100)}ms"
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": "modelops",
                "metrics_path": "/prometheus",
                "static_configs": [
                    {
                        "targets": [server.metrics_target],
                        "labels": {
                            contract.TRACK: server.track,
                            "container": "classifier",
                            contract.NAMESPACE: namespace,
                        },
                    }
                    for server in servers
                ],
            }
        ],
    }
    if itself:  # its own series: what rule evaluation costs (prometheus_rule_group_*)
        config["scrape_configs"].append(
            {"job_name": "prometheus", "static_configs": [{"targets": [itself]}]}
        )
    if rule_files:
        config["rule_files"] = list(rule_files)
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return yaml.safe_dump(config, sort_keys=False)


def alertmanager_config(example: str) -> str:
    """The example Alertmanager configuration with its routes and inhibitions as they are, and
    receivers that notify nobody (alerts show in its UI and API): a rehearsal pages no one."""
    config: dict[str, Any] = yaml.safe_load(example)
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

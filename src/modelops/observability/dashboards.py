"""Grafana dashboards as code: four per environment, and the ConfigMaps Grafana loads them from.

- service: traffic by track and outcome, server error ratio, latency quantiles, client refusals;
- model: score distribution, positive rate, score and feature PSI, missing and unseen values,
  stable beside canary, each against the reference profile where it has one;
- quality: realized recall and precision against the expected ones, labels, confusion cells,
  business value;
- slo: error budget remaining, burn rates at the alerts' windows, the SLI over the SLO window.

Pure functions: names, windows and targets in, Grafana's JSON model (plain dicts) out; the
builders live behind `monitoring/grafana.py`. Every query names its namespace literally, so a
dashboard shows one environment. The only template variables in queries are `$track` (stable,
canary or both, matched with `=~`) and Grafana's `$__rate_interval`; `panel_queries` gives each
query with concrete values for them, to run against a real Prometheus. The series and the
recording rules read here are named by the telemetry contract (`modelops_contract`); the rules'
names hold the objectives' windows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Self

import modelops_contract as contract
import yaml
from modelops_contract import records

from modelops import yamltext
from modelops.io import JSONObject
from modelops.observability.grafana import (
    EXPECTED,
    GRID,
    Panel,
    Query,
    Section,
    bars_panel,
    dashboard,
    gauge_panel,
    heatmap_panel,
    stat_panel,
    timeseries_panel,
)
from modelops.observability.objects import ConfigMap, Metadata
from modelops.observability.recording import SERVICE_WINDOW

KINDS = ("service", "model", "quality", "slo")
TRACKS = (contract.STABLE, contract.CANARY)
BURN_WINDOWS = ("5m", "1h", "6h", "1d", "3d")
BURN_FACTORS = (1.0, 3.0, 6.0, 14.4)
"""The burn rates the SLO alerts fire at (alerts.py BURN_RATES), drawn as lines."""
UID_MAX = 40
"""Grafana refuses longer dashboard UIDs."""
RATE_INTERVAL = "5m"
"""What `concrete` puts for Grafana's `$__rate_interval`."""
OPEN_OPEN = "\\u007b\\u007b"
"""`{{` as JSON escapes: what `dashboard_json` writes for it."""
_WINDOW = re.compile(r"^[1-9][0-9]*[smhdwy]$")

TRACK = 'track=~"$track"'
BY_VERSION = "max by (track, model_version)"
"""ML series are kept by track and model version: the legend says which model a line is."""
VERSION = "{{track}} {{model_version}}"


@dataclass(frozen=True)
class DashboardWindows:
    """The window of each objective (`monitoring.objectives.<name>.window`): rule names hold them.

    Field names are the objectives' names, so `from_objectives` reads them all from the params.
    """

    feature_drift: str = "1h"
    score_drift: str = "1h"
    missing_values: str = "1h"
    unseen_categories: str = "1h"
    recall: str = "7d"
    precision: str = "7d"
    business_value: str = "7d"
    availability: str = "28d"
    latency: str = "28d"

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, str) or not _WINDOW.match(value):
                raise ValueError(
                    f"window {field.name}={value!r} is not a Prometheus duration such as 1h or 28d"
                )

    @classmethod
    def from_objectives(cls, objectives: object) -> Self:
        """The windows of `monitoring.objectives` (anything with `<name>.window` attributes)."""
        return cls(**{f.name: str(getattr(objectives, f.name).window) for f in fields(cls)})


def dashboards(
    *,
    environment: str,
    namespace: str,
    deploy_name: str,
    slo_targets: Mapping[str, float],
    windows: DashboardWindows,
) -> list[JSONObject]:
    """The four dashboards of one environment, in `KINDS` order, as Grafana JSON models.

    Args:
        environment: the environment's name (in titles, tags and UIDs).
        namespace: the Kubernetes namespace every query is filtered by.
        deploy_name: the SeldonDeployment's name (in titles, tags and UIDs).
        slo_targets: target per SLO (`availability`, `latency`), e.g. 0.999; each gets a row
            of the slo dashboard.
        windows: the objectives' windows, which the recording rules' names hold.

    Raises:
        ValueError: an SLO target outside (0, 1), or an SLO that `windows` has no window for.
    """
    for slo, target in slo_targets.items():
        if slo not in ("availability", "latency"):
            raise ValueError(f"unknown SLO {slo!r}: the SLOs are availability and latency")
        if not 0 < target < 1:
            raise ValueError(f"SLO {slo} target {target} is not between 0 and 1, e.g. 0.999")
    ctx = _Context(namespace, windows, dict(slo_targets))
    content = {"service": _service, "model": _model, "quality": _quality, "slo": _slo}
    boards = []
    for kind in KINDS:
        tags = ["modelops", f"deploy:{deploy_name}", f"env:{environment}", f"kind:{kind}"]
        boards.append(
            dashboard(
                uid=dashboard_uid(deploy_name, environment, kind),
                title=f"{deploy_name} ({environment}): {kind}",
                tags=tags,
                sibling_tags=tags[:3],
                sections=content[kind](ctx),
                choices=[] if kind == "slo" else [("track", TRACKS)],
            )
        )
    return boards


def dashboard_uid(deploy_name: str, environment: str, kind: str) -> str:
    """A stable UID of at most 40 characters: readable names, then a hash that keeps it unique."""
    digest = hashlib.sha256(f"{deploy_name}\0{environment}\0{kind}".encode()).hexdigest()[:8]
    suffix = f"-{kind}-{digest}"
    stem = re.sub(r"[^a-z0-9]+", "-", f"{deploy_name}-{environment}".lower())
    return stem[: UID_MAX - len(suffix)].strip("-") + suffix


def config_maps(dashboards: Iterable[JSONObject], *, namespace: str) -> list[ConfigMap]:
    """One ConfigMap per dashboard for Grafana's dashboard sidecar (label `grafana_dashboard`).

    Named `<deploy_name>-dashboard-<kind>` (both read from the tags `dashboards` gives), in
    `namespace`; the key `<uid>.json` holds `dashboard_json`, so a render is byte-identical.
    """
    maps: list[ConfigMap] = []
    for board in dashboards:
        deploy_name, kind = _tag(board, "deploy"), _tag(board, "kind")
        metadata: Metadata = {
            "name": f"{deploy_name}-dashboard-{kind}",
            "namespace": namespace,
            "labels": {
                "grafana_dashboard": "1",
                "app.kubernetes.io/name": deploy_name,
                "app.kubernetes.io/managed-by": "modelops",
            },
        }
        data = {f"{board['uid']}.json": dashboard_json(board)}
        maps.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
    return maps


def config_maps_yaml(maps: Iterable[ConfigMap]) -> str:
    """The ConfigMaps as one YAML stream (`dashboards.yaml`): keys in order, and each JSON held
    as a literal block, so a change to a dashboard reads as a line diff."""
    return yaml.dump_all(
        [dict(m) for m in maps], Dumper=_LiteralDumper, sort_keys=False, width=1_000_000
    )


class _LiteralDumper(yamltext.DUMPER):  # type: ignore[misc]
    """Writes multi-line strings as literal blocks (`|`)."""


def _literal(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    )


_LiteralDumper.add_representer(str, _literal)


def dashboard_json(board: Mapping[str, object]) -> str:
    """The dashboard as stable text: sorted keys, two-space indent, a final newline.

    Legends name labels as `{{track}}`; the text spells `{{` as JSON escapes (`OPEN_OPEN`, the
    same JSON once parsed), so a rendered manifest holds no `{{` to be taken for a template
    left unrendered (the render's check, and Helm or any templating a user adds).
    """
    text = json.dumps(board, sort_keys=True, indent=2, ensure_ascii=False)
    # Indented JSON never opens two objects on one line: every `{{` is inside a string.
    return text.replace("{{", OPEN_OPEN) + "\n"


def panel_queries(dashboard: JSONObject) -> list[tuple[str, str]]:
    """(panel title, concrete PromQL) of every target of every panel, rows' panels included."""
    return [
        (str(panel.get("title", "")), concrete(str(target.get("expr", ""))))
        for panel in _panels(dashboard.get("panels") or [])
        for target in panel.get("targets") or []
    ]


def concrete(expr: str) -> str:
    """`expr` as Prometheus takes it: every track (`.*`), `$__rate_interval` as `RATE_INTERVAL`.

    Raises:
        ValueError: a template variable is left that has no deterministic value.
    """
    text = expr.replace('"$track"', '".*"').replace("$__rate_interval", RATE_INTERVAL)
    if "$" in text:
        raise ValueError(f"query has a template variable with no concrete value: {expr}")
    return text


# --- the four dashboards --------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    namespace: str
    windows: DashboardWindows
    slo_targets: Mapping[str, float]

    def sel(self, *matchers: str) -> str:
        """A label selector: the namespace, then `matchers`."""
        return "{" + ", ".join((f'namespace="{self.namespace}"', *matchers)) + "}"

    def versions(self, metric: str, *matchers: str) -> str:
        """`metric` of the selected tracks, one series per track and model version."""
        return f"{BY_VERSION} ({metric}{self.sel(TRACK, *matchers)})"


def _eq(label: str, value: str) -> str:
    """A label matcher `label="value"`."""
    return f'{label}="{value}"'


def _expected(ctx: _Context, metric: str) -> Query:
    """The reference profile's value of `metric`, per track and model version (dashed)."""
    expr = ctx.versions(contract.REFERENCE_METRIC.name, _eq("metric", metric))
    return Query(expr, f"{EXPECTED} {VERSION}")


def _per_track(
    ctx: _Context,
    title: str,
    queries: Callable[[str], list[Query]],
    *,
    unit: str,
    description: str = "",
) -> list[Panel]:
    """The same time series for each track, side by side; `queries(selector)` gives targets."""
    return [
        timeseries_panel(
            f"{title}: {track}",
            queries(ctx.sel(_eq("track", track))),
            unit=unit,
            description=description,
            width=GRID // len(TRACKS),
        )
        for track in TRACKS
    ]


def _service(ctx: _Context) -> list[Section]:
    rate = records.REQUESTS_RATE.at(SERVICE_WINDOW)
    predict = ctx.sel(TRACK, _eq("endpoint", contract.PREDICT))
    failed = ctx.sel(
        TRACK, _eq("endpoint", contract.PREDICT), _eq("outcome", contract.SERVER_ERROR)
    )
    total = f"sum by (track) ({rate}{predict})"
    errors = f"sum by (track) ({rate}{failed})"
    budget = [1 - ctx.slo_targets["availability"]] if "availability" in ctx.slo_targets else []
    refused = ctx.sel(TRACK, f'outcome!~"{contract.OK}|{contract.SERVER_ERROR}"')
    latency = [
        Query(
            f"max by (track) ({family.at(SERVICE_WINDOW)}{ctx.sel(TRACK)})",
            f"{{{{track}}}} p{q}",
        )
        for q, family in records.REQUEST_DURATION_QUANTILES.items()
    ]
    ok = ctx.sel(TRACK, _eq("outcome", contract.OK))
    rows = f"rate({contract.ROWS.total}{ok}[$__rate_interval])"
    telemetry = f"rate({contract.TELEMETRY_ERRORS.total}{ctx.sel(TRACK)}[$__rate_interval])"
    traffic = Query(f"sum by (track, outcome) ({rate}{predict})", "{{track}} {{outcome}}")
    return [
        Section(
            "Traffic",
            [
                timeseries_panel(
                    "Predict requests per second by track and outcome", [traffic], unit="reqps"
                ),
                timeseries_panel(
                    "Server error ratio by track",
                    [Query(f"({errors} or 0 * {total}) / {total}", "{{track}}")],
                    unit="percentunit",
                    lines=budget,
                    description="Share of predict requests that failed with a server error; "
                    "the line is the availability SLO's error budget (1 - target).",
                ),
            ],
        ),
        Section(
            "Latency and refusals",
            [
                timeseries_panel("Predict latency p50, p95, p99 by track", latency, unit="s"),
                timeseries_panel(
                    "Client refusals by reason",
                    [
                        Query(
                            f"sum by (track, endpoint, outcome) ({rate}{refused})",
                            "{{track}} {{endpoint}} {{outcome}}",
                        )
                    ],
                    unit="reqps",
                    description="Requests refused for the client's fault (bad input), by reason.",
                ),
                timeseries_panel(
                    "Rows per second by endpoint",
                    [Query(f"sum by (track, endpoint) ({rows})", "{{track}} {{endpoint}}")],
                    unit="rowsps",
                ),
                timeseries_panel(
                    "Telemetry errors per second",
                    [Query(f"sum by (track) ({telemetry})", "{{track}}")],
                    unit="short",
                    description="Requests answered but not counted: while this is above zero, "
                    "the other panels undercount.",
                ),
            ],
        ),
    ]


def _model(ctx: _Context) -> list[Section]:
    w = ctx.windows
    fd, sd, mv, uc = w.feature_drift, w.score_drift, w.missing_values, w.unseen_categories

    def scores(track: str) -> Query:
        selector = ctx.sel(_eq("track", track))
        expr = f"sum by (le) (rate({contract.SCORE.bucket}{selector}[$__rate_interval]))"
        return Query(expr, "{{le}}")

    feature_rows = records.FEATURE_DRIFT.rows.at(fd)
    rows = [
        Query(ctx.versions(records.SCORE_DRIFT.rows.at(sd)), f"{VERSION} scores ({sd})"),
        Query(
            f"min by (track, model_version) ({feature_rows}{ctx.sel(TRACK)})",
            f"{VERSION} fewest of a feature ({fd})",
        ),
    ]
    return [
        Section(
            "Scores",
            [
                stat_panel(
                    "Model age",
                    Query(ctx.versions(records.MODEL_AGE), VERSION),
                    unit="d",
                    decimals=1,
                    width=4,
                ),
                *[heatmap_panel(f"Score distribution: {t}", scores(t), width=10) for t in TRACKS],
                timeseries_panel(
                    f"Positive rate over {fd} vs expected",
                    [
                        Query(ctx.versions(records.POSITIVE_RATE.at(fd)), VERSION),
                        _expected(ctx, contract.PREDICTED_POSITIVE_RATE),
                    ],
                    unit="percentunit",
                    width=GRID // 3,
                ),
                timeseries_panel(
                    f"Score PSI over {sd}",
                    [Query(ctx.versions(records.SCORE_DRIFT.psi.at(sd)), VERSION)],
                    unit="short",
                    width=GRID // 3,
                    description="Population stability of the score against the profile: "
                    "0.1 is moderate, 0.25 large.",
                ),
                timeseries_panel(
                    "Rows in the drift windows",
                    rows,
                    unit="short",
                    width=GRID // 3,
                    description="How many rows each PSI is computed from: with few rows, "
                    "identical distributions still give a PSI of about (bins - 1) / rows.",
                ),
            ],
        ),
        Section(
            "Features: stable beside canary",
            [
                *_per_track(
                    ctx,
                    f"Feature PSI over {fd}",
                    lambda s: [
                        Query(
                            f"max by (feature) ({records.FEATURE_DRIFT.psi.at(fd)}{s})",
                            "{{feature}}",
                        )
                    ],
                    unit="short",
                ),
                *_per_track(
                    ctx,
                    f"Missing values over {mv} vs expected",
                    lambda s: [
                        Query(
                            f"max by (feature) ({records.FEATURE_MISSING.at(mv)}{s})",
                            "{{feature}}",
                        ),
                        Query(
                            f"max by (feature) ({contract.REFERENCE_MISSING.name}{s})",
                            f"{EXPECTED} {{{{feature}}}}",
                        ),
                    ],
                    unit="percentunit",
                ),
                *_per_track(
                    ctx,
                    f"Unseen categories over {uc}",
                    lambda s: [
                        Query(
                            f"max by (feature) ({records.FEATURE_UNSEEN.at(uc)}{s})",
                            "{{feature}}",
                        )
                    ],
                    unit="percentunit",
                    description="Share of a categorical feature's values never seen in "
                    "training (expected: none).",
                ),
            ],
        ),
    ]


def _quality(ctx: _Context) -> list[Section]:
    w = ctx.windows
    value = contract.BUSINESS_VALUE.total
    net = " - ".join(
        f"sum by (track) (increase({value}{ctx.sel(TRACK, _eq('sign', sign))}[{w.business_value}]))"
        for sign in contract.SIGNS
    )
    realized = [
        timeseries_panel(
            f"{metric.capitalize()} over {window} vs expected",
            [
                Query(ctx.versions(records.QUALITY[metric].ratio.at(window)), VERSION),
                _expected(ctx, metric),
            ],
            unit="percentunit",
        )
        for metric, window in (("recall", w.recall), ("precision", w.precision))
    ]
    labels = f"rate({contract.LABELS.total}{ctx.sel(TRACK)}[$__rate_interval])"

    def cells(track: str) -> Query:
        selector = ctx.sel(_eq("track", track))
        expr = f"sum by (cell) (increase({contract.FEEDBACK_ROWS.total}{selector}[{w.recall}]))"
        return Query(expr, "{{cell}}")

    return [
        Section(
            "Realized against expected",
            [
                *realized,
                timeseries_panel(
                    f"Labels received over {w.recall}",
                    [Query(ctx.versions(records.LABELS.at(w.recall)), VERSION)],
                    unit="short",
                ),
                timeseries_panel(
                    "Labels per second by class",
                    [Query(f"sum by (track, class) ({labels})", "{{track}} {{class}}")],
                    unit="short",
                ),
            ],
        ),
        Section(
            f"Confusion cells over {w.recall}",
            [
                bars_panel(f"Confusion cells over {w.recall}: {t}", cells(t), unit="short")
                for t in TRACKS
            ],
        ),
        Section(
            "Business value",
            [
                timeseries_panel(
                    f"Value per label over {w.business_value}",
                    [
                        Query(
                            ctx.versions(records.BUSINESS_VALUE_PER_LABEL.at(w.business_value)),
                            VERSION,
                        )
                    ],
                    unit="short",
                    description="Mean value of a labelled prediction (monitoring.business); "
                    "no data when no business values are set.",
                ),
                timeseries_panel(
                    f"Net value over {w.business_value} (gain - cost)",
                    [Query(net, "{{track}}")],
                    unit="short",
                    description="Value accumulated over the window: gains minus costs.",
                ),
            ],
        ),
    ]


def _slo(ctx: _Context) -> list[Section]:
    sections = []
    for slo in sorted(ctx.slo_targets):
        target, window = ctx.slo_targets[slo], getattr(ctx.windows, slo)
        selector = ctx.sel(_eq("slo", slo))
        burn = [
            Query(f"{records.SLI_ERROR.at(w)}{selector} / (1 - {target!r})", w)
            for w in BURN_WINDOWS
        ]
        remaining = Query(f"{records.SLO_ERROR_BUDGET_REMAINING}{selector}", slo)
        sli = Query(f"1 - {records.SLI_ERROR.at(window)}{selector}", slo)
        events = Query(f"{records.SLI_EVENTS.at(window)}{selector}", slo)
        budget_steps = [(None, "red"), (0.0, "orange"), (0.25, "green")]
        name = slo.capitalize()
        sections.append(
            Section(
                f"{name}: target {target!r} over {window}",
                [
                    gauge_panel(
                        f"{name}: error budget remaining",
                        remaining,
                        unit="percentunit",
                        steps=budget_steps,
                    ),
                    stat_panel(
                        f"{name}: SLI over {window}",
                        sli,
                        unit="percentunit",
                        steps=[(None, "red"), (target, "green")],
                        decimals=3,
                        width=4,
                    ),
                    stat_panel(f"{name}: requests over {window}", events, unit="short", width=4),
                    timeseries_panel(
                        f"{name}: burn rate (error ratio / error budget)",
                        burn,
                        unit="short",
                        lines=BURN_FACTORS,
                        description="At 1 the budget lasts exactly the SLO window; the alerts "
                        "page at 14.4 (1h) and 6 (6h), open a ticket at 3 (1d) and 1 (3d).",
                    ),
                    timeseries_panel(
                        f"{name}: error budget remaining over time",
                        [remaining],
                        unit="percentunit",
                        width=GRID,
                    ),
                ],
            )
        )
    return sections


def _panels(panels: Iterable[JSONObject]) -> Iterator[JSONObject]:
    """Every panel, with the panels of collapsed rows (which hold their own)."""
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def _tag(board: JSONObject, key: str) -> str:
    for tag in board.get("tags", []):
        if isinstance(tag, str) and tag.startswith(f"{key}:"):
            return tag.removeprefix(f"{key}:")
    raise ValueError(
        f"dashboard {board.get('uid')!r} has no {key}: tag: build it with dashboards()"
    )

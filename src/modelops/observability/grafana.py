"""The only module that imports grafana-foundation-sdk: panels and dashboards from PromQL.

Grafana Labs' builders (pinned to the Grafana 10.1 schema, which every later Grafana imports)
produce the dashboard model; `dashboard` returns it as plain JSON-ready dicts. Each panel reads
the dashboard's `datasource` variable; series whose legend starts with `expected ` (values of
the reference profile) are drawn dashed, so a line and its expectation read as a pair.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from grafana_foundation_sdk.builders import bargauge, gauge, heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from modelops.io import JSONObject

GRID = 24
"""Grafana's grid is 24 columns wide."""
HEIGHT = 8
EXPECTED = "expected"
"""Legend prefix of a reference value; such series are dashed."""
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")

Panel = Builder[model.Panel]
Steps = Sequence[tuple[float | None, str]]
"""Threshold steps: (from value, colour); the first starts at minus infinity (None)."""


class Query(NamedTuple):
    """One PromQL target of a panel and how its series are named in the legend."""

    expr: str
    legend: str


class Section(NamedTuple):
    """A row of a dashboard: its title and its panels, laid out left to right."""

    title: str
    panels: Sequence[Panel]


def dashboard(
    *,
    uid: str,
    title: str,
    tags: Sequence[str],
    sibling_tags: Sequence[str],
    sections: Iterable[Section],
    choices: Sequence[tuple[str, Sequence[str]]] = (),
) -> JSONObject:
    """A read-only dashboard (it is provisioned from git) as Grafana's JSON model.

    Args:
        uid: the dashboard's UID.
        title: its title.
        tags: its tags.
        sibling_tags: the dashboards carrying all of these are linked from a dropdown.
        sections: its rows.
        choices: (name, values) of multi-select variables whose "All" is the regex `.*`.
    """
    builder = (
        builders.Dashboard(title)
        .uid(uid)
        .tags(list(tags))
        .readonly()
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(
            builders.DashboardLink("Dashboards")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(list(sibling_tags))
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(
            builders.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
        )
    )
    for name, values in choices:
        builder = builder.with_variable(_choice(name, values))
    for section in sections:
        builder = builder.with_row(builders.Row(section.title))
        for panel in section.panels:
            builder = builder.with_panel(panel)
    board: JSONObject = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    # The builders leave panel ids unset: number them in order, so links and edits are stable.
    for number, panel in enumerate(board["panels"], start=1):
        panel["id"] = number
    return board


def timeseries_panel(
    title: str,
    queries: Sequence[Query],
    *,
    unit: str,
    lines: Sequence[float] = (),
    description: str = "",
    width: int = GRID // 2,
) -> Panel:
    """Lines over time; `lines` are drawn as dashed thresholds (e.g. the alerts' limits)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .unit(unit)
        .span(width)
        .height(HEIGHT)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .override_by_regexp(
            f"^{EXPECTED} .*",
            [model.DynamicConfigValue("custom.lineStyle", {"fill": "dash", "dash": [10, 10]})],
        )
    )
    if lines:
        dashed = common_builders.GraphThresholdsStyleConfig().mode(
            common.GraphTresholdsStyleMode.DASHED
        )
        steps = [(None, "green"), *((line, "red") for line in lines)]
        panel = panel.thresholds(_thresholds(steps)).thresholds_style(dashed)
    return panel


def heatmap_panel(title: str, query: Query, *, width: int = GRID // 4) -> Panel:
    """A Prometheus histogram's buckets over time, as its `le` bounds cut them."""
    return (
        heatmap.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(_query(query, 0).format(PromQueryFormat.HEATMAP))
        .span(width)
        .height(HEIGHT)
        .calculate(False)
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE))
        .show_tooltip()
        .show_legend()
    )


def stat_panel(
    title: str,
    query: Query,
    *,
    unit: str,
    steps: Steps = ((None, "blue"),),
    decimals: int | None = None,
    width: int = GRID // 6,
) -> Panel:
    """The last value of each series, coloured by `steps`."""
    panel = (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .targets(_targets([query], instant=True))
        .unit(unit)
        .span(width)
        .height(HEIGHT)
        .reduce_options(_last())
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .thresholds(_thresholds(steps))
    )
    return panel if decimals is None else panel.decimals(decimals)


def gauge_panel(title: str, query: Query, *, unit: str, steps: Steps, width: int = 4) -> Panel:
    """The last value on a dial from 0 to 1."""
    return (
        gauge.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .targets(_targets([query], instant=True))
        .unit(unit)
        .min(0)
        .max(1)
        .span(width)
        .height(HEIGHT)
        .reduce_options(_last())
        .thresholds(_thresholds(steps))
    )


def bars_panel(title: str, query: Query, *, unit: str, width: int = GRID // 2) -> Panel:
    """One horizontal bar per series, at its last value."""
    return (
        bargauge.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .targets(_targets([query], instant=True))
        .unit(unit)
        .span(width)
        .height(HEIGHT)
        .reduce_options(_last())
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
    )


def _query(query: Query, index: int, *, instant: bool = False) -> prometheus.Dataquery:
    """A Prometheus target, ref id A, B, ... by `index`."""
    target = prometheus.Dataquery().expr(query.expr).legend_format(query.legend)
    target = target.ref_id(chr(ord("A") + index))
    return target.instant() if instant else target


def _targets(
    queries: Sequence[Query], *, instant: bool = False
) -> list[Builder[variants.Dataquery]]:
    return [_query(query, index, instant=instant) for index, query in enumerate(queries)]


def _last() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def _thresholds(steps: Steps) -> builders.ThresholdsConfig:
    return (
        builders.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value, color) for value, color in steps])
    )


def _choice(name: str, values: Sequence[str]) -> builders.CustomVariable:
    """A multi-select of `values`, all selected by default; "All" is `.*` for `=~"$name"`."""
    return (
        builders.CustomVariable(name)
        .label(name.capitalize())
        .values(",".join(values))
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )

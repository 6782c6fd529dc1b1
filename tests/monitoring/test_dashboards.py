"""The Grafana dashboards: stable UIDs, byte-identical renders, and queries that read only series
the contract names (raw server series or recording rules), each in the environment's namespace."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from modelops_contract import SERIES, records

from modelops.deploy.schemas import SchemaSource
from modelops.deploy.validate import validate
from modelops.observability.dashboards import (
    BURN_WINDOWS,
    KINDS,
    DashboardWindows,
    concrete,
    config_maps,
    config_maps_yaml,
    dashboard_json,
    dashboards,
    panel_queries,
)

NAMESPACE = "churn-prod"
TARGETS = {"availability": 0.999, "latency": 0.99}
CUSTOM = DashboardWindows(
    feature_drift="2h",
    score_drift="3h",
    missing_values="30m",
    unseen_categories="4h",
    recall="14d",
    precision="10d",
    business_value="21d",
    availability="30d",
    latency="35d",
)

# The contract's raw series (the server's, and the reference gauges from its profile), as
# Prometheus exposes them.
RAW = {name for series in SERIES for name in series.samples}
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def contract_rules(w: DashboardWindows) -> set[str]:
    """The contract's recording rules, named with the objectives' windows."""
    slo_windows = {*SLO_WINDOWS, w.availability, w.latency}
    quality = {w.recall, w.precision, w.business_value}
    return {
        *(records.SLI_ERROR.at(x) for x in slo_windows),
        *(records.SLI_EVENTS.at(x) for x in slo_windows),
        records.SLO_ERROR_BUDGET_REMAINING,
        records.FEATURE_DRIFT.psi.at(w.feature_drift),
        records.FEATURE_DRIFT.rows.at(w.feature_drift),
        records.SCORE_DRIFT.psi.at(w.score_drift),
        records.SCORE_DRIFT.rows.at(w.score_drift),
        records.FEATURE_MISSING.at(w.missing_values),
        records.FEATURE_UNSEEN.at(w.unseen_categories),
        records.POSITIVE_RATE.at(w.feature_drift),
        *(records.RECALL.ratio.at(x) for x in quality),
        *(records.PRECISION.ratio.at(x) for x in quality),
        *(records.LABELS.at(x) for x in quality),
        *(records.BUSINESS_VALUE_PER_LABEL.at(x) for x in quality),
        records.MODEL_AGE,
        records.REQUESTS_RATE.at("5m"),
        *(family.at("5m") for family in records.REQUEST_DURATION_QUANTILES.values()),
    }


def build(
    environment: str = "production",
    deploy_name: str = "churn",
    windows: DashboardWindows = DashboardWindows(),  # noqa: B008 (frozen, so shared safely)
    namespace: str = NAMESPACE,
) -> list[dict[str, Any]]:
    return dashboards(
        environment=environment,
        namespace=namespace,
        deploy_name=deploy_name,
        slo_targets=TARGETS,
        windows=windows,
    )


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels that show data (not the rows that group them)."""
    return [p for p in board["panels"] if p["type"] != "row"]


def all_queries(windows: DashboardWindows = DashboardWindows()) -> list[tuple[str, str]]:  # noqa: B008
    return [query for board in build(windows=windows) for query in panel_queries(board)]


METRIC = re.compile(r"(?<![A-Za-z0-9_:])([A-Za-z_:][A-Za-z0-9_:]*)\s*\{")
MODELOPS = re.compile(r"(?<![A-Za-z0-9_:])(modelops[_:][A-Za-z0-9_:]*)")


def test_given_two_environments_and_names_that_run_together_when_built_then_every_uid_differs():
    # "a-b" in "c" and "a" in "b-c" give the same readable stem: the hash keeps them apart.
    builds = [
        build(environment, deploy_name)
        for environment in ("staging", "production")
        for deploy_name in ("churn", "fraud")
    ] + [build("c", "a-b"), build("b-c", "a")]
    uids = [board["uid"] for boards in builds for board in boards]
    assert len(uids) == len(set(uids)) == 6 * len(KINDS), uids
    for uid in uids:
        assert re.fullmatch(r"[a-z0-9-]{1,40}", uid), f"{uid!r} is not a valid Grafana UID"


def test_a_long_deploy_name_still_gives_uids_of_at_most_40_characters_that_name_their_kind():
    boards = build("production-eu-west-1", "customer-churn-gradient-boosting-classifier")
    for kind, board in zip(KINDS, boards, strict=True):
        assert len(board["uid"]) <= 40, board["uid"]
        assert f"-{kind}-" in board["uid"], f"the UID {board['uid']} does not name {kind}"
    assert len({board["uid"] for board in boards}) == len(KINDS)


def test_the_same_inputs_give_the_same_uids_and_byte_identical_json_and_config_maps():
    first, second = build(), build()
    assert [b["uid"] for b in first] == [b["uid"] for b in second]
    assert [dashboard_json(b) for b in first] == [dashboard_json(b) for b in second]
    dump = [
        yaml.safe_dump_all(config_maps(boards, namespace=NAMESPACE)) for boards in (first, second)
    ]
    assert dump[0] == dump[1]


def test_there_are_four_dashboards_in_order_each_tagged_with_its_kind_and_titled():
    boards = build()
    assert [b["tags"][-1] for b in boards] == [f"kind:{kind}" for kind in KINDS]
    for board in boards:
        assert {"modelops", "deploy:churn", "env:production"} <= set(board["tags"])
        assert board["editable"] is False, "provisioned from git: edits in Grafana would be lost"


def test_every_panel_has_at_least_one_target_and_each_target_a_query():
    for board in build():
        for panel in panels(board):
            assert panel["targets"], f"{board['uid']}: panel {panel['title']!r} has no target"
            for target in panel["targets"]:
                assert target["expr"].strip(), f"{panel['title']!r} has an empty query"
                assert target["refId"], f"{panel['title']!r} has a target without a refId"


def test_panel_ids_are_unique_and_panels_fit_the_grid():
    for board in build():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{board['uid']} repeats panel ids {ids}"
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{panel['title']!r} overflows the grid"


def test_every_selector_of_every_query_filters_by_the_environments_namespace():
    for title, expr in all_queries():
        selectors = re.findall(r"\{([^{}]*)\}", expr)
        assert selectors, f"{title!r}: no label selector in {expr}"
        for selector in selectors:
            assert f'namespace="{NAMESPACE}"' in selector, f"{title!r}: {{{selector}}} in {expr}"
        assert expr.count("namespace=") == len(selectors), f"{title!r}: {expr}"


def test_no_query_names_another_namespace():
    boards = build(namespace="staging-ml")
    for board in boards:
        for title, expr in panel_queries(board):
            assert NAMESPACE not in expr, f"{title!r} still reads {NAMESPACE}: {expr}"
            assert 'namespace="staging-ml"' in expr, f"{title!r}: {expr}"


@pytest.mark.parametrize("windows", [DashboardWindows(), CUSTOM], ids=["default", "custom"])
def test_every_metric_is_a_raw_series_or_a_recording_rule_of_the_contract(windows):
    known = RAW | contract_rules(windows)
    used = set()
    for title, expr in all_queries(windows):
        names = set(MODELOPS.findall(expr))
        assert names, f"{title!r} reads no modelops series: {expr}"
        # Every series read is selected with braces, so the namespace filter applies to it.
        assert names <= set(METRIC.findall(expr)), f"{title!r}: a series without a selector"
        unknown = names - known
        assert not unknown, f"{title!r} reads {sorted(unknown)}, not in the contract: {expr}"
        used |= names
    # Every dashboard section the brief asks for reads its series.
    for name in (
        "modelops:requests:rate5m",
        "modelops_score_bucket",
        f"modelops:feature_psi:{windows.feature_drift}",
        f"modelops:score_psi:{windows.score_drift}",
        f"modelops:feature_missing:ratio_{windows.missing_values}",
        f"modelops:feature_unseen:ratio_{windows.unseen_categories}",
        f"modelops:recall:ratio_{windows.recall}",
        f"modelops:precision:ratio_{windows.precision}",
        "modelops_feedback_rows_total",
        "modelops_business_value_total",
        "modelops:slo_error_budget_remaining:ratio",
        f"modelops:sli_error:ratio_rate{windows.availability}",
    ):
        assert name in used, f"no panel reads {name}"


def test_rule_names_follow_the_windows_given():
    names = {n for _, expr in all_queries(CUSTOM) for n in MODELOPS.findall(expr)}
    assert not any(n.endswith(("_1h", ":1h", "_7d", ":7d", "rate28d")) for n in names), names
    assert {"modelops:feature_psi:2h", "modelops:recall:ratio_14d"} <= names


def test_burn_rates_are_drawn_at_the_alerts_windows_divided_by_each_slos_budget():
    slo = build()[KINDS.index("slo")]
    queries = panel_queries(slo)
    for name, target in TARGETS.items():
        burn = [e for t, e in queries if t.startswith(f"{name.capitalize()}: burn rate")]
        assert len(burn) == len(BURN_WINDOWS), burn
        for window, expr in zip(BURN_WINDOWS, burn, strict=True):
            assert f"modelops:sli_error:ratio_rate{window}{{" in expr
            assert f'slo="{name}"' in expr, expr
            assert expr.endswith(f"/ (1 - {target!r})"), expr


def test_the_model_dashboard_shows_stable_beside_canary():
    model = build()[KINDS.index("model")]
    titles = [p["title"] for p in panels(model)]
    for title in ("Score distribution", "Feature PSI over 1h", "Missing values over 1h"):
        pair = [t for t in titles if t.startswith(title)]
        assert [t.rsplit(": ", 1)[1] for t in pair] == ["stable", "canary"], titles
    for title, expr in panel_queries(model):
        if title.endswith(": canary"):
            assert 'track="canary"' in expr, f"{title!r}: {expr}"
            assert "stable" not in expr, f"{title!r}: {expr}"


def test_a_query_with_the_track_variable_is_on_a_dashboard_that_has_it():
    for board in build():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        exprs = [t["expr"] for p in panels(board) for t in p["targets"]]
        if any("$track" in expr for expr in exprs):
            track = variables["track"]
            assert (track["includeAll"], track["allValue"]) == (True, ".*")
            assert all('track=~"$track"' in e for e in exprs if "$track" in e), exprs
        for panel in panels(board):
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_panel_queries_are_concrete_and_cover_every_target():
    for board in build():
        queries = panel_queries(board)
        assert len(queries) == sum(len(p["targets"]) for p in panels(board))
        for title, expr in queries:
            assert "$" not in expr, f"{title!r}: {expr}"
    assert concrete('rate(x{track=~"$track"}[$__rate_interval])') == 'rate(x{track=~".*"}[5m])'


def test_concrete_refuses_a_variable_it_has_no_value_for():
    with pytest.raises(ValueError, match="no concrete value"):
        concrete('up{pod=~"$pod"}')


def test_config_maps_are_one_per_dashboard_for_grafanas_sidecar(tmp_path: Path):
    boards = build()
    maps = config_maps(boards, namespace=NAMESPACE)
    assert [m["metadata"]["name"] for m in maps] == [f"churn-dashboard-{kind}" for kind in KINDS]
    for board, config_map in zip(boards, maps, strict=True):
        assert (config_map["apiVersion"], config_map["kind"]) == ("v1", "ConfigMap")
        metadata = config_map["metadata"]
        assert metadata["namespace"] == NAMESPACE
        assert metadata["labels"] == {
            "grafana_dashboard": "1",
            "app.kubernetes.io/name": "churn",
            "app.kubernetes.io/managed-by": "modelops",
        }
        ((key, text),) = config_map["data"].items()
        assert key == f"{board['uid']}.json"
        assert json.loads(text) == board
        assert text == dashboard_json(board)
        assert "{{" not in text, "a rendered manifest must not look like an unrendered template"
        # Far below Kubernetes' 1 MiB and the 256 KiB that client-side apply can annotate.
        assert len(text.encode()) < 256 * 1024
    # Each is a valid Kubernetes ConfigMap (the strict core schema; no download needed).
    offline = SchemaSource(folders=(tmp_path,), cache=tmp_path, base_url=None, required=False)
    result = validate({"dashboards.yaml": config_maps_yaml(maps)}, schemas=offline)
    assert result.problems == (), result.problems


def test_config_maps_refuse_a_dashboard_not_built_here():
    with pytest.raises(ValueError, match="no deploy: tag"):
        config_maps([{"uid": "x", "tags": []}], namespace=NAMESPACE)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"availability": 1.0}, "not between 0 and 1"),
        ({"availability": 0.0}, "not between 0 and 1"),
        ({"throughput": 0.9}, "unknown SLO"),
    ],
)
def test_a_bad_slo_is_refused_with_what_to_use(targets, message):
    with pytest.raises(ValueError, match=message):
        dashboards(
            environment="e", namespace="n", deploy_name="d", slo_targets=targets,
            windows=DashboardWindows(),
        )  # fmt: skip


def test_a_window_that_is_not_a_prometheus_duration_is_refused():
    with pytest.raises(ValueError, match="feature_drift='1 hour'"):
        DashboardWindows(feature_drift="1 hour")


def test_windows_are_read_from_objectives_by_name():
    names = [
        "feature_drift", "score_drift", "missing_values", "unseen_categories", "recall",
        "precision", "business_value", "availability", "latency",
    ]  # fmt: skip
    objectives = SimpleNamespace(
        **{n: SimpleNamespace(window=f"{i + 1}h") for i, n in enumerate(names)}
    )
    windows = DashboardWindows.from_objectives(objectives)
    assert (windows.feature_drift, windows.latency) == ("1h", "9h")


def test_dashboard_json_is_sorted_and_indented_and_spells_double_braces_as_escapes():
    board = {"b": {"legendFormat": "{{track}} {{{odd}}}"}, "a": [{}]}
    text = dashboard_json(board)
    assert json.loads(text) == board
    assert "{{" not in text
    assert text.index('"a"') < text.index('"b"')
    assert text.endswith("}\n")
    assert '\n  "a": [' in text, text


def test_the_config_maps_yaml_holds_each_dashboard_as_a_literal_block_and_reads_back():
    maps = config_maps(build(), namespace=NAMESPACE)
    text = config_maps_yaml(maps)
    assert list(yaml.safe_load_all(text)) == maps
    assert text.count("kind: ConfigMap") == len(KINDS)
    assert ".json: |\n    {\n" in text, "the JSON is not a literal block"
    assert "{{" not in text
    assert text == config_maps_yaml(config_maps(build(), namespace=NAMESPACE))

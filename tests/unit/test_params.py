"""params.yaml validation: valid files load, every kind of mistake names the key and the fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from modelops.errors import ParamsError
from modelops.params import (
    HistGradientBoostingParams,
    LogisticRegressionParams,
    Params,
    duration_seconds,
    label_text,
    load_params,
    params_schema,
    parse_params,
)
from tests.support import REPO_ROOT, pod_environment, template_params


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    params = copy.deepcopy(template_params())
    node = params
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return params


def _error(raw: Any) -> str:
    with pytest.raises(ParamsError) as caught:
        parse_params(raw)
    return str(caught.value)


def test_given_the_template_params_when_loaded_then_they_are_valid_and_frozen() -> None:
    params = load_params(REPO_ROOT / "params.yaml")
    assert isinstance(params.train.model, HistGradientBoostingParams)
    assert params.prepare.columns.label == "churned"
    with pytest.raises(ValueError, match="frozen"):
        params.train.seed = 1  # type: ignore[misc]


def test_given_a_minimal_file_when_parsed_then_defaults_fill_the_rest() -> None:
    params = parse_params(
        {
            "prepare": {"columns": {"label": "y"}},
            "train": {"model": {"kind": "logistic_regression"}},
        }
    )
    assert params.prepare.source == "synthetic"
    assert params.prepare.split.strategy == "stratified"
    assert isinstance(params.train.model, LogisticRegressionParams)
    assert params.evaluate.threshold == 0.5


def test_given_a_typo_in_a_key_then_the_error_names_it_and_suggests_the_right_one() -> None:
    raw = template_params()
    raw["prepare"]["split"]["stratgy"] = raw["prepare"]["split"].pop("strategy")
    message = _error(raw)
    assert "prepare.split.stratgy: unknown key (did you mean 'strategy'?)" in message
    assert "allowed here: seed, strategy, test_fraction" in message


def test_given_a_typo_inside_the_model_then_the_allowed_keys_are_those_of_that_model_kind() -> None:
    raw = template_params()
    raw["train"]["model"]["learning_rat"] = raw["train"]["model"].pop("learning_rate")
    message = _error(raw)
    assert "train.model.learning_rat: unknown key" in message
    assert "did you mean 'learning_rate'?" in message
    assert "max_leaf_nodes" in message, "lists the keys the chosen model accepts"


def test_given_an_unknown_section_then_the_top_level_keys_are_listed() -> None:
    message = _error(_with(("evalute",), {"threshold": 0.4}))
    assert "evalute: unknown key (did you mean 'evaluate'?)" in message


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("train", "model", "learning_rate"), -0.1, "greater than 0"),
        (("prepare", "split", "test_fraction"), 1.5, "less than 1"),
        (("prepare", "split", "strategy"), "random", "'stratified' or 'time'"),
        (("prepare", "synthetic", "rows"), "many", "valid integer"),
        (("evaluate", "threshold"), 0, "greater than 0"),
        (("train", "model", "kind"), "xgboost", "hist_gradient_boosting"),
    ],
)
def test_given_a_bad_value_then_the_error_names_the_key_and_what_is_allowed(
    path: tuple[str, ...], value: Any, expected: str
) -> None:
    message = _error(_with(path, value))
    assert ".".join(path[:2]) in message, message
    assert expected in message, message


def test_given_a_time_split_without_timestamp_then_it_is_refused_with_the_fix() -> None:
    raw = _with(("prepare", "split", "strategy"), "time")
    raw["prepare"]["columns"]["timestamp"] = None
    assert "needs columns.timestamp" in _error(raw)


def test_given_a_column_with_two_roles_then_it_is_refused() -> None:
    raw = _with(("prepare", "columns", "numeric"), ["age", "churned"])
    assert "'churned' is label and numeric" in _error(raw)


def test_given_a_missing_required_key_then_it_is_named() -> None:
    raw = template_params()
    del raw["prepare"]["columns"]["label"]
    assert "prepare.columns.label: required key is missing" in _error(raw)


def test_given_a_file_that_is_not_a_mapping_then_the_error_says_so() -> None:
    assert "expected a mapping" in _error(["prepare"])


def test_given_invalid_yaml_then_the_error_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "params.yaml"
    broken.write_text("prepare:\n  source: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params\.yaml: not valid YAML"):
        load_params(broken)


def test_given_no_params_file_then_the_error_says_where_to_run(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="file not found; run from the project root"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "1"), (1.0, "1"), ("1", "1"), (True, "True"), (2.5, "2.5"), ("yes", "yes")],
)
def test_label_text_gives_one_spelling_per_class(value: object, text: str) -> None:
    assert label_text(value) == text


def test_given_a_numeric_positive_label_then_it_is_stored_as_text() -> None:
    params = parse_params(_with(("prepare", "columns", "positive_label"), 1))
    assert params.prepare.columns.positive_label == "1"


def test_the_json_schema_describes_every_section() -> None:
    schema = params_schema()
    assert set(schema["properties"]) == set(Params.model_fields)
    assert "hist_gradient_boosting" in str(schema), "model kinds are in the schema"


def test_given_root_as_the_containers_uid_then_the_error_names_the_key() -> None:
    message = _error(_with(("deploy", "run_as_user"), 0))
    assert "deploy.run_as_user: Input should be greater than or equal to 1 (got 0)" in message


def test_given_a_bad_initializer_quantity_then_the_error_names_the_key() -> None:
    message = _error(_with(("deploy", "storage_initializer_resources"), {"cpu": "lots"}))
    assert "deploy.storage_initializer_resources.cpu: String should match pattern" in message


def test_given_the_removed_min_available_then_the_error_says_why_and_what_to_do() -> None:
    message = _error(_with(("deploy", "environments", "staging", "min_available"), 1))
    assert "deploy.environments.staging.min_available: removed: each track" in message
    assert "maxUnavailable 1" in message
    assert "delete this key (got 1)" in message


def test_the_removed_min_available_is_neither_in_the_schema_nor_in_the_dump() -> None:
    environment = params_schema()["$defs"]["RealtimeEnvironmentParams"]["properties"]
    assert "min_available" not in environment
    dumped = load_params(REPO_ROOT / "params.yaml").model_dump()
    assert "min_available" not in dumped["deploy"]["environments"]["staging"]


def test_given_the_removed_canary_inputs_max_psi_then_the_error_points_at_gates_drift() -> None:
    # Given a params.yaml from before the inputs took the drift gate's limits
    message = _error(_with(("canary", "inputs", "max_psi"), 0.1))
    # Then the error names the key, where its limits live now, and what to do
    assert "canary.inputs.max_psi: removed: the inputs are judged with the pull-request" in message
    assert "gates.drift.max_categorical_drift" in message
    assert "delete this key (got 0.1)" in message
    inputs = params_schema()["$defs"]["InputsCriterion"]["properties"]
    assert "max_psi" not in inputs
    assert "max_psi" not in load_params(REPO_ROOT / "params.yaml").model_dump()["canary"]["inputs"]


def test_shadow_first_is_off_unless_asked_for_and_documented_in_the_schema() -> None:
    params = load_params(REPO_ROOT / "params.yaml")
    assert pod_environment(params, "production").shadow_first is False
    environment = params_schema()["$defs"]["RealtimeEnvironmentParams"]["properties"]
    assert environment["shadow_first"]["default"] is False
    assert "shadow predictor on mirrored traffic" in environment["shadow_first"]["description"]
    on = parse_params(_with(("deploy", "environments", "production", "shadow_first"), True))
    assert pod_environment(on, "production").shadow_first is True


def test_given_shadow_first_with_the_direct_strategy_then_the_error_names_the_key_and_fix() -> None:
    # Given staging (strategy direct) asking for a shadow stage, when parsed, then the error
    # names the key and both ways out: a canary strategy, or no shadow.
    message = _error(_with(("deploy", "environments", "staging", "shadow_first"), True))
    assert "deploy.environments.staging.shadow_first: shadow_first needs strategy canary" in message
    assert "this environment's is direct" in message
    assert "Set strategy: canary, or shadow_first: false" in message
    off = parse_params(_with(("deploy", "environments", "staging", "shadow_first"), False))
    assert pod_environment(off, "staging").shadow_first is False, "false is fine with direct"


def test_the_target_is_seldon_unless_set_and_its_schema_states_each_licence() -> None:
    params = load_params(REPO_ROOT / "params.yaml")
    assert {pod_environment(params, n).target for n in ("staging", "production")} == {"seldon"}
    target = params_schema()["$defs"]["RealtimeEnvironmentParams"]["properties"]["target"]
    assert target["enum"] == ["seldon", "kserve"]
    assert target["default"] == "seldon"
    assert "Business Source License" in target["description"]
    assert "Apache-2.0, a CNCF project" in target["description"]
    on = parse_params(_with(("deploy", "environments", "production", "target"), "kserve"))
    assert pod_environment(on, "production").target == "kserve"


def test_given_an_unknown_target_then_the_error_names_the_key_and_the_allowed_values() -> None:
    message = _error(_with(("deploy", "environments", "production", "target"), "knative"))
    assert (
        "deploy.environments.production.target: Input should be 'seldon' or 'kserve' "
        "(got 'knative')"
    ) in message


def test_given_a_kserve_environment_with_shadow_first_then_it_is_refused_saying_why() -> None:
    # Given production on KServe asking for a shadow stage, when parsed, then the refusal names
    # the key, says KServe cannot mirror (so a shadow has nothing to be judged on), and gives
    # both ways out: no shadow stage, or Seldon.
    raw = _with(("deploy", "environments", "production", "target"), "kserve")
    raw["deploy"]["environments"]["production"]["shadow_first"] = True
    message = _error(raw)
    assert "deploy.environments.production.shadow_first: target kserve cannot run a shadow" in (
        message
    )
    assert "has no way to mirror requests" in message
    assert "a canary at trafficPercent 0 gets no requests at all" in message
    assert "Set shadow_first: false" in message
    assert "or target: seldon" in message
    raw["deploy"]["environments"]["production"]["shadow_first"] = False
    assert pod_environment(parse_params(raw), "production").target == "kserve"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([], "deploy.network_policy.ingress_namespaces: Tuple should have at least 1 item"),
        (["Istio_System"], "deploy.network_policy.ingress_namespaces.0: String should match"),
    ],
    ids=["empty", "not a namespace name"],
)
def test_given_bad_network_policy_namespaces_then_the_error_names_the_key(
    value: list[str], expected: str
) -> None:
    assert expected in _error(_with(("deploy", "network_policy", "ingress_namespaces"), value))


def test_the_csv_section_defaults_to_sniffing_utf8_with_a_decimal_point() -> None:
    csv = parse_params(template_params()).prepare.csv
    assert (csv.delimiter, csv.decimal, csv.encoding) == ("auto", ".", "utf-8")


@pytest.mark.parametrize(("written", "delimiter"), [("tab", "\t"), ("\\t", "\t"), (";", ";")])
def test_a_delimiter_can_be_written_as_users_write_it(written: str, delimiter: str) -> None:
    params = parse_params(_with(("prepare", "csv"), {"delimiter": written}))
    assert params.prepare.csv.delimiter == delimiter


@pytest.mark.parametrize(
    ("csv", "expected"),
    [
        ({"delimiter": ":"}, "prepare.csv.delimiter: Input should be 'auto', ',', ';'"),
        ({"decimal": ","}, "decimal ',' cannot also be the delimiter"),
        ({"encoding": "utf9"}, "prepare.csv.encoding: unknown text encoding 'utf9'"),
        ({"delimeter": ";"}, "prepare.csv.delimeter: unknown key (did you mean 'delimiter'?)"),
    ],
)
def test_a_bad_csv_setting_names_the_key_and_what_is_allowed(
    csv: dict[str, str], expected: str
) -> None:
    raw = _with(("prepare", "csv"), {"delimiter": ",", **csv} if "decimal" in csv else csv)
    assert expected in _error(raw)


@pytest.mark.parametrize(
    ("written", "value"),
    [("yes", True), ("on", True), ("no", False), ("off", False), ("true", True), ('"yes"', "yes")],
)
def test_a_positive_label_written_as_a_yaml_boolean_stays_a_boolean(
    tmp_path: Path, written: str, value: object
) -> None:
    # Given params.yaml text as a user types it (YAML 1.1 reads unquoted yes/on as true), when
    # loaded, then the boolean is kept, so the data step can match it to 'yes'/'on'/'true'/1.
    path = tmp_path / "params.yaml"
    path.write_text(
        "prepare:\n  columns:\n    label: subscribed\n"
        f"    positive_label: {written}\n"
        "train:\n  model:\n    kind: logistic_regression\n"
    )
    assert load_params(path).prepare.columns.positive_label == value


def test_the_business_value_is_one_number_per_outcome_and_not_all_zero() -> None:
    business = parse_params(template_params()).monitoring.business
    assert business is not None
    assert business.server_value()["true_positive"] == 120.0
    zero = {"true_positive": 0, "false_positive": 0}
    assert "monitoring.business: every value is 0: give what a caught positive" in _error(
        _with(("monitoring", "business"), zero)
    )
    message = _error(_with(("monitoring", "business"), {"true_positive": "a lot"}))
    assert "monitoring.business.true_positive: Input should be a valid number" in message
    assert "monitoring.business.false_positive: required key is missing" in message
    assert parse_params(_with(("monitoring", "business"), None)).monitoring.business is None


def test_a_scrape_interval_is_a_prometheus_duration() -> None:
    message = _error(_with(("monitoring", "scrape_interval"), "15 seconds"))
    assert "monitoring.scrape_interval: String should match pattern" in message


def test_monitoring_objectives_are_validated_with_the_fix_in_the_message() -> None:
    objectives = ("monitoring", "objectives")
    latency = _error(_with((*objectives, "latency"), {"target": 0.99, "threshold_seconds": 0.2}))
    assert "0.2 s is not a bound of the server's latency histogram" in latency
    assert "nearest: 0.25" in latency
    short = _error(_with((*objectives, "availability"), {"target": 0.999, "window": "1d"}))
    assert "shorter than the slowest burn-rate alert's 3d" in short
    assert "monitoring.objectives.availability.target" in _error(
        _with((*objectives, "availability"), {"target": 1.5})
    )
    assert "monitoring.objectives.feature_drift.window" in _error(
        _with((*objectives, "feature_drift"), {"window": "90 minutes"})
    )
    assert "monitoring.objectives.recall.min_labels" in _error(
        _with((*objectives, "recall"), {"min_labels": 3})
    )
    assert "monitoring.objectives.score_drift.wndow" in _error(
        _with((*objectives, "score_drift"), {"wndow": "1h"})
    )


def test_quality_windows_must_outlast_the_label_delay_unless_no_labels_come() -> None:
    late = _with(("monitoring", "labels"), {"expected": True, "delay": "7d"})
    assert "objectives.recall.window 7d is not longer than labels.delay 7d" in _error(late)
    none = _with(("monitoring", "labels"), {"expected": False, "delay": "7d"})
    assert parse_params(none).monitoring.labels.expected is False


def test_durations_are_read_in_seconds() -> None:
    assert [duration_seconds(d) for d in ("5m", "1h", "1d", "2w")] == [300, 3600, 86400, 1209600]


def test_the_template_params_stay_valid_after_dvc_rewrites_them(tmp_path: Path) -> None:
    # `dvc exp run -S key=value` rewrites params.yaml and drops quotes: a value that is a
    # string only when quoted ("off", "yes", "1") would change type under it.
    from dvc.utils.serialize import modify_yaml

    from modelops.params import load_params

    path = tmp_path / "params.yaml"
    path.write_text((REPO_ROOT / "params.yaml").read_text())
    with modify_yaml(str(path)) as data:
        data["train"]["model"]["learning_rate"] = 0.05
    model = load_params(path).train.model
    assert isinstance(model, HistGradientBoostingParams)
    assert model.learning_rate == 0.05
    assert load_params(path).model_dump(exclude={"train"}) == load_params(
        REPO_ROOT / "params.yaml"
    ).model_dump(exclude={"train"}), "only the value set changed"

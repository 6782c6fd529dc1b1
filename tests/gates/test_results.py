"""Gate status and verdict rules (pure), and the catalogue agreeing with params.yaml."""

from __future__ import annotations

import json
import typing

import pytest

from modelops.deploy.gated import check_committed
from modelops.errors import ModelopsError, UngatedModelError
from modelops.gates import registry
from modelops.gates.results import (
    CheckRecord,
    GateResult,
    GatesRecord,
    gate_status,
    gates_document,
    read_gates,
    read_record,
    verdict,
)
from modelops.identity import ModelIdentity
from modelops.params import DataCheck, DriftCheck, GatesParams, ModelCheck


def _check(status: str) -> CheckRecord:
    return CheckRecord("c", "C", "test", "cond", "value", status)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["pass", "pass"], "pass"),
        (["pass", "fail"], "fail"),
        (["pass", "error"], "fail"),
        (["pass", "timeout"], "fail"),
        (["pass", "not_applicable", "off"], "pass"),
        (["not_applicable", "off"], "skipped"),
        ([], "skipped"),
    ],
)
def test_a_gate_fails_closed_on_any_failure_error_or_timeout(
    statuses: list[str], expected: str
) -> None:
    assert gate_status([_check(s) for s in statuses]) == expected


def test_an_enforced_failure_blocks_and_a_warn_mode_failure_only_warns() -> None:
    gates = [
        GateResult("data", "enforce", "pass"),
        GateResult("drift", "warn", "fail"),
        GateResult("model", "enforce", "fail"),
        GateResult("champion", "enforce", "skipped"),
    ]
    outcome = verdict(gates)
    assert (outcome.status, outcome.blocking, outcome.warnings) == ("fail", ("model",), ("drift",))
    assert verdict(gates[:2]).status == "warn"
    assert verdict([gates[0], gates[3]]).status == "pass"
    assert verdict([GateResult("data", "off", "off")]).status == "pass"


def _unsure(*, leans_fail: bool) -> CheckRecord:
    return CheckRecord(
        "label_correlation",
        "Feature-label correlation",
        "train vs test",
        "no feature predicts the label alone beyond PPS 0.9",
        "'refund': PPS 0.958 [0.860, 0.989] on 455 rows",
        "inconclusive",
        leans_fail=leans_fail,
    )


def test_the_headline_counts_what_passed_and_what_the_data_could_not_decide() -> None:
    passed = GateResult("data", "enforce", "pass", (_check("pass"), _check("pass")))
    assert verdict([passed]).headline == "Safe to merge: 2 checks passed"
    unsure = GateResult("drift", "enforce", "pass", (_check("pass"), _unsure(leans_fail=False)))
    outcome = verdict([passed, unsure])
    assert outcome.status == "pass"
    assert outcome.headline == "Safe to merge: 3 checks passed, 1 inconclusive (too little data)"
    assert "every gate passed" not in outcome.headline
    off = GateResult("model", "off", "off", (_unsure(leans_fail=True),))
    assert verdict([passed, off]).headline == "Safe to merge: 2 checks passed", "off is not counted"


def test_an_inconclusive_check_leaning_toward_failing_needs_review() -> None:
    leaning = GateResult("drift", "enforce", "pass", (_check("pass"), _unsure(leans_fail=True)))
    outcome = verdict([GateResult("data", "enforce", "pass", (_check("pass"),)), leaning])
    assert outcome.status == "warn"
    assert outcome.headline == (
        "Needs review: 1 inconclusive check(s) lean toward failing: Feature-label correlation "
        "(drift); 2 checks passed, 1 inconclusive (too little data)"
    )
    assert outcome.warnings == ("drift",)
    blocked = verdict([leaning, GateResult("model", "enforce", "fail", (_check("fail"),))])
    assert blocked.status == "fail", "a failure still blocks"
    assert blocked.warnings == ("drift",)


def test_the_gates_document_round_trips_in_a_fixed_order() -> None:
    gates = [
        GateResult("champion", "enforce", "skipped", notes=("no main",), context={"k": "v"}),
        GateResult("data", "enforce", "pass", (_check("pass"), _unsure(leans_fail=True))),
    ]
    document = gates_document(gates)
    assert [g["name"] for g in document["gates"]] == ["data", "champion"]
    assert document["verdict"]["status"] == "warn"
    assert read_gates(document) == (gates[1], gates[0])
    older = json.loads(json.dumps(document))  # written before checks carried `leans_fail`
    for check in older["gates"][0]["checks"]:
        del check["leans_fail"]
    assert read_gates(older)[0].checks[0] == _check("pass")


@pytest.mark.parametrize(
    ("gate", "names"), [("data", DataCheck), ("drift", DriftCheck), ("model", ModelCheck)]
)
def test_every_check_a_user_can_skip_exists_and_every_check_can_be_skipped(
    gate: str, names: object
) -> None:
    checks = registry.gate(gate).checks
    assert checks is not None, f"gate {gate} has Deepchecks checks"
    assert [spec.key for spec in checks()] == list(typing.get_args(names))


@pytest.mark.parametrize("gate", registry.GATES, ids=registry.GATE_NAMES)
def test_each_gate_reads_the_params_section_named_after_it(gate: registry.Gate) -> None:
    # Given params where only this gate's section `gates.<name>` is off
    gates = GatesParams.model_validate({gate.name: {"mode": "off"}})
    # Then the registry finds that section for it, and another section for every other gate
    defaults = {other.name: other.section(GatesParams()).mode for other in registry.GATES}
    modes = {other.name: other.section(gates).mode for other in registry.GATES}
    assert modes == {**defaults, gate.name: "off"}
    assert "off" not in defaults.values()


def test_the_gates_against_the_champion_have_no_deepchecks_checks_and_only_latency_is_timed() -> (
    None
):
    against = [g.name for g in registry.GATES if g.against_champion is not None]
    exporting = [g.name for g in registry.GATES if g.judge_export is not None]
    assert (against, exporting) == (["champion", "latency"], ["edge"])
    assert [g.name for g in registry.GATES if g.checks is None] == [*against, *exporting]
    assert [g.name for g in registry.GATES if g.needs_model] == [
        "model",
        "champion",
        "latency",
        "edge",
    ]
    assert sorted(registry.UNREPEATABLE) == ["latency"]
    assert registry.gate("latency").section(GatesParams()).mode == "warn", "warns by default"


def _latency(status: str, mode: str = "warn") -> GateResult:
    check = CheckRecord(
        "single_row",
        "Serving latency",
        "one-row requests, both models",
        "c",
        "v",
        status,  # type: ignore[arg-type]
    )
    return GateResult("latency", mode, status, (check,))  # type: ignore[arg-type]


def test_a_committed_record_is_held_to_a_runs_verdict_apart_from_timings_that_do_not_block() -> (
    None
):
    judged = ModelIdentity("a" * 64, "inputs")
    passed = GateResult("model", "enforce", "pass", (_check("pass"),), judged=judged)

    def record(*gates: GateResult) -> GatesRecord:
        return read_record(gates_document([passed, *gates]))

    # Given a record committed from a laptop where latency passed, and a CI run where it warned
    laptop, ci = record(_latency("pass")), record(_latency("fail"))
    assert (laptop.verdict.status, ci.verdict.status) == ("pass", "warn"), "the report warns"
    # Then the committed record is still the one this run gated: timings differ by machine
    assert check_committed(ci, laptop, exact=False).startswith("the committed reports/gates.json")
    assert check_committed(laptop, record(_latency("inconclusive")), exact=False)
    # But a latency gate that blocks (mode enforce) must agree, either way
    blocked = record(_latency("fail", mode="enforce"))
    assert blocked.repeatable.status == "fail"
    with pytest.raises(UngatedModelError, match="this run says 'Blocked"):
        check_committed(blocked, laptop, exact=False)
    with pytest.raises(UngatedModelError, match="says 'Blocked: enforced gate"):
        check_committed(laptop, blocked, exact=False)
    # And any other gate's verdict must match exactly, warnings included
    warned = record(GateResult("drift", "warn", "fail", (_check("fail"),)))
    with pytest.raises(UngatedModelError, match="this run says 'Safe to merge, with warnings"):
        check_committed(warned, laptop, exact=False)


def test_an_unknown_gate_is_named_with_the_gates_there_are() -> None:
    with pytest.raises(ModelopsError, match=r"no gate 'modle': the gates are data, drift, model, "):
        registry.gate("modle")

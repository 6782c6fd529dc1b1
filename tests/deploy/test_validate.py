"""Validation catches what a cluster would refuse, before anything is committed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.deploy.schemas import SchemaSource, load, pinned_for, schema_source
from modelops.deploy.validate import kserve_rules, skipped_checks, validate, webhook_rules
from modelops.errors import SchemaError
from tests.support import REPO_ROOT

GOLDEN = Path(__file__).parent / "golden" / "seldon" / "canary-25"
SDEP = "rendered/production/seldondeployment.yaml"
PDB = "rendered/production/poddisruptionbudget.yaml"
NETPOL = "rendered/production/networkpolicy.yaml"
PODMONITOR = "rendered/production/podmonitor.yaml"
APP = "argocd/production.yaml"


def _document(path: str) -> dict[str, Any]:
    """The first object of a golden file."""
    loaded: dict[str, Any] = next(yaml.safe_load_all((GOLDEN / path).read_text()))
    return loaded


def _problems(path: str, document: dict[str, Any]) -> tuple[str, ...]:
    return validate({path: yaml.safe_dump(document)}, schemas=schema_source(REPO_ROOT)).problems


def _needs_schema(
    api_version: str = "machinelearning.seldon.io/v1", kind: str = "SeldonDeployment"
) -> None:
    """Skip where the pinned schema cannot be had (no shared folder, cache or GitHub)."""
    pinned = pinned_for(api_version, kind)
    assert pinned is not None
    try:
        load(pinned, schema_source(REPO_ROOT))
    except SchemaError as exc:
        pytest.skip(f"the {kind} schema is not on this machine: {exc}")


def _needs_argo_schema() -> None:
    _needs_schema("argoproj.io/v1alpha1", "Application")


def _nowhere(tmp_path: Path, *, required: bool) -> SchemaSource:
    """No schema folder, an empty cache and downloads off: no schema can be had."""
    return SchemaSource(
        folders=(tmp_path,), cache=tmp_path / "cache", base_url=None, required=required
    )


def test_the_golden_manifests_validate() -> None:
    files = {path: (GOLDEN / path).read_text() for path in (SDEP, PDB, NETPOL, APP)}
    assert validate(files, schemas=schema_source(REPO_ROOT)).problems == ()


def test_a_misspelt_seldon_field_is_refused_by_the_strict_crd_schema() -> None:
    _needs_schema()
    document = _document(SDEP)
    document["spec"]["predictors"][0]["trafic"] = document["spec"]["predictors"][0].pop("traffic")
    document["spec"]["predictors"][1]["traffic"] = 100
    problems = _problems(SDEP, document)
    assert any("trafic" in problem for problem in problems), problems


def test_a_wrong_type_in_a_container_is_refused_by_the_schema() -> None:
    _needs_schema()
    document = _document(SDEP)
    container = document["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["port"] = [9000]
    assert any("readinessProbe" in problem for problem in _problems(SDEP, document))


def test_without_the_schemas_the_seldon_schema_check_is_skipped_and_says_why(
    tmp_path: Path,
) -> None:
    checked = validate(
        {SDEP: (GOLDEN / SDEP).read_text()}, schemas=_nowhere(tmp_path, required=False)
    )
    assert checked.problems == ()
    assert len(checked.skipped) == 1
    assert "MODELOPS_SCHEMAS" in checked.skipped[0]


def test_the_skipped_checks_are_those_validate_would_skip(tmp_path: Path) -> None:
    files = {path: (GOLDEN / path).read_text() for path in (SDEP, PDB, NETPOL, APP)}
    nowhere = _nowhere(tmp_path, required=False)
    skipped = skipped_checks(files, schemas=nowhere)
    assert skipped == validate(files, schemas=nowhere).skipped
    assert [note.split(" ")[0] for note in skipped] == ["Application", "SeldonDeployment"]
    _needs_schema()
    _needs_argo_schema()
    assert skipped_checks(files, schemas=schema_source(REPO_ROOT)) == ()
    assert skipped_checks(files, schemas=_nowhere(tmp_path, required=True)) == (), "problems"


def test_where_schemas_are_required_one_that_cannot_be_had_fails_the_validation(
    tmp_path: Path,
) -> None:
    files = {SDEP: (GOLDEN / SDEP).read_text(), APP: (GOLDEN / APP).read_text()}
    checked = validate(files, schemas=_nowhere(tmp_path, required=True))
    assert checked.skipped == ()
    assert len(checked.problems) == 2, "one problem per kind, not per object"
    assert all(
        "required here: GitHub Actions or MODELOPS_REQUIRE_SCHEMAS=true" in problem
        for problem in checked.problems
    )
    assert any(
        problem.startswith("SeldonDeployment schema unavailable") for problem in checked.problems
    )


def test_a_misspelt_argo_application_field_is_refused_by_its_crd_schema() -> None:
    _needs_argo_schema()
    document = _document(APP)
    document["spec"]["syncPolicy"]["automated"]["selfHeel"] = True
    problems = _problems(APP, document)
    assert any("selfHeel" in problem for problem in problems), problems


def test_each_object_of_a_file_holding_several_is_checked() -> None:
    budget = _document(PDB)
    broken = copy.deepcopy(budget)
    broken["spec"]["maxUnavailabel"] = 1
    text = yaml.safe_dump_all([budget, broken])
    problems = validate({PDB: text}, schemas=schema_source(REPO_ROOT)).problems
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{PDB} (object 2): PodDisruptionBudget"), problems


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p[1].update(traffic=30), "must add up to 100, got [75, 30]"),
        (lambda p: (p[0].update(traffic=100), p[1].update(traffic=0)), "no predictor may take 0%"),
        (lambda p: p[1].update(name="stable"), "names must be unique"),
        (lambda p: (p[0].update(shadow=True), p[1].update(shadow=True)), "at most one"),
        (
            lambda p: p[1]["componentSpecs"][0]["spec"]["containers"][0].update(name="other"),
            "graph node classifier has no implementation and no container",
        ),
        (lambda p: p.pop(), "a single predictor takes 0 (unset) or 100"),
        (lambda p: p.clear(), "at least one predictor"),
        (
            lambda p: p[0]["graph"].update(implementation="SKLEARN_SERVER"),
            "SKLEARN_SERVER needs modelUri",
        ),
    ],
    ids=[
        "sum not 100",
        "canary at 0",
        "duplicate names",
        "two shadows",
        "container missing",
        "single predictor at 75",
        "no predictor",
        "prepackaged without uri",
    ],
)
def test_seldon_webhook_rules(edit, message) -> None:
    document = copy.deepcopy(_document(SDEP))
    edit(document["spec"]["predictors"])
    problems = list(webhook_rules(document))
    assert any(message in problem for problem in problems), problems


def test_a_core_kind_is_checked_strictly_against_the_kubernetes_schema() -> None:
    document = _document(PDB)
    document["spec"]["minAvailabel"] = 1
    problems = _problems(PDB, document)
    assert any("minAvailabel" in problem for problem in problems), problems


def test_the_network_policy_is_checked_strictly_against_the_kubernetes_schema() -> None:
    document = _document(NETPOL)
    document["spec"]["ingress"][0]["ports"][0]["prot"] = "TCP"
    problems = _problems(NETPOL, document)
    assert any("prot" in problem for problem in problems), problems


def test_an_argo_application_needs_its_source_and_destination() -> None:
    document = _document(APP)
    del document["spec"]["source"]["repoURL"]
    problems = _problems(APP, document)
    assert f"{APP}: Argo CD Application needs spec.source.repoURL" in problems, "our own rule"
    _needs_argo_schema()
    assert problems == (
        f"{APP}: Application spec.source: 'repoURL' is a required property",
        f"{APP}: Argo CD Application needs spec.source.repoURL",
    )


def test_template_syntax_left_in_the_output_is_caught() -> None:
    checked = validate(
        {SDEP: "kind: x\nname: {{ deploy.name }}\n"}, schemas=_nowhere(Path("/none"), required=True)
    )
    assert checked.problems == (f"{SDEP}: template syntax left in the output",)


def test_text_that_is_not_a_kubernetes_object_is_caught() -> None:
    checked = validate(
        {"a.yaml": "just: text\n", "b.yaml": "a: [\n", "c.yaml": "kind: x\n"},
        schemas=_nowhere(Path("/none"), required=True),
    )
    assert checked.problems[0] == "a.yaml: not a Kubernetes object (no kind)"
    assert checked.problems[1].startswith("b.yaml: not valid YAML")
    assert checked.problems[2] == "c.yaml: x has no apiVersion"


def test_a_misspelt_podmonitor_field_is_refused_by_the_prometheus_operator_schema() -> None:
    _needs_schema("monitoring.coreos.com/v1", "PodMonitor")
    assert _problems(PODMONITOR, _document(PODMONITOR)) == ()
    document = _document(PODMONITOR)
    document["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    problems = _problems(PODMONITOR, document)
    assert any("intervall" in problem for problem in problems), problems


ISVC = "rendered/production/inferenceservice.yaml"
KSERVE_GOLDEN = Path(__file__).parent / "golden" / "kserve" / "canary-25"


def _service() -> dict[str, Any]:
    """The golden InferenceService during a canary (stable, and canary at 25%)."""
    loaded: dict[str, Any] = yaml.safe_load((KSERVE_GOLDEN / ISVC).read_text())
    return loaded


def test_a_misspelt_inferenceservice_field_is_refused_by_the_strict_kserve_schema() -> None:
    _needs_schema("serving.kserve.io/v1beta1", "InferenceService")
    assert _problems(ISVC, _service()) == ()
    for misspell in ("trafficPercnt", "minReplica"):
        document = _service()
        canary = document["spec"]["canary"][0]
        if misspell == "trafficPercnt":
            canary[misspell] = canary.pop("trafficPercent")
        else:
            canary["predictor"][misspell] = canary["predictor"].pop("minReplicas")
        problems = _problems(ISVC, document)
        assert any(misspell in problem for problem in problems), problems


def test_a_wrong_type_in_a_kserve_container_is_refused_by_the_schema() -> None:
    _needs_schema("serving.kserve.io/v1beta1", "InferenceService")
    document = _service()
    document["spec"]["predictor"]["containers"][0]["startupProbe"]["httpGet"]["port"] = [9000]
    assert any("startupProbe" in problem for problem in _problems(ISVC, document))


def _unnamed_model(spec: dict[str, Any]) -> None:
    env = spec["predictor"]["containers"][0]["env"]
    env[:] = [variable for variable in env if variable["name"] != "STORAGE_URI"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s["canary"][0].update(trafficPercent=0), "takes 0%: a canary takes 1 to 99"),
        (lambda s: s["canary"][0].update(trafficPercent=100), "takes 100%"),
        (
            lambda s: s["canary"].append(s["canary"][0]),
            "names must be unique and differ from the stable predictor's",
        ),
        (lambda s: s["canary"][0]["predictor"].pop("name"), "every canary needs predictor.name"),
        (
            lambda s: s["canary"][0]["predictor"].update(maxReplicas=6),
            "canary canary has fixed replicas: remove ['maxReplicas']",
        ),
        (
            lambda s: s["canary"][0]["predictor"].update(minReplicas=9),
            "more minReplicas than the stable predictor (3)",
        ),
        (_unnamed_model, "a stable predictor that names its model (STORAGE_URI"),
        (
            lambda s: s["predictor"]["containers"][0].update(name="server"),
            "predictor: the model server's container must be named kserve-container",
        ),
        (
            lambda s: s["predictor"].update(sklearn={"storageUri": "s3://x"}),
            "predictor: exactly one implementation",
        ),
        (lambda s: s["predictor"].update(minReplicas=7), "minReplicas 7 is above its maxReplicas"),
    ],
    ids=[
        "canary at 0",
        "canary at 100",
        "two canaries of one name",
        "unnamed canary",
        "canary autoscaling",
        "canary above the stable floor",
        "stable names no model",
        "container not kserve-container",
        "two implementations",
        "floor above ceiling",
    ],
)
def test_kserve_webhook_rules(edit, message) -> None:
    document = _service()
    edit(document["spec"])
    problems = list(kserve_rules(document))
    assert any(message in problem for problem in problems), problems
    assert list(kserve_rules(_service())) == [], "the golden one passes"


def test_a_canary_needs_standard_mode() -> None:
    document = _service()
    document["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Knative"
    assert _problems(ISVC, document) == (
        f"{ISVC}: spec.canary needs the annotation serving.kserve.io/deploymentMode: Standard",
    )

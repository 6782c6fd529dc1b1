"""The telemetry contract is the one home of every name the server and its readers share.

- Each series name, recording rule name, bin label, the latency buckets and the score grid is
  spelled as a literal in exactly one source file under src/, serving/ and benchmarks/: the
  contract's (a docstring or comment may mention a name; code reads it from the contract).
- The contract imports nothing but the standard library (both environments install it).
- The rules record every family the contract names, and nothing it does not; every PromQL the
  pipeline builds selects only on labels the series carry or the scrape adds.
- The docs' table of series lists every series, with its kind and labels, and every series or
  rule name a doc mentions is the contract's.

That the server exposes each series as declared is checked on the real server
(tests/serving/test_telemetry.py).
"""

from __future__ import annotations

import ast
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import modelops_contract
import pytest
import yaml
from modelops_contract import (
    LATENCY_BUCKETS,
    LE,
    MISSING,
    NAMESPACE,
    OTHER,
    SCORE_GRID,
    SERIES,
    TRACK,
    UNSEEN,
    records,
)
from modelops_contract import batch as batch_contract
from modelops_contract import edge as edge_contract

from modelops.canary.queries import covered_query, step_queries
from modelops.deploy.render import monitoring_files
from modelops.monitoring.windows import trained_query, window_queries
from modelops.observability.dashboards import DashboardWindows, dashboards, panel_queries
from modelops.params import LATENCY_BOUNDS, Params
from modelops.rehearsal.experiment import queries as experiment_queries
from modelops.rehearsal.plan import queries as rehearsal_queries
from modelops.telemetry.selector import selector
from tests.deploy.fleet_support import DEVICES, EDGE
from tests.support import REPO_ROOT, template_params

CONTRACT = REPO_ROOT / "serving" / "contract" / "modelops_contract"
ALL_SERIES = (*SERIES, *batch_contract.SERIES, *edge_contract.SERIES)
"""The server's series and the ones a batch run and a device push."""
SOURCE_ROOTS = ("src", "serving", "benchmarks")
BIN_FORMAT = "the bin label format b{index:02d}"
DOCS = sorted(
    [
        REPO_ROOT / "README.md",
        REPO_ROOT / "serving" / "README.md",
        REPO_ROOT / "manifests" / "README.md",
        *(REPO_ROOT / "runbooks").glob("*.md"),
        *(REPO_ROOT / "benchmarks").glob("*.md"),
    ]
)
NOT_SERIES = {"modelops_serving", "modelops_contract"}
"""`modelops_` words in the docs that name packages, not series."""
SCRAPE_LABELS = {LE, TRACK, NAMESPACE, "pod", "container", "job", "instance", "slo"}
"""Labels a query may select on besides the series' own: the scrape's, a histogram's bucket
bound, and the `slo` label of the SLI recording rules."""
PUSH_LABELS = {edge_contract.DEVICE}
"""Grouping labels of a push (besides `job`): an edge device's id."""


# --- what a source file spells ---------------------------------------------------------------


def _facts() -> dict[str, re.Pattern[str]]:
    """Each name the contract holds, and how to find it inside a string literal."""
    facts = {
        series.name: re.compile(
            rf"(?<![A-Za-z0-9_:]){re.escape(series.name)}(?:_total|_bucket|_sum|_count)?"
            r"(?![A-Za-z0-9_])"
        )
        for series in ALL_SERIES
    }
    rules = [family.stem for family in records.FAMILIES] + list(records.FIXED)
    facts |= {name: re.compile(rf"(?<![A-Za-z0-9_:]){re.escape(name)}") for name in rules}
    facts |= {label: re.compile(re.escape(label)) for label in (MISSING, OTHER, UNSEEN)}
    return facts


FACTS = _facts()
NUMBERS = {"LATENCY_BUCKETS": LATENCY_BUCKETS, "SCORE_GRID": SCORE_GRID}
NAMED = {
    "LATENCY_BUCKETS": "LATENCY_BUCKETS",
    "LATENCY_BOUNDS": "LATENCY_BUCKETS",
    "DURATION_BUCKETS": "LATENCY_BUCKETS",
    "SCORE_GRID": "SCORE_GRID",
}
"""Names a bucket list has gone by: bound to anything but a literal or an imported name, each
is a second definition."""
RUN = 4
"""A tuple or list of numbers holding this many consecutive bounds of a bucket list is a copy."""


def _documentation(tree: ast.AST) -> set[int]:
    """ids of string constants that are statements (docstrings, attribute docstrings)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def _numbers(node: ast.Tuple | ast.List) -> list[float] | None:
    values = []
    for element in node.elts:
        if not isinstance(element, ast.Constant) or not isinstance(element.value, (int, float)):
            return None
        if isinstance(element.value, bool):
            return None
        values.append(float(element.value))
    return values


def _holds_a_run(values: list[float], bounds: tuple[float, ...]) -> bool:
    for start in range(len(values) - RUN + 1):
        window = values[start : start + RUN]
        for offset in range(len(bounds) - RUN + 1):
            if all(math.isclose(a, b) for a, b in zip(window, bounds[offset:], strict=False)):
                return True
    return False


def _bin_format(node: ast.JoinedStr) -> bool:
    """Whether an f-string formats a bin label: a "b" right before `{...:02d}`."""
    for before, after in zip(node.values, node.values[1:], strict=False):
        if (
            isinstance(before, ast.Constant)
            and str(before.value).endswith("b")
            and isinstance(after, ast.FormattedValue)
            and isinstance(after.format_spec, ast.JoinedStr)
            and [getattr(v, "value", None) for v in after.format_spec.values] == ["02d"]
        ):
            return True
    return False


def spelled(source: str) -> set[str]:
    """The contract's facts a module's code spells itself (documentation aside)."""
    tree = ast.parse(source)
    docs = _documentation(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            found |= {fact for fact, pattern in FACTS.items() if pattern.search(node.value)}
        elif isinstance(node, ast.JoinedStr) and _bin_format(node):
            found.add(BIN_FORMAT)
        elif isinstance(node, ast.Tuple | ast.List):
            values = _numbers(node)
            if values is not None:
                found |= {name for name, b in NUMBERS.items() if _holds_a_run(values, b)}
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            named = {NAMED[t.id] for t in targets if isinstance(t, ast.Name) and t.id in NAMED}
            # A bucket list built by an expression (not a literal, not an imported name).
            if named and not isinstance(node.value, ast.Name | ast.Attribute | ast.Tuple):
                found |= named
    return found


def _sources() -> Iterator[Path]:
    for root in SOURCE_ROOTS:
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT)
            if not any(part.startswith(".") for part in relative.parts):
                yield path


@pytest.fixture(scope="module")
def spelled_in() -> dict[str, set[str]]:
    """fact -> the source files (relative paths) that spell it."""
    where: dict[str, set[str]] = {}
    for path in _sources():
        for fact in spelled(path.read_text(encoding="utf-8")):
            where.setdefault(fact, set()).add(str(path.relative_to(REPO_ROOT)))
    return where


def _home(fact: str) -> str:
    if fact in {s.name for s in batch_contract.SERIES}:
        module = "batch"
    elif fact in {s.name for s in edge_contract.SERIES}:
        module = "edge"
    elif fact in {s.name for s in SERIES} or fact in NUMBERS:
        module = "series"
    elif fact in (MISSING, OTHER, UNSEEN, BIN_FORMAT):
        module = "bins"
    else:
        module = "records"
    return str((CONTRACT / f"{module}.py").relative_to(REPO_ROOT))


@pytest.mark.parametrize("fact", [*FACTS, *NUMBERS, BIN_FORMAT])
def test_each_name_and_bucket_list_is_spelled_in_one_source_file(
    fact: str, spelled_in: dict[str, set[str]]
) -> None:
    home = _home(fact)
    found = spelled_in.get(fact, set())
    assert found == {home}, (
        f"{fact} is spelled in {sorted(found)}: it belongs in {home} only; read it from "
        "modelops_contract there"
    )


def test_the_search_finds_a_copy_in_code_and_ignores_documentation() -> None:
    copied = '''
"""A module that reads modelops_requests_total (documentation: not a copy)."""
DURATION = (0.05, 0.1, 0.25, 0.5, 1.0)
SCORE_GRID = tuple(round(step / 20, 2) for step in range(1, 21))
LATENCY_BUCKETS = imported
EXPR = f"sum(rate(modelops_score_bucket[{window}]))"
RULE = f"modelops:feature_psi:{window}"
LABEL = f"b{index:02d}"
OTHER = "__other__"
'''
    assert spelled(copied) == {
        "LATENCY_BUCKETS",
        "SCORE_GRID",
        "modelops_score",
        records.FEATURE_DRIFT.psi.stem,
        BIN_FORMAT,
        OTHER,
    }


def test_the_latency_objective_allows_exactly_the_servers_bounds() -> None:
    assert LATENCY_BOUNDS == LATENCY_BUCKETS


# --- the contract stands alone ---------------------------------------------------------------


def test_the_contract_imports_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__", "modelops_contract"}
    for path in sorted(CONTRACT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
    assert (CONTRACT / "py.typed").is_file(), "the contract is typed for both mypy runs"


def test_a_series_against_prometheus_naming_rules_is_refused() -> None:
    with pytest.raises(modelops_contract.ContractError, match="_total"):
        modelops_contract.CounterSeries("modelops_x_total", "help", ("model_version",))
    with pytest.raises(modelops_contract.ContractError, match="model_version"):
        modelops_contract.GaugeSeries("modelops_x", "help", ("feature",))
    with pytest.raises(modelops_contract.ContractError, match="increase"):
        modelops_contract.HistogramSeries("modelops_x", "h", ("model_version",), buckets=(2, 1))
    with pytest.raises(modelops_contract.ContractError, match="duration"):
        records.SLI_ERROR.at("1 hour")


def test_every_name_belongs_to_one_family() -> None:
    for family in records.FAMILIES:
        assert records.family_of(family.at("7d")) is family
    assert records.family_of(records.MODEL_AGE) == records.MODEL_AGE
    assert records.family_of("modelops:nothing:7d") is None


# --- the readers use the contract's names and labels -----------------------------------------


def _groups() -> list[dict[str, Any]]:
    params = Params.model_validate(template_params())
    # The template renders every optional rule: business value and labels are on.
    assert params.monitoring.business is not None
    assert params.monitoring.labels.expected
    groups = []
    for environment in ("production", "nightly"):  # a real-time and a batch environment
        files = monitoring_files(params.deploy, params.monitoring, environment)
        groups += yaml.safe_load(files[f"prometheus/{environment}.rules.yaml"])["groups"]
    return groups


RULE_NAME = re.compile(r"(?<![A-Za-z0-9_:])(modelops:[a-z0-9_:]+)")


def test_the_rules_record_every_family_of_the_contract_and_read_only_what_they_record() -> None:
    rules = [rule for group in _groups() for rule in group["rules"]]
    recorded = {rule["record"] for rule in rules if "record" in rule}
    unknown = sorted(name for name in recorded if records.family_of(name) is None)
    assert not unknown, f"recorded but not in modelops_contract.records: {unknown}"
    families = {records.family_of(name) for name in recorded}
    missing = [f for f in (*records.FAMILIES, *records.FIXED) if f not in families]
    assert not missing, f"the contract names rules nothing records: {missing}"
    read = {name for rule in rules for name in RULE_NAME.findall(rule["expr"])}
    assert read <= recorded, f"rules read rules nothing records: {sorted(read - recorded)}"


def _promql() -> list[tuple[str, str]]:
    """(where, PromQL) of every query the pipeline builds for the template's params."""
    declared = template_params()
    declared["deploy"]["environments"][DEVICES] = EDGE
    params = Params.model_validate(declared)
    monitored = [selector(params.deploy, env) for env in ("production", "nightly", DEVICES)]
    windows = DashboardWindows.from_objectives(params.monitoring.objectives)
    boards = dashboards(
        environment="production",
        namespace="churn-production",
        deploy_name="churn",
        slo_targets={"availability": 0.999, "latency": 0.99},
        windows=windows,
    )
    return [
        *(
            (f"rule {r.get('record') or r.get('alert')}", r["expr"])
            for g in _groups()
            for r in g["rules"]
        ),
        *((f"dashboard {t}", q) for board in boards for t, q in panel_queries(board)),
        *((f"canary {k}", q) for k, q in step_queries("churn-production", 60).items()),
        ("canary covered", covered_query("churn-production", "1h")),
        *(
            (f"monitor {where.environment} {k}", q)
            for where in monitored
            for k, q in window_queries(where, "v1", "1d").items()
        ),
        *(
            (f"monitor {where.environment} trained", q)
            for where in monitored
            if (q := trained_query(where, "v1")) is not None
        ),
        *((f"rehearsal {t}", q) for t, q in rehearsal_queries(feature="plan", positive_label="1")),
        *((f"rehearsal experiment {t}", q) for t, q in experiment_queries()),
    ]


LABEL_LISTS = re.compile(r"\b(?:by|on|ignoring|without|group_left|group_right)\s*\(([^)]*)\)")
MATCHER = re.compile(r"[{,]\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def test_every_query_selects_only_on_labels_the_series_carry_or_the_scrape_adds() -> None:
    known = {label for series in ALL_SERIES for label in series.labels}
    known |= SCRAPE_LABELS | PUSH_LABELS
    for where, expr in _promql():
        used = {m.strip() for group in LABEL_LISTS.findall(expr) for m in group.split(",")}
        used |= set(MATCHER.findall(expr))
        unknown = sorted(used - known - {""})
        assert not unknown, f"{where} selects on {unknown}, a label no series has: {expr}"


# --- the docs ----------------------------------------------------------------------------------

SERIES_WORD = re.compile(r"(?<![A-Za-z0-9_./])(modelops_[a-z0-9_]+)(\*?)")
RULE_WORD = re.compile(r"(?<![A-Za-z0-9_])(modelops:[a-z0-9_:]+)(<W>)?")


def _metrics_table(doc: Path = REPO_ROOT / "serving" / "README.md") -> list[list[str]]:
    """The rows of a doc's table of metrics (cells, stripped)."""
    text = doc.read_text()
    lines = text.split("| metric | type | labels | meaning |", 1)[1].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


@pytest.mark.parametrize(
    ("doc", "declared"),
    [
        ("serving/README.md", SERIES),
        ("runbooks/batch-scoring.md", batch_contract.PUSHED),
        ("runbooks/edge.md", edge_contract.SERIES),
    ],
)
def test_the_metrics_table_lists_every_series_with_its_kind_and_labels(
    doc: str, declared: tuple[Any, ...]
) -> None:
    by_family = {series.family: series for series in declared}
    listed = {}
    for name, kind, labels, _ in _metrics_table(REPO_ROOT / doc):
        family = name.strip("`")
        assert family in by_family, f"{doc} lists {family}, not a series of its table"
        listed[family] = (kind.split()[0] if kind else "", labels)
    assert set(listed) == set(by_family), (
        f"{doc}'s table lacks {sorted(set(by_family) - set(listed))}"
    )
    for family, (kind, labels) in listed.items():
        series = by_family[family]
        assert kind == series.kind, f"{family}: the table says {kind}, the contract {series.kind}"
        # Label names are the backticked words outside parentheses (which hold values).
        names = set(re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", labels)))
        assert names == set(series.labels) - {"model_version"}, f"{family}: labels {names}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_series_and_rule_a_doc_names_is_the_contracts(doc: Path) -> None:
    text = doc.read_text()
    samples = {name for series in ALL_SERIES for name in (*series.samples, series.family)}
    for word, star in SERIES_WORD.findall(text):
        if word in NOT_SERIES:
            continue
        if star:  # a prefix such as `modelops_reference_*`
            assert any(s.startswith(word) for s in samples), f"{doc.name}: {word}* names none"
        else:
            assert word in samples, f"{doc.name} names {word}, not a series of the contract"
    stems = {family.stem for family in records.FAMILIES}
    for word, placeholder in RULE_WORD.findall(text):
        if placeholder:  # a family written with its window as <W>
            assert word in stems, f"{doc.name} names {word}<W>, not a rule family of the contract"
        else:
            assert records.family_of(word) is not None, f"{doc.name} names {word}, not a rule"

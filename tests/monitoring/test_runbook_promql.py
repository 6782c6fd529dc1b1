"""The PromQL the runbooks show parses, and names only recording rules that the rules define.

Every ```promql block of runbooks/*.md is split into its queries (a line that is not indented
starts one; `#` lines are comments) and written into a rule file as recording rules, which the
real `promtool check rules` parses. Under CI (`CI` set) a missing promtool fails; elsewhere the
test skips and says how to install it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import REPO_ROOT, rendered_rules, tool_or_skip

RUNBOOKS = sorted((REPO_ROOT / "runbooks").glob("*.md"))


RULE_FILES = rendered_rules()


def queries(doc: Path) -> list[str]:
    """The queries of a doc's ```promql blocks, continuation lines joined."""
    found: list[str] = []
    for block in re.findall(r"^ *```promql\n(.*?)^ *```", doc.read_text(), re.M | re.S):
        lines = [line.rstrip() for line in block.splitlines()]
        indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
        for line in (x[indent:] for x in lines):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace() and found:
                found[-1] += " " + line.strip()
            else:
                found.append(line.strip())
    return found


DOCS = [doc for doc in RUNBOOKS if queries(doc)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_query_in_the_runbook_parses(doc: Path, tmp_path: Path) -> None:
    shown = queries(doc)
    rules = [{"record": f"runbook:query_{n}", "expr": q} for n, q in enumerate(shown)]
    path = tmp_path / "queries.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": doc.stem, "rules": rules}]}))
    done = subprocess.run(
        [
            tool_or_skip("promtool", install="apt-get install prometheus"),
            "check",
            "rules",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{doc.name}: {done.stdout}{done.stderr}\n" + "\n".join(
        f"{n}: {q}" for n, q in enumerate(shown)
    )


def test_the_queries_are_found() -> None:
    shown = queries(REPO_ROOT / "runbooks" / "alerts.md")
    assert len(shown) > 30, shown
    assert all("\n" not in q and not q.startswith("#") for q in shown)


@pytest.mark.parametrize("path", sorted(RULE_FILES))
def test_every_recording_rule_the_runbooks_query_is_defined(path: str) -> None:
    groups = yaml.safe_load(RULE_FILES[path])["groups"]
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    batch = any(group["name"].endswith("-batch") for group in groups)
    named = {
        name
        for doc in DOCS
        for query in queries(doc)
        for name in re.findall(r"\bmodelops:[A-Za-z0-9_:]+", query)
        # A batch environment records its runs' rules, a real-time one all the others.
        if name.startswith("modelops:batch_") == batch
    }
    assert named <= recorded, f"{path} records none of {sorted(named - recorded)}"

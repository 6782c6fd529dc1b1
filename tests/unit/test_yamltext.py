"""YAML through libyaml reads and writes what PyYAML's own code does, and fails as it does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelops import yamltext
from tests.support import REPO_ROOT

TEXTS = sorted((REPO_ROOT / "tests" / "deploy" / "golden").rglob("*.yaml"))


def test_libyaml_is_there_to_be_used() -> None:
    assert yaml.__with_libyaml__, "PyYAML without libyaml: every read and render is slower"
    assert yamltext.DUMPER is yaml.CSafeDumper


@pytest.mark.parametrize(
    "path", [REPO_ROOT / "params.yaml", *TEXTS], ids=lambda path: str(path.relative_to(REPO_ROOT))
)
def test_the_same_documents_and_text_as_pyyaml(path: Path) -> None:
    text = path.read_text()
    documents = list(yaml.safe_load_all(text))
    if len(documents) == 1:
        assert yamltext.parse(text) == documents[0]
    fast = yaml.dump_all(
        documents, Dumper=yamltext.DUMPER, sort_keys=False, width=1_000_000, allow_unicode=True
    )
    assert fast == yaml.safe_dump_all(
        documents, sort_keys=False, width=1_000_000, allow_unicode=True
    )


@pytest.mark.parametrize(
    "text", ["a: [1, 2\nb: 3\n", "key: value\n  bad: indent\n", "- a\nb: c\n", "a: b: c\n"]
)
def test_a_broken_text_raises_pyyamls_own_error(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as expected:
        yaml.safe_load(text)
    with pytest.raises(yaml.YAMLError) as raised:
        yamltext.parse(text)
    assert str(raised.value) == str(expected.value)

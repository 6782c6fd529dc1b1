"""YAML read and written by libyaml where PyYAML was built with it (its wheels are): the same
documents and the same text as PyYAML's own parser and emitter, several times faster. Every
command reads params.yaml and the release files; every release step renders every rule and
dashboard."""

from __future__ import annotations

from typing import Any

import yaml

DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""`yaml.SafeDumper`'s output, from libyaml's emitter (the golden files hold them equal)."""
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""`yaml.SafeLoader`'s documents, from libyaml's parser, for `yaml.load` and `yaml.load_all`."""


def parse(text: str) -> Any:
    """`yaml.safe_load(text)`, faster. A text libyaml refuses is parsed again by PyYAML, so the
    error raised, and its message with the line, is PyYAML's as before."""
    try:
        return yaml.load(text, Loader=LOADER)
    except yaml.YAMLError:
        return yaml.safe_load(text)

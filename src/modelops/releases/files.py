"""The release files: `manifests/releases/<env>.yaml`, what each environment serves.

Written only by `modelops release` (and the judge): their history is the audit trail, checked
against the state machine's rules whenever one is read.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from modelops import yamltext
from modelops.errors import ReleaseError
from modelops.params import Params, canary_steps
from modelops.paths import RELEASES_DIR
from modelops.releases import documents, state
from modelops.releases.state import Release

_HEADER = "# Written by `modelops release`; do not edit by hand: the history is the audit trail.\n"


def release_file(environment: str) -> Path:
    """Where an environment's release file lives, relative to the project root."""
    return Path(RELEASES_DIR) / f"{environment}.yaml"


def release_text(release: Release) -> str:
    """A release file's text: the header, then the release as YAML (deterministic)."""
    return _HEADER + yaml.safe_dump(documents.to_document(release), sort_keys=False, width=100)


def load_releases(root: Path, params: Params) -> dict[str, Release]:
    """Each environment's release file, or an empty release when there is none yet."""
    releases = {}
    for name in params.deploy.environments:
        path = root / release_file(name)
        if path.is_file():
            source = str(path.relative_to(root))
            try:
                document = yamltext.parse(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" (line {mark.line + 1})" if mark is not None else ""
                raise ReleaseError(
                    f"{source}: not YAML{where}; restore it from git (`git checkout -- {source}`)"
                ) from None
            release = documents.from_document(document, source=source)
            steps = canary_steps(params.deploy.environments[name])
            state.check_release(release, steps=steps, source=source)
            releases[name] = release
        else:
            releases[name] = Release(environment=name)
    return releases

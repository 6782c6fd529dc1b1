"""The serving image's Dockerfile, read as the tests need it (no Docker engine runs here)."""

from __future__ import annotations

import json
import re
import shlex

from tests.serving.conftest import SERVING_DIR

DOCKERFILE = (SERVING_DIR / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    """The arguments of every `name` instruction, continuation lines included."""
    return re.findall(rf"^{name}\s+(.+?)(?<!\\)$", DOCKERFILE, flags=re.MULTILINE | re.DOTALL)


def environment() -> dict[str, str]:
    """What all ENV instructions set (the runtime stage's come last, so they win)."""
    assignments = " ".join(line.replace("\\\n", " ") for line in instructions("ENV"))
    return dict(item.split("=", 1) for item in shlex.split(assignments))


def entrypoint() -> list[str]:
    (line,) = instructions("ENTRYPOINT")
    command: list[str] = json.loads(line)
    return command

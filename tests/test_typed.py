"""modelops ships its types (PEP 561): a project importing it gets mypy's view of ours."""

from __future__ import annotations

import tomllib

from tests.support import REPO_ROOT


def test_the_package_is_marked_typed_and_the_wheel_carries_the_marker() -> None:
    # Given the package folder and the wheel's build settings, then the PEP 561 marker is in
    # the folder, and the wheel takes the whole folder (hatch packs every file in it).
    assert (REPO_ROOT / "src" / "modelops" / "py.typed").is_file(), "src/modelops/py.typed"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["src/modelops"], wheel
    assert not wheel.get("exclude"), f"nothing may be left out of the wheel: {wheel['exclude']}"

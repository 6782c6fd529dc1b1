"""The coverage floor `make test` applies to SlipCover's report (tests/coverage_floor.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.coverage_floor import FLOOR, main, report


def _document(covered: int, missing: int) -> dict[str, object]:
    def summary(c: int, m: int) -> dict[str, object]:
        return {"covered_lines": c, "missing_lines": m, "percent_covered": 100 * c / (c + m)}

    return {
        "summary": summary(covered, missing),
        "files": {
            "src/modelops/a.py": {"summary": summary(covered, 0)},
            "src/modelops/b.py": {"summary": summary(0, missing)},
        },
    }


def test_the_total_and_the_least_covered_modules_are_shown() -> None:
    percent, text = report(_document(950, 50))
    assert percent == 95.0
    assert text.splitlines() == [
        f"coverage: 95.0% of 1000 lines of src/modelops (floor {FLOOR:g}%)",
        "    0.0%  src/modelops/b.py",
    ]


def test_below_the_floor_fails(tmp_path: Path) -> None:
    path = tmp_path / "coverage.json"
    path.write_text(json.dumps(_document(900, 100)))
    assert main([str(path)]) == 1
    path.write_text(json.dumps(_document(990, 10)))
    assert main([str(path)]) == 0

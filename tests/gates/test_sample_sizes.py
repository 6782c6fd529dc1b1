"""The gates on data of every size: clean data is never blocked, each defect is caught.

Real Deepchecks runs through the stage commands, on tables generated at 30 to 30,000 rows
(tests/gate_scenarios.py). Clean data with a strong legitimate feature passes (or, below the
size where a check can say anything, is inconclusive, which warns); each defect blocks at 3,000
rows and, at 30 rows, is never passed silently. False-block and catch rates over many seeds are
measured by `python -m benchmarks.bench_gate_statistics` (benchmarks/results/gate_statistics.md).
The clean scenario of each size runs once; each defect starts from it and reruns only what it
changes (`run_defect`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gate_scenarios import DEFECTS, read_outcome, run_defect, run_scenario

SEED = 11


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Path]:
    """The clean scenario at a size, run once (by the first test that asks) for this module."""
    done: dict[int, Path] = {}

    def at(rows: int) -> Path:
        if rows not in done:
            root = tmp_path_factory.mktemp(f"clean-{rows}")
            with pytest.MonkeyPatch.context() as patch:
                patch.chdir(root)
                run_scenario(root, "clean", rows, SEED)
            done[rows] = root
        return done[rows]

    return at


@pytest.mark.parametrize("rows", [30, 300, 3_000, 30_000])
def test_clean_data_with_a_strong_legitimate_feature_is_never_blocked(
    clean: Callable[[int], Path], rows: int
) -> None:
    outcome = read_outcome(clean(rows))
    assert not outcome.blocked, outcome
    assert "fail" not in outcome.statuses("drift", "label_correlation"), "a strong feature, no leak"
    if rows >= 3_000:
        assert outcome.verdict == "pass", outcome
    else:
        inconclusive = {status for statuses in outcome.checks.values() for status in statuses}
        assert "inconclusive" in inconclusive, "small data says it is small"


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_blocks_at_3000_rows(
    clean: Callable[[int], Path], workdir: Path, defect: str
) -> None:
    outcome = run_defect(clean(3_000), workdir, defect, 3_000, SEED)
    expected = DEFECTS[defect]
    assert outcome.blocked, outcome
    assert "fail" in outcome.statuses(expected.gate, expected.check), outcome


def test_duplicated_rows_are_counted_on_every_row_not_on_a_sample(
    clean: Callable[[int], Path], workdir: Path
) -> None:
    # 24,000 train rows: a 10,000-row sample would hold few of the duplicated pairs.
    outcome = run_defect(clean(30_000), workdir, "duplicated_rows", 30_000, SEED)
    assert outcome.blocked, outcome
    assert "fail" in outcome.statuses("data", "duplicates"), outcome


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_at_30_rows_a_defect_is_never_passed_silently(
    clean: Callable[[int], Path], workdir: Path, defect: str
) -> None:
    outcome = run_defect(clean(30), workdir, defect, 30, SEED)
    expected = DEFECTS[defect]
    assert outcome.verdict != "pass", outcome
    if outcome.verdict == "refused":
        assert outcome.refusal.startswith("error: "), "prepare stops with a message that says why"
        return
    statuses = outcome.statuses(expected.gate, expected.check)
    assert statuses, outcome
    assert statuses <= {"fail", "inconclusive"}, f"{defect}: {statuses}"

"""The gates on data of every size: clean data is never blocked, each defect is caught.

Real Deepchecks runs through the stage commands, on tables generated at 30 to 30,000 rows
(tests/gate_scenarios.py). Clean data with a strong legitimate feature passes (or, below the
size where a check can say anything, is inconclusive, which warns); each defect blocks at 3,000
rows and, at 30 rows, is never passed silently. False-block and catch rates over many seeds are
measured by `python -m benchmarks.bench_gate_statistics` (benchmarks/results/gate_statistics.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gate_scenarios import DEFECTS, run_scenario

SEED = 11


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("rows", [30, 300, 3_000, 30_000])
def test_clean_data_with_a_strong_legitimate_feature_is_never_blocked(
    workdir: Path, rows: int
) -> None:
    outcome = run_scenario(workdir, "clean", rows, SEED)
    assert not outcome.blocked, outcome
    assert "fail" not in outcome.statuses("drift", "label_correlation"), "a strong feature, no leak"
    if rows >= 3_000:
        assert outcome.verdict == "pass", outcome
    else:
        inconclusive = {status for statuses in outcome.checks.values() for status in statuses}
        assert "inconclusive" in inconclusive, "small data says it is small"


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_blocks_at_3000_rows(workdir: Path, defect: str) -> None:
    outcome = run_scenario(workdir, defect, 3_000, SEED)
    expected = DEFECTS[defect]
    assert outcome.blocked, outcome
    assert "fail" in outcome.statuses(expected.gate, expected.check), outcome


def test_duplicated_rows_are_counted_on_every_row_not_on_a_sample(workdir: Path) -> None:
    # 24,000 train rows: a 10,000-row sample would hold few of the duplicated pairs.
    outcome = run_scenario(workdir, "duplicated_rows", 30_000, SEED)
    assert outcome.blocked, outcome
    assert "fail" in outcome.statuses("data", "duplicates"), outcome


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_at_30_rows_a_defect_is_never_passed_silently(workdir: Path, defect: str) -> None:
    outcome = run_scenario(workdir, defect, 30, SEED)
    expected = DEFECTS[defect]
    assert outcome.verdict != "pass", outcome
    if outcome.verdict == "refused":
        assert outcome.refusal.startswith("error: "), "prepare stops with a message that says why"
        return
    statuses = outcome.statuses(expected.gate, expected.check)
    assert statuses, outcome
    assert statuses <= {"fail", "inconclusive"}, f"{defect}: {statuses}"

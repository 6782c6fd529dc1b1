"""The leak check on an imbalanced label, with Deepchecks for real (in process, no pipeline).

A copy of a 3 %-positive label reads a predictive power score of about 0 (it rescales F1 by the
majority class's), so the PPS condition alone let it through; the separation J catches it.
"""

from __future__ import annotations

import numpy as np

from benchmarks.bench_leaks import generated, judged, with_copy


def test_a_copy_of_an_imbalanced_label_is_blocked_although_its_pps_reads_zero() -> None:
    rng = np.random.default_rng(7)
    table = with_copy(generated(3_000, 0.03, rng), 0.01, rng)
    decision, values = judged(table)
    assert decision == "fail", values
    pps, separation, _ = values.split(" | ")
    assert not pps.startswith("fail"), "the PPS does not see it: that was the gap"
    assert separation.startswith("fail: 'copied': J = max |TPR - FPR| 0.9"), separation


def test_clean_imbalanced_data_is_not_called_a_leak() -> None:
    rng = np.random.default_rng(8)
    decision, values = judged(generated(3_000, 0.03, rng))
    assert decision != "fail", values

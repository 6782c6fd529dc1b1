"""The reference profile's bin labels: the `bin` label of the per-bin series.

Training names the bins when it writes profile.json (`modelops.telemetry.profile`), the server
counts rows under the same names (`modelops_serving.profile`), and the drift monitor and the
canary judge read them back from Prometheus: one spelling for all three.

- numeric feature: `b00`, `b01`, ... between its cuts (one more bin than cuts), then `MISSING`;
- categorical feature: each top category under its own name, then `OTHER` (the other categories
  seen in training), `UNSEEN` (never seen), `MISSING`;
- score: `b00`, `b01`, ... between the profile's score cuts.
"""

from __future__ import annotations

MISSING, OTHER, UNSEEN = "__missing__", "__other__", "__unseen__"


def bin_label(index: int) -> str:
    """The label of the bin at `index` between cuts: `b00`, `b01`, ..."""
    return f"b{index:02d}"


def bin_labels(count: int) -> tuple[str, ...]:
    """The labels of `count` bins between cuts, in order (`count` is the cuts plus one)."""
    return tuple(bin_label(index) for index in range(count))

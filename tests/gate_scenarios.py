"""Tables with and without the defects the gates exist for, at any size (for tests and bench).

A clean table: a binary label with a strong legitimate feature (one-feature ROC AUC about 0.9),
weaker numeric and categorical features, a few nulls, unique ids and a timestamp that says
nothing about the label. Each defect changes one thing the way it happens in real exports.
`run_scenario` runs the real stage commands (prepare, train, evaluate, the gates) on it;
`run_defect` starts from the clean scenario and reruns only what a defect changes.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tests.support import run_modelops, small_params, write_params

DATA = "data/raw/table.csv"
LABEL, ID, TIMESTAMP = "outcome", "record_id", "recorded_at"
SIZES = (30, 300, 3_000, 30_000)


def clean_table(rows: int, seed: int) -> pd.DataFrame:
    """A clean table of `rows` rows; the same seed gives the same rows."""
    rng = np.random.default_rng(seed)
    label = (rng.random(rows) < 0.3).astype(int)
    strong = rng.normal(1.8 * label, 1.0)  # legitimately strong: one-feature AUC about 0.9
    table = pd.DataFrame(
        {
            ID: rng.permutation(rows) + 10_000,
            TIMESTAMP: pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.permutation(rows), "h"),
            "strong_signal": strong.round(3),
            "usage": rng.gamma(2.0 + label, 10.0).round(1),
            "tenure": rng.integers(1, 72, rows),
            "age": rng.normal(40, 12, rows).round(0),
            "noise": rng.normal(0, 1, rows).round(3),
            "segment": np.where(rng.random(rows) < 0.3 + 0.3 * label, "retail", "business"),
            "channel": rng.choice(
                ["web", "store", "phone", "partner"], rows, p=[0.4, 0.3, 0.2, 0.1]
            ),
            LABEL: label,
        }
    )
    table.loc[rng.random(rows) < 0.03, "usage"] = np.nan
    return table


def label_leak(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A column computed from the outcome (a refund issued to those who left), 1% off."""
    flips = rng.random(len(table)) < 0.01
    return table.assign(refund_issued=np.where(flips, 1 - table[LABEL], table[LABEL]))


def id_encodes_label(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Ids handed out in outcome order (the export was sorted by the label)."""
    order = table[LABEL].rank(method="first").astype(int).to_numpy()
    return table.assign(**{ID: order + 10_000})


def duplicated_rows(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A fifth of the rows exported twice (under new ids)."""
    copies = table.sample(frac=0.2, random_state=int(rng.integers(1 << 30))).copy()
    copies[ID] = np.arange(len(copies)) + 10_000_000
    return pd.concat([table, copies], ignore_index=True)


def conflicting_rows(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A tenth of the rows exported again with the opposite label."""
    copies = table.sample(frac=0.1, random_state=int(rng.integers(1 << 30))).copy()
    copies[LABEL] = 1 - copies[LABEL]
    copies[ID] = np.arange(len(copies)) + 20_000_000
    return pd.concat([table, copies], ignore_index=True)


def shifted_test(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The latest fifth of the rows (the test set of a time split) comes from another population."""
    latest = table[TIMESTAMP] >= table[TIMESTAMP].quantile(0.8)
    shifted = table.copy()
    shifted.loc[latest, "usage"] = shifted.loc[latest, "usage"] * 2.5 + 20
    shifted.loc[latest, "tenure"] = shifted.loc[latest, "tenure"] + 60
    return shifted


@dataclass(frozen=True)
class Defect:
    """A defect: how to make it, which params the scenario needs, and the gate meant to catch it."""

    make: Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]
    gate: str
    check: str
    params: dict[str, Any]


DEFECTS: dict[str, Defect] = {
    "label_leak": Defect(label_leak, "drift", "label_correlation", {}),
    "id_encodes_label": Defect(id_encodes_label, "drift", "identifier_leakage", {}),
    "duplicated_rows": Defect(duplicated_rows, "data", "duplicates", {}),
    "conflicting_rows": Defect(conflicting_rows, "data", "conflicting_labels", {}),
    "shifted_test": Defect(shifted_test, "drift", "feature_drift", {"split": "time"}),
    "worse_model": Defect(lambda table, rng: table, "champion", "roc_auc", {"candidate": "weak"}),
}


@dataclass(frozen=True)
class Outcome:
    """What the gates said about one scenario."""

    verdict: str
    gates: dict[str, str]
    checks: dict[tuple[str, str], set[str]]
    """(gate, check) -> the statuses of its records."""
    refusal: str = ""
    """When `prepare` refused the data (verdict "refused"), its error."""

    @property
    def blocked(self) -> bool:
        return self.verdict == "fail"

    def statuses(self, gate: str, check: str) -> set[str]:
        return self.checks.get((gate, check), set())


def scenario_params(
    rows: int, *, split: str = "stratified", champion: str | None = None
) -> dict[str, Any]:
    """The template's params for a table of this module's shape."""
    params = copy.deepcopy(small_params(max(rows, 200)))
    params["prepare"]["source"] = DATA
    params["prepare"]["columns"] = {
        "label": LABEL,
        "positive_label": 1,
        "id": ID,
        "timestamp": TIMESTAMP,
        "categorical": None,
        "numeric": None,
        "drop": [],
    }
    params["prepare"]["split"]["strategy"] = split
    params["gates"]["runner"]["html_reports"] = "never"
    params["gates"]["statistics"]["bootstrap_resamples"] = 400
    params["gates"]["champion"]["environment"] = None
    if champion is not None:
        params["gates"]["champion"]["model_uri"] = champion
    return params


WEAK = {"learning_rate": 0.05, "max_iter": 3, "max_leaf_nodes": 2, "early_stopping": False}


def run_scenario(root: Path, name: str, rows: int, seed: int) -> Outcome:
    """Write the scenario's table and params into `root` (the working directory) and gate it."""
    table = clean_table(rows, seed)
    defect = DEFECTS.get(name)
    if defect is not None:
        table = defect.make(table, np.random.default_rng(seed + 1))
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    table.to_csv(root / DATA, index=False)
    split = defect.params.get("split", "stratified") if defect else "stratified"
    champion = None
    if defect is not None and defect.params.get("candidate") == "weak":
        write_params(root, scenario_params(rows, split=split))
        run_modelops("prepare", "train")
        champion = str(root / "champion")
        (root / "models" / "model").rename(champion)
    params = scenario_params(rows, split=split, champion=champion)
    if champion is not None:
        params["train"]["model"].update(WEAK)
    write_params(root, params)
    refused = _refused(root)
    if refused:
        return Outcome(verdict="refused", gates={}, checks={}, refusal=refused)
    run_modelops(
        "train", "evaluate", "gate data drift", "gate model champion latency edge", "gates"
    )
    return read_outcome(root)


def run_defect(clean: Path, root: Path, name: str, rows: int, seed: int) -> Outcome:
    """What `run_scenario(root, name, rows, seed)` says, rerunning only what the defect changes.

    `clean` is where the clean scenario of the same size and seed already ran; it is copied into
    `root` (the working directory). A defect in the data reruns `prepare` and the data gates it
    is meant for, and the model gates' results stay the clean model's. A worse model keeps the
    clean model as its champion (the one `run_scenario` trains first) and trains, evaluates and
    gates only the candidate.
    """
    defect = DEFECTS[name]
    shutil.copytree(clean, root, dirs_exist_ok=True)
    if defect.params.get("candidate") == "weak":
        champion = root / "champion"
        shutil.copytree(root / "models" / "model", champion)
        params = scenario_params(rows, champion=str(champion))
        params["train"]["model"].update(WEAK)
        write_params(root, params)
        run_modelops("train", "evaluate", "gate model champion latency edge", "gates")
        return read_outcome(root)
    table = defect.make(clean_table(rows, seed), np.random.default_rng(seed + 1))
    table.to_csv(root / DATA, index=False)
    write_params(root, scenario_params(rows, split=defect.params.get("split", "stratified")))
    refused = _refused(root)
    if refused:
        return Outcome(verdict="refused", gates={}, checks={}, refusal=refused)
    run_modelops("gate data drift", "gates")
    return read_outcome(root)


def _refused(root: Path) -> str:
    """The error `prepare` stops with (too little data for a split, say), or ''."""
    import contextlib
    import io

    from modelops.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["prepare"])
    return err.getvalue().strip() if code != 0 else ""


def read_outcome(root: Path) -> Outcome:
    import json

    document = json.loads((root / "reports" / "gates.json").read_text())
    checks: dict[tuple[str, str], set[str]] = {}
    for gate in document["gates"]:
        for check in gate["checks"]:
            checks.setdefault((gate["name"], check["check"]), set()).add(check["status"])
    return Outcome(
        verdict=document["verdict"]["status"],
        gates={gate["name"]: gate["status"] for gate in document["gates"]},
        checks=checks,
    )

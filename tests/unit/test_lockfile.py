"""Reading dvc.lock: output versions, and the fingerprint of what a stage's outputs come from."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from modelops.lockfile import output_versions, stage_inputs

LOCK: dict[str, Any] = {
    "schema": "2.0",
    "stages": {
        "prepare": {
            "cmd": "modelops prepare",
            "deps": [
                {"path": "data/raw", "hash": "md5", "md5": "raw.dir", "size": 3},
                {"path": "src/modelops/data.py", "hash": "md5", "md5": "ddd", "size": 4},
            ],
            "params": {"params.yaml": {"prepare": {"source": "synthetic"}}},
            "outs": [{"path": "data/prepared", "hash": "md5", "md5": "aaa.dir", "size": 10}],
        },
        "train": {
            "cmd": "modelops train",
            "deps": [
                {"path": "data/prepared", "hash": "md5", "md5": "aaa.dir", "size": 10},
                {"path": "src/modelops/model.py", "hash": "md5", "md5": "bbb", "size": 5},
            ],
            "params": {"params.yaml": {"train": {"seed": 42}}},
            "outs": [{"path": "models/model", "hash": "md5", "md5": "ccc.dir", "size": 7}],
        },
    },
}


def _text(lock: dict[str, Any]) -> str:
    return yaml.safe_dump(lock)


def _edited(edit: Callable[[dict[str, Any]], object]) -> str:
    lock = copy.deepcopy(LOCK)
    edit(lock)
    return _text(lock)


def test_output_versions_map_each_output_to_its_md5() -> None:
    assert output_versions(_text(LOCK)) == {"data/prepared": "aaa.dir", "models/model": "ccc.dir"}
    assert output_versions(None) == {}


def test_a_retrain_on_the_same_inputs_has_the_same_fingerprint() -> None:
    def retrain(lock: dict[str, Any]) -> None:
        lock["stages"]["train"]["outs"][0]["md5"] = "new.dir"  # new bytes: timestamps, ids
        lock["stages"]["train"]["deps"].reverse()

    assert stage_inputs(_edited(retrain), "train") == stage_inputs(_text(LOCK), "train")


def test_prepared_data_with_other_bytes_from_the_same_inputs_has_the_same_fingerprint() -> None:
    # Given another machine whose prepared files differ in metadata only (same raw data, code
    # and params), when both fingerprint the model, then they agree.
    def elsewhere(lock: dict[str, Any]) -> None:
        for stage in ("prepare", "train"):
            entry = lock["stages"][stage]
            for item in (*entry.get("deps", []), *entry.get("outs", [])):
                if item["path"] == "data/prepared":
                    item["md5"] = "other.dir"

    assert stage_inputs(_edited(elsewhere)) == stage_inputs(_text(LOCK))


@pytest.mark.parametrize(
    "edit",
    [
        lambda lock: lock["stages"]["prepare"]["deps"][0].update(md5="zzz.dir"),
        lambda lock: lock["stages"]["prepare"]["params"]["params.yaml"]["prepare"].update(
            source="data/raw/x.csv"
        ),
        lambda lock: lock["stages"]["train"]["deps"][1].update(md5="yyy"),
        lambda lock: lock["stages"]["train"]["params"]["params.yaml"]["train"].update(seed=7),
    ],
    ids=["raw data", "prepare params", "train code", "train params"],
)
def test_changed_data_code_or_params_change_the_fingerprint(
    edit: Callable[[dict[str, Any]], object],
) -> None:
    assert stage_inputs(_edited(edit), "train") != stage_inputs(_text(LOCK), "train")


def test_no_lock_or_no_such_stage_has_no_fingerprint() -> None:
    assert stage_inputs(None, "train") is None
    assert stage_inputs(_text(LOCK), "evaluate") is None

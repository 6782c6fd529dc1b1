"""Reading dvc.lock: output versions, and the fingerprint of what a stage ran on."""

from __future__ import annotations

import yaml

from modelops.lockfile import output_versions, stage_inputs

LOCK = {
    "schema": "2.0",
    "stages": {
        "train": {
            "cmd": "modelops train",
            "deps": [
                {"path": "data/prepared", "hash": "md5", "md5": "aaa.dir", "size": 10},
                {"path": "src/modelops/model.py", "hash": "md5", "md5": "bbb", "size": 5},
            ],
            "params": {"params.yaml": {"train": {"seed": 42}}},
            "outs": [{"path": "models/model", "hash": "md5", "md5": "ccc.dir", "size": 7}],
        }
    },
}


def _text(lock: dict) -> str:  # type: ignore[type-arg]
    return yaml.safe_dump(lock)


def test_output_versions_map_each_output_to_its_md5() -> None:
    assert output_versions(_text(LOCK)) == {"models/model": "ccc.dir"}
    assert output_versions(None) == {}


def test_a_retrain_on_the_same_inputs_has_the_same_fingerprint() -> None:
    retrained = yaml.safe_load(_text(LOCK))
    retrained["stages"]["train"]["outs"][0]["md5"] = "ddd.dir"  # new bytes: timestamps, ids
    retrained["stages"]["train"]["deps"].reverse()
    assert stage_inputs(_text(retrained), "train") == stage_inputs(_text(LOCK), "train")


def test_changed_data_code_or_params_change_the_fingerprint() -> None:
    base = stage_inputs(_text(LOCK), "train")
    for edit in (
        lambda lock: lock["stages"]["train"]["deps"][0].update(md5="zzz.dir"),
        lambda lock: lock["stages"]["train"]["deps"][1].update(md5="yyy"),
        lambda lock: lock["stages"]["train"]["params"]["params.yaml"]["train"].update(seed=7),
    ):
        changed = yaml.safe_load(_text(LOCK))
        edit(changed)
        assert stage_inputs(_text(changed), "train") != base


def test_no_lock_or_no_such_stage_has_no_fingerprint() -> None:
    assert stage_inputs(None, "train") is None
    assert stage_inputs(_text(LOCK), "evaluate") is None

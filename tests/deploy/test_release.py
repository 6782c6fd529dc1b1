"""The release state machine: every legal transition, every illegal one, and the file format.

States: no release; stable only; canary at a step; (promoted = stable again; rolled back =
stable only). An illegal request raises with what to do instead and the release is unchanged
(the functions are pure: the old value is never modified).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelops.errors import ReleaseError
from modelops.releases import documents, state
from modelops.releases.state import Canary, Change, Release, Unchanged
from tests.deploy.support import change, changed, model_version

STEPS = (10, 25, 50, 100)
V1, V2, V3 = (model_version(name) for name in ("v1", "v2", "v3"))


def _unchanged(outcome: Release | Unchanged) -> str:
    assert isinstance(outcome, Unchanged), f"expected nothing to do, got {outcome}"
    return outcome.reason


def _stable(model=V1) -> Release:
    return changed(
        state.deploy(Release("production"), model, strategy="canary", steps=STEPS, change=change())
    )


def _canary(weight: int = 10) -> Release:
    """V1 stable and V2 a canary, promoted step by step to `weight`."""
    release = changed(state.deploy(_stable(), V2, strategy="canary", steps=STEPS, change=change()))
    while release.canary is not None and release.canary.weight < weight:
        release = state.promote(release, steps=STEPS, change=change())
    assert release.canary is not None
    assert release.canary.weight == weight
    return release


# Legal transitions ----------------------------------------------------------------------------


def test_the_first_model_of_an_environment_is_stable_even_with_the_canary_strategy() -> None:
    release = _stable()
    assert release.stable == V1
    assert release.canary is None
    assert release.traffic == {"stable": 100}
    assert [(e.action, e.version, e.traffic) for e in release.history] == [
        ("deploy", V1.version, {"stable": 100})
    ]


def test_a_direct_environment_replaces_the_stable_model_and_remembers_the_old_one() -> None:
    staging = changed(
        state.deploy(Release("staging"), V1, strategy="direct", steps=STEPS, change=change())
    )
    replaced = changed(state.deploy(staging, V2, strategy="direct", steps=STEPS, change=change()))
    assert replaced.stable == V2
    assert replaced.canary is None
    assert replaced.previous == (V1,)


def test_a_new_model_starts_a_canary_at_the_first_step() -> None:
    release = _canary()
    assert release.canary == Canary(V2, 10)
    assert release.traffic == {"stable": 90, "canary": 10}
    assert release.history[-1].action == "start-canary"


def test_promote_walks_every_step_then_makes_the_canary_stable() -> None:
    release = _canary()
    weights = []
    while release.canary is not None:
        release = state.promote(release, steps=STEPS, change=change("healthy"))
        weights.append(release.canary.weight if release.canary else "stable")
    assert weights == [25, 50, "stable"]
    assert release.stable == V2
    assert release.previous == (V1,)
    assert [e.action for e in release.history][-3:] == ["promote", "promote", "complete"]
    assert release.history[-1].traffic == {"stable": 100}


def test_steps_without_100_complete_after_the_last_one() -> None:
    release = _canary(50)
    completed = state.promote(release, steps=(10, 25, 50), change=change())
    assert completed.stable == V2
    assert completed.canary is None


def test_rollback_removes_the_canary_and_keeps_the_stable_model() -> None:
    release = state.rollback(_canary(25), change=change("error rate up", by="bob"))
    assert release.stable == V1
    assert release.canary is None
    assert release.traffic == {"stable": 100}
    event = release.history[-1]
    assert (event.action, event.version, event.by, event.reason) == (
        "rollback",
        V2.version,
        "bob",
        "error rate up",
    )


def test_a_rolled_back_model_is_not_deployed_again_unless_retried_on_purpose() -> None:
    rolled_back = state.rollback(_canary(), change=change())
    assert rolled_back.rolled_back == (V2,)
    reason = _unchanged(
        state.deploy(rolled_back, V2, strategy="canary", steps=STEPS, change=change())
    )
    assert re.search(r"was taken out of production .*--retry", reason), reason
    again = changed(
        state.deploy(rolled_back, V2, strategy="canary", steps=STEPS, change=change(), retry=True)
    )
    assert again.canary == Canary(V2, 10)
    assert again.rolled_back == (), "retried: no longer marked"


def test_a_retry_records_the_commit_that_trained_the_model_not_the_current_one() -> None:
    # Given V2 trained at its commit and rolled back, when it is retried from a later checkout
    # (whose HEAD is another commit), then the release still names the commit that trained it.
    rolled_back = state.rollback(_canary(), change=change())
    later = replace(V2, git_commit="f" * 40, mlflow_run_id=None)
    again = changed(
        state.deploy(
            rolled_back, later, strategy="canary", steps=STEPS, change=change(), retry=True
        )
    )
    assert again.canary is not None
    assert again.canary.model.git_commit == V2.git_commit != later.git_commit


def test_a_retrained_copy_of_a_rolled_back_model_is_recognised_by_its_training_inputs() -> None:
    trained = replace(V2, training_inputs="inputs-2")
    started = changed(
        state.deploy(_stable(), trained, strategy="canary", steps=STEPS, change=change())
    )
    rolled_back = state.rollback(started, change=change())
    retrained = replace(model_version("v2-retrained"), training_inputs="inputs-2")
    reason = _unchanged(
        state.deploy(rolled_back, retrained, strategy="canary", steps=STEPS, change=change())
    )
    assert f"trained from the same inputs as {V2.version}" in reason


def test_a_retrain_from_the_same_inputs_is_nothing_new_to_deploy() -> None:
    stable = changed(
        state.deploy(
            Release("staging"),
            replace(V1, training_inputs="inputs-1"),
            strategy="direct",
            steps=STEPS,
            change=change(),
        )
    )
    retrained = replace(model_version("v1-retrained"), training_inputs="inputs-1")
    reason = _unchanged(
        state.deploy(stable, retrained, strategy="direct", steps=STEPS, change=change())
    )
    assert re.search(r"trained from the same inputs .* nothing new", reason), reason
    unknown = replace(model_version("v1-elsewhere"), training_inputs=None)
    deployed = changed(
        state.deploy(stable, unknown, strategy="direct", steps=STEPS, change=change())
    )
    assert deployed.stable == unknown, "without a fingerprint only the bytes decide"


def test_restore_brings_back_the_model_a_completed_canary_replaced() -> None:
    completed = state.promote(_canary(50), steps=STEPS, change=change())
    restored = changed(state.restore(completed, V1.version, change=change("bad in production")))
    assert restored.stable == V1
    assert restored.previous == (V2,)
    assert restored.history[-1].action == "restore"


def test_a_merge_after_a_restore_does_not_bring_back_the_model_moved_away_from() -> None:
    # Given V2 completed its canary and was then restored away from (back to V1), when main's
    # model (still V2) is deployed again by the next merge, then production keeps V1.
    completed = state.promote(_canary(50), steps=STEPS, change=change())
    restored = changed(state.restore(completed, V1.version, change=change("bad in production")))
    assert restored.rolled_back == (V2,)
    reason = _unchanged(state.deploy(restored, V2, strategy="canary", steps=STEPS, change=change()))
    assert "restored away from" in reason
    retried = changed(
        state.deploy(restored, V2, strategy="canary", steps=STEPS, change=change(), retry=True)
    )
    assert retried.canary == Canary(V2, 10)
    back = changed(state.restore(restored, V2.version, change=change("it was fine after all")))
    assert back.stable == V2
    assert back.rolled_back == (V1,), "restoring V2 on purpose takes V1 out instead"


def test_previous_models_are_bounded_and_never_repeat_the_stable_one() -> None:
    release = Release("staging")
    for index in range(state.KEEP_PREVIOUS + 3):
        model = model_version(f"m{index}")
        release = changed(
            state.deploy(release, model, strategy="direct", steps=STEPS, change=change())
        )
    assert len(release.previous) == state.KEEP_PREVIOUS
    assert release.stable not in release.previous
    restored = changed(state.restore(release, release.previous[-1].version, change=change()))
    assert restored.stable not in restored.previous
    assert len(restored.rolled_back) <= state.KEEP_PREVIOUS


def test_every_step_records_a_reason() -> None:
    with pytest.raises(ReleaseError, match="records a reason"):
        Change(at="2026-12-01T00:00:00Z", by="alice", reason="  ")


def test_next_step_names_the_next_weight_or_none_for_completion() -> None:
    assert state.next_step(10, STEPS) == 25
    assert state.next_step(50, STEPS) is None
    assert state.next_step(25, (10, 25)) is None


# Illegal transitions: a clear message, and the release is unchanged ---------------------------


@pytest.mark.parametrize(
    ("name", "release", "attempt", "message"),
    [
        (
            "promote without a canary",
            _stable(),
            lambda r: state.promote(r, steps=STEPS, change=change()),
            "no canary to promote",
        ),
        (
            "promote with no release at all",
            Release("production"),
            lambda r: state.promote(r, steps=STEPS, change=change()),
            "no canary to promote",
        ),
        (
            "start a canary while one runs",
            _canary(),
            lambda r: state.deploy(r, V3, strategy="canary", steps=STEPS, change=change()),
            "is running a canary (",
        ),
        (
            "roll back without a canary",
            _stable(),
            lambda r: state.rollback(r, change=change()),
            "no canary to roll back",
        ),
        (
            "restore while a canary runs",
            _canary(),
            lambda r: state.restore(r, V1.version, change=change()),
            "roll it back first",
        ),
        (
            "restore a model that was never stable here",
            _stable(),
            lambda r: state.restore(r, V3.version, change=change()),
            "has no previous model",
        ),
        (
            "a model URI that is not immutable",
            _stable(),
            lambda r: state.deploy(
                r,
                replace(V2, model_uri="s3://bucket/churn/latest"),
                strategy="canary",
                steps=STEPS,
                change=change(),
            ),
            "is not immutable",
        ),
        (
            "a model hash that is not a sha256",
            Release("staging"),
            lambda r: state.deploy(
                r,
                replace(V1, model_hash="abc", model_uri="s3://b/abc"),
                strategy="direct",
                steps=STEPS,
                change=change(),
            ),
            "sha256",
        ),
    ],
)
def test_illegal_transitions_fail_clearly_and_change_nothing(name, release, attempt, message):
    before = documents.to_document(release)
    with pytest.raises(ReleaseError, match=message.replace("(", r"\(")):
        attempt(release)
    assert documents.to_document(release) == before, f"{name}: the release must be unchanged"


@pytest.mark.parametrize(
    ("release", "attempt"),
    [
        (_stable(), lambda r: state.deploy(r, V1, strategy="canary", steps=STEPS, change=change())),
        (_canary(), lambda r: state.deploy(r, V2, strategy="canary", steps=STEPS, change=change())),
        (_stable(), lambda r: state.restore(r, V1.version, change=change())),
    ],
    ids=["stable again", "canary again", "restore the stable one"],
)
def test_asking_for_the_current_state_is_nothing_to_do_not_an_error(release, attempt):
    assert "already the" in _unchanged(attempt(release))


# The release file ------------------------------------------------------------------------------


def test_a_release_survives_a_round_trip_through_its_document() -> None:
    release = state.promote(_canary(), steps=STEPS, change=change())
    release = replace(release, previous=(V3,), rolled_back=(replace(V1, training_inputs="i"),))
    document = documents.to_document(release)
    assert list(document) == [
        "environment",
        "stable",
        "canary",
        "traffic",
        "previous",
        "rolled_back",
        "history",
    ]
    assert document["traffic"] == {"stable": 75, "canary": 25}
    assert documents.from_document(document, source="x.yaml") == release


def test_an_empty_release_round_trips_too() -> None:
    empty = Release("staging")
    assert documents.from_document(documents.to_document(empty), source="x.yaml") == empty


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(traffic={"stable": 50, "canary": 50}), "does not match the models"),
        (lambda d: d["canary"].update(weight=100), "weight from 1 to 99"),
        (lambda d: d.update(stable=None, traffic={}), "needs a stable model"),
        (lambda d: d["stable"].pop("model_uri"), "not a release file .stable: .*model_uri"),
        (lambda d: d.update(history=[{"at": "now"}]), r"not a release file \(history\[0\]: "),
        (lambda d: d["stable"].update(model_hash="abc"), r"stable.model_hash: not a sha256"),
        (lambda d: d["canary"].update(model_hash=None), r"canary.model_hash: not a sha256"),
        (lambda d: d["canary"].update(weight="ten"), r"canary.weight: "),
        (lambda d: d.update(stable=["v1"]), r"stable: a mapping, got list"),
        (lambda d: d.clear() or d.update(environment=None, history="x"), r"history\[0\]"),
    ],
    ids=[
        "traffic edited",
        "canary at 100",
        "canary without stable",
        "field missing",
        "bad event",
        "hash not sha256",
        "canary hash missing",
        "weight not a number",
        "model not a mapping",
        "history not a list",
    ],
)
def test_a_hand_edited_release_file_is_refused_with_how_to_fix_it(edit, message):
    document = documents.to_document(_canary())
    edit(document)
    with pytest.raises(ReleaseError, match=message):
        documents.from_document(document, source="manifests/releases/production.yaml")


@pytest.mark.parametrize("text", ["", "- a list\n", "just text\n", "stable: [\n"])
def test_a_release_file_that_is_not_a_mapping_is_named_not_a_traceback(
    tmp_path: Path, text: str
) -> None:
    from modelops.params import Params
    from modelops.releases.files import load_releases, release_file
    from tests.support import template_params

    params = Params.model_validate(template_params())
    path = tmp_path / release_file("production")
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ReleaseError, match=r"manifests/releases/production.yaml: "):
        load_releases(tmp_path, params)


def test_describe_says_what_serves_the_environment() -> None:
    assert Release("staging").describe() == "staging: no release yet"
    assert _stable().describe() == f"production: stable {V1.version} (100%)"
    assert _canary(25).describe() == (
        f"production: stable {V1.version} (75%), canary {V2.version} (25%)"
    )


# Release files cannot be edited around the history ------------------------------------------


def _consistent() -> Release:
    """V1 stable, V2 a canary at 25%: a release the commands made."""
    return _canary(25)


def test_a_release_the_commands_made_follows_from_its_history() -> None:
    for release in (
        _stable(),
        _canary(),
        _consistent(),
        state.rollback(_canary(), change=change()),
    ):
        state.check_release(release, steps=STEPS, source="x.yaml")
    completed = state.promote(_canary(50), steps=STEPS, change=change())
    restored = changed(state.restore(completed, V1.version, change=change()))
    state.check_release(restored, steps=STEPS, source="x.yaml")


def test_a_hand_edited_weight_that_is_not_a_step_is_refused_with_the_fix() -> None:
    release = _consistent()
    assert release.canary is not None
    edited = replace(release, canary=replace(release.canary, weight=30))
    with pytest.raises(ReleaseError, match=r"30%, which is not one of canary_steps .*git checkout"):
        state.check_release(edited, steps=STEPS, source="manifests/releases/production.yaml")


@pytest.mark.parametrize(
    "edit",
    [
        # The weight moved to another step by hand (traffic kept consistent with it).
        lambda r: replace(r, canary=replace(r.canary, weight=50)),
        # The stable model swapped for another without a deploy.
        lambda r: replace(r, stable=V3),
        # The canary's model swapped.
        lambda r: replace(r, canary=replace(r.canary, model=V3)),
        # History trimmed so that the promotion to 25% never happened.
        lambda r: replace(r, history=r.history[:-1]),
        # A promotion inserted that lowers the traffic.
        lambda r: replace(
            r, history=(*r.history, replace(r.history[-1], traffic={"stable": 90, "canary": 10}))
        ),
    ],
    ids=["weight", "stable swapped", "canary swapped", "history trimmed", "bad promote"],
)
def test_a_release_whose_state_does_not_follow_from_its_history_is_refused(edit: Any) -> None:
    edited = edit(_consistent())
    with pytest.raises(ReleaseError, match=r"history.*git checkout <commit> --"):
        state.check_release(edited, steps=STEPS, source="manifests/releases/production.yaml")


def test_a_previous_model_that_never_served_is_refused() -> None:
    edited = replace(_consistent(), previous=(V3,))
    with pytest.raises(ReleaseError, match="never served here"):
        state.check_release(edited, steps=STEPS, source="x.yaml")


def test_an_unknown_action_in_the_history_is_not_a_release_file() -> None:
    document = documents.to_document(_consistent())
    document["history"][-1]["action"] = "teleport"  # type: ignore[typeddict-item]  # the bad input
    with pytest.raises(ReleaseError, match="not a release file"):
        documents.from_document(document, source="x.yaml")


# Shadow first: mirrored traffic before real traffic -------------------------------------------


def _shadow() -> Release:
    """V1 stable and V2 a shadow: deployed with shadow_first."""
    return changed(
        state.deploy(
            _stable(), V2, strategy="canary", steps=STEPS, change=change(), shadow_first=True
        )
    )


def test_with_shadow_first_a_new_model_starts_as_a_shadow_that_takes_no_traffic() -> None:
    release = _shadow()
    assert release.stable == V1
    assert release.canary == Canary(V2, 0, shadow=True)
    assert release.traffic == {"stable": 100, "shadow": 0}
    assert (release.history[-1].action, release.history[-1].traffic) == (
        "start-shadow",
        {"stable": 100, "shadow": 0},
    )
    assert release.describe() == (
        f"production: stable {V1.version} (100%), shadow {V2.version} (mirrored, 0%)"
    )


def test_shadow_first_needs_a_stable_model_to_mirror_and_the_canary_strategy() -> None:
    first = changed(
        state.deploy(
            Release("production"),
            V1,
            strategy="canary",
            steps=STEPS,
            change=change(),
            shadow_first=True,
        )
    )
    assert (first.stable, first.canary) == (V1, None), "nothing to compare with: stable at once"
    direct = changed(
        state.deploy(first, V2, strategy="direct", steps=STEPS, change=change(), shadow_first=True)
    )
    assert (direct.stable, direct.canary) == (V2, None)


def test_promote_makes_a_shadow_a_canary_at_the_first_step_then_walks_the_steps() -> None:
    release = state.promote(_shadow(), steps=STEPS, change=change("shadow agrees with stable"))
    assert release.canary == Canary(V2, 10), "a canary now: shadow is off"
    assert release.traffic == {"stable": 90, "canary": 10}
    event = release.history[-1]
    assert (event.action, event.traffic, event.reason) == (
        "promote",
        {"stable": 90, "canary": 10},
        "shadow agrees with stable",
    )
    walked: Release = release  # a name mypy has not narrowed to "a canary" above
    while walked.canary is not None:
        walked = state.promote(walked, steps=STEPS, change=change())
    assert walked.stable == V2
    assert [e.action for e in walked.history] == [
        "deploy",
        "start-shadow",
        "promote",
        "promote",
        "promote",
        "complete",
    ]
    state.check_release(release, steps=STEPS, source="x.yaml")


def test_a_shadow_with_a_single_step_of_100_becomes_stable_at_the_first_promote() -> None:
    shadow = changed(
        state.deploy(
            _stable(), V2, strategy="canary", steps=(100,), change=change(), shadow_first=True
        )
    )
    assert shadow.canary == Canary(V2, 0, shadow=True), "mirrored first, even with no steps"
    completed = state.promote(shadow, steps=(100,), change=change())
    assert (completed.stable, completed.canary) == (V2, None)
    assert completed.history[-1].action == "complete"
    state.check_release(completed, steps=(100,), source="x.yaml")


def test_rollback_removes_a_shadow_and_a_merge_does_not_bring_it_back() -> None:
    release = state.rollback(_shadow(), change=change("disagrees with stable on 8% of rows"))
    assert (release.stable, release.canary, release.rolled_back) == (V1, None, (V2,))
    assert release.traffic == {"stable": 100}
    assert (release.history[-1].action, release.history[-1].version) == ("rollback", V2.version)
    again = state.deploy(
        release, V2, strategy="canary", steps=STEPS, change=change(), shadow_first=True
    )
    assert "was taken out of production" in _unchanged(again)
    state.check_release(release, steps=STEPS, source="x.yaml")


def test_while_a_shadow_runs_a_deploy_or_restore_is_refused_and_the_same_model_is_unchanged() -> (
    None
):
    release = _shadow()
    with pytest.raises(ReleaseError, match=r"is running a shadow \(.*mirrored\): promote or roll"):
        state.deploy(
            release, V3, strategy="canary", steps=STEPS, change=change(), shadow_first=True
        )
    with pytest.raises(ReleaseError, match=r"is running a shadow .*roll it back first"):
        state.restore(release, V1.version, change=change())
    same = state.deploy(release, V2, strategy="canary", steps=STEPS, change=change())
    assert "already the shadow in production" in _unchanged(same)


def test_a_shadow_round_trips_through_its_document_and_a_canary_document_is_as_before() -> None:
    shadow = documents.to_document(_shadow())
    entry = shadow["canary"]
    assert entry is not None
    assert entry["weight"] == 0
    assert entry["shadow"] is True
    assert shadow["traffic"] == {"stable": 100, "shadow": 0}
    assert documents.from_document(shadow, source="x.yaml") == _shadow()
    canary_entry = documents.to_document(_canary())["canary"]
    assert canary_entry is not None
    assert "shadow" not in canary_entry, "a canary's entry is unchanged"


def test_a_release_file_written_before_shadows_existed_still_loads() -> None:
    # Given a release file as the commands wrote it before shadow_first (no `shadow` key), when
    # read, then it is the same canary and its history replays.
    written_before = yaml.safe_load(
        f"""
environment: production
stable: {json.dumps(asdict(V1))}
canary: {json.dumps({"weight": 10, **asdict(V2)})}
traffic: {{stable: 90, canary: 10}}
previous: []
rolled_back: []
history:
- {{at: "2026-11-26T10:00:00Z", by: alice, action: deploy, version: {V1.version},
   traffic: {{stable: 100}}, reason: first}}
- {{at: "2026-11-26T11:00:00Z", by: alice, action: start-canary, version: {V2.version},
   traffic: {{stable: 90, canary: 10}}, reason: second}}
"""
    )
    release = documents.from_document(written_before, source="production.yaml")
    assert release.canary == Canary(V2, 10, shadow=False)
    state.check_release(release, steps=STEPS, source="production.yaml")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["canary"].update(weight=10), "a shadow takes no traffic"),
        (
            lambda d: (
                d["canary"].update(weight=10),
                d.update(traffic={"stable": 90, "shadow": 10}),
            ),
            "a shadow takes no traffic",
        ),
        (lambda d: d["canary"].pop("shadow"), "weight from 1 to 99"),
        (lambda d: d["canary"].update(shadow="yes"), "not a release file"),
        (lambda d: d.update(traffic={"stable": 100}), "does not match the models"),
    ],
    ids=["weight", "weight and traffic", "shadow removed", "not a boolean", "traffic"],
)
def test_a_hand_edited_shadow_in_a_release_file_is_refused(edit, message):
    document = documents.to_document(_shadow())
    edit(document)
    with pytest.raises(ReleaseError, match=message):
        documents.from_document(document, source="manifests/releases/production.yaml")


@pytest.mark.parametrize(
    "edit",
    [
        # A shadow given traffic in place (a weight that is not 0).
        lambda r: replace(r, canary=replace(r.canary, weight=10)),
        # The shadow made a canary without a promote.
        lambda r: replace(r, canary=replace(r.canary, weight=10, shadow=False)),
        # A canary at 0% that is not a shadow.
        lambda r: replace(r, canary=replace(r.canary, shadow=False)),
        # The start-shadow entry's traffic edited to give it a share.
        lambda r: replace(
            r,
            history=(*r.history[:-1], replace(r.history[-1], traffic={"stable": 90, "shadow": 10})),
        ),
        # Recorded as a canary started at 0% instead of a shadow.
        lambda r: replace(
            r,
            history=(*r.history[:-1], replace(r.history[-1], action="start-canary")),
        ),
    ],
    ids=["weight", "made a canary", "canary at 0", "shadow traffic", "start-canary at 0"],
)
def test_a_shadow_that_does_not_follow_from_its_history_is_refused(edit: Any) -> None:
    edited = edit(_shadow())
    with pytest.raises(ReleaseError, match=r"git checkout <commit> --"):
        state.check_release(edited, steps=STEPS, source="manifests/releases/production.yaml")


def test_a_shadow_and_its_promotion_and_rollback_follow_from_their_history() -> None:
    shadow = _shadow()
    for release in (
        shadow,
        state.promote(shadow, steps=STEPS, change=change()),
        state.rollback(shadow, change=change()),
    ):
        state.check_release(release, steps=STEPS, source="x.yaml")


# Batch: a new model replaces the one the scheduled runs use -----------------------------------


def test_a_batch_environment_takes_each_new_model_at_once_whatever_the_steps() -> None:
    # Given a batch environment (no traffic, so no canary), when two models are deployed, then
    # the second replaces the first at once and the first can be gone back to.
    nightly = changed(
        state.deploy(Release("nightly"), V1, strategy="batch", steps=(), change=change())
    )
    replaced = changed(state.deploy(nightly, V2, strategy="batch", steps=STEPS, change=change()))
    assert (replaced.stable, replaced.canary, replaced.previous) == (V2, None, (V1,))
    assert [e.action for e in replaced.history] == ["deploy", "deploy"]
    state.check_release(replaced, steps=(), source="manifests/releases/nightly.yaml")
    back = changed(state.restore(replaced, V1.version, change=change("bad scores")))
    assert (back.stable, back.rolled_back) == (V1, (V2,)), "the model left is taken out"
    assert "was taken out of nightly" in _unchanged(
        state.deploy(back, V2, strategy="batch", steps=(), change=change())
    )

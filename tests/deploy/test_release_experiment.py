"""An A/B experiment's steps in a release: start, conclude, stop, and what they refuse."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from modelops.errors import ReleaseError
from modelops.releases import documents, state
from modelops.releases.experiment import conclude_experiment, start_experiment, stop_experiment
from modelops.releases.state import Experiment, Release, Unchanged, Variant
from tests.deploy.support import change, changed, model_version

STEPS = (10, 25, 50, 100)
V1, V2, V3 = (model_version(name) for name in ("v1", "v2", "v3"))
SOURCE = "manifests/releases/production.yaml"


def _stable() -> Release:
    return changed(
        state.deploy(Release("production"), V1, strategy="canary", steps=STEPS, change=change())
    )


def _offer(*candidates: tuple[str, state.ModelVersion, int], control: int = 50) -> Experiment:
    arms = candidates or (("b", V2, 50),)
    return Experiment(
        name="offer-v2",
        salt="offer-v2",
        unit="customer_id",
        variants=(Variant("stable", V1, control), *(Variant(n, m, s) for n, m, s in arms)),
    )


def _running(experiment: Experiment | None = None) -> Release:
    return changed(start_experiment(_stable(), experiment or _offer(), change=change()))


def _round_trip(release: Release) -> Release:
    text = yaml.safe_dump(documents.to_document(release), sort_keys=False)
    read = documents.from_document(yaml.safe_load(text), source=SOURCE)
    state.check_release(read, steps=STEPS, source=SOURCE)
    return read


def test_start_splits_the_units_and_records_every_variants_version() -> None:
    release = _running()
    assert release.traffic == {"stable": 50, "b": 50}
    assert release.describe() == (
        f"production: experiment offer-v2 (stable {V1.version} 50%, b {V2.version} 50%)"
    )
    event = release.history[-1]
    assert (event.action, event.version) == ("start-experiment", V1.version)
    assert event.variants == {"stable": V1.version, "b": V2.version}
    assert _round_trip(release) == release


def test_the_release_file_shows_the_experiment_between_the_models_and_the_traffic() -> None:
    keys = list(documents.to_document(_running()))
    assert keys[:5] == ["environment", "stable", "canary", "experiment", "traffic"]
    assert "experiment" not in documents.to_document(_stable()), "unchanged without one"


def test_conclude_on_a_candidate_makes_it_stable_and_takes_the_losers_out() -> None:
    three = _offer(("b", V2, 30), ("c", V3, 30), control=40)
    release = conclude_experiment(_running(three), "c", change=change("c earns more"))
    assert release.stable == V3
    assert release.experiment is None
    assert release.traffic == {"stable": 100}
    assert release.previous[0] == V1, "restore can bring the old stable back"
    assert V2 in release.rolled_back, "a loser is not redeployed by a merge by itself"
    assert _round_trip(release) == release
    again = state.deploy(release, V2, strategy="canary", steps=STEPS, change=change())
    assert isinstance(again, Unchanged)


def test_conclude_on_stable_keeps_it_and_stop_ends_with_nothing_taken_out() -> None:
    kept = conclude_experiment(_running(), "stable", change=change("b is no better"))
    assert (kept.stable, kept.experiment) == (V1, None)
    assert V2 in kept.rolled_back
    stopped = stop_experiment(_running(), change=change("SRM: a client drops the unit"))
    assert (stopped.stable, stopped.experiment) == (V1, None)
    assert V2 not in stopped.rolled_back, "a stop judges no model"
    assert stopped.history[-1].action == "stop-experiment"
    assert _round_trip(kept) == kept
    assert _round_trip(stopped) == stopped


def test_starting_the_same_experiment_twice_changes_nothing() -> None:
    outcome = start_experiment(_running(), _offer(), change=change())
    assert isinstance(outcome, Unchanged)
    assert "already" in outcome.reason


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        (Release("production"), "has no stable model to compare with"),
        (None, "is running a canary"),
    ],
)
def test_start_needs_a_stable_model_and_no_canary(release: Release | None, expected: str) -> None:
    if release is None:
        release = changed(
            state.deploy(_stable(), V2, strategy="canary", steps=STEPS, change=change())
        )
        offer = _offer(("b", V3, 50))
    else:
        offer = _offer()
    with pytest.raises(ReleaseError, match=expected):
        start_experiment(release, offer, change=change())


def test_a_candidate_that_is_the_stable_model_is_refused() -> None:
    with pytest.raises(ReleaseError, match="stable model already"):
        start_experiment(_stable(), _offer(("b", V1, 50)), change=change())


def test_nothing_else_changes_the_traffic_while_an_experiment_runs() -> None:
    release = _running()
    with pytest.raises(ReleaseError, match="cannot deploy a new model until it ends"):
        state.deploy(release, V3, strategy="canary", steps=STEPS, change=change())
    with pytest.raises(ReleaseError, match=r"cannot promote until it ends\. Conclude it"):
        state.promote(release, steps=STEPS, change=change())
    with pytest.raises(ReleaseError, match="cannot roll back until it ends"):
        state.rollback(release, change=change())
    with pytest.raises(ReleaseError, match="cannot restore"):
        state.restore(release, V1.version, change=change())
    with pytest.raises(ReleaseError, match="not a variant"):
        conclude_experiment(release, "z", change=change())


def test_conclude_or_stop_without_an_experiment_says_how_to_start_one() -> None:
    with pytest.raises(ReleaseError, match="runs no experiment to stop"):
        stop_experiment(_stable(), change=change())


def test_a_hand_edited_split_or_history_is_refused() -> None:
    release = _running()
    document = documents.to_document(release)
    document["experiment"]["variants"][1]["share"] = 60
    with pytest.raises(ReleaseError, match="add up to 100"):
        documents.from_document(document, source=SOURCE)
    swapped = replace(
        release,
        experiment=replace(_offer(), variants=(Variant("stable", V1, 50), Variant("b", V3, 50))),
    )
    with pytest.raises(ReleaseError, match="does not follow from its history"):
        state.check_release(swapped, steps=STEPS, source=SOURCE)
    dropped = replace(release, history=release.history[:-1], experiment=release.experiment)
    with pytest.raises(ReleaseError, match="does not follow from its history"):
        state.check_release(dropped, steps=STEPS, source=SOURCE)

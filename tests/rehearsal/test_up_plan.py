"""What `modelops up` decides before anything starts, as tables (pure: no process, no file):
the split, the servers' tracks and notes, the refusals, the shift, and what it prints."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from modelops.data import Schema
from modelops.errors import RehearsalError
from modelops.rehearsal.plan import (
    Served,
    UpRequest,
    check_request,
    parse_shift,
    plan_up,
    to_text,
    traffic_config,
)
from modelops.releases.state import Canary, ModelVersion
from tests.rehearsal.support import UP_REQUEST

SCHEMA = Schema(
    label="churned",
    positive_label="1",
    negative_label="0",
    categorical=("plan",),
    numeric=("tenure_months", "monthly_charges"),
)
REQUEST = UP_REQUEST
STABLE = Served(Path("/store/a"), "a" * 64, "release v1")
TRIAL = Served(Path("/store/b"), "b" * 64, "release v2")
V2 = ModelVersion("v2", "model-store/churn/" + "b" * 64, "b" * 64, "d", "0" * 40)


def _request(**changes: Any) -> UpRequest:
    return dataclasses.replace(REQUEST, **changes)


# (the release's canary, --canary-percent, a release exists) ->
#     (percent, follows the release, second track, second server's note)
SPLITS = [
    (Canary(V2, 25), None, True, 25, True, "canary", "release v2"),
    (Canary(V2, 25), 50, True, 50, False, "canary", "release v2"),
    (
        Canary(V2, 0, shadow=True),
        None,
        True,
        0,
        True,
        "shadow",
        "release v2, a shadow: it gets a copy of every request (restart after promoting it)",
    ),
    (None, None, True, 10, True, "canary", "the same model: production runs no canary"),
    (None, None, False, 10, False, "canary", "the same model: production runs no canary"),
    (None, 0, True, 0, False, "canary", "the same model: production runs no canary"),
]


@pytest.mark.parametrize(
    ("canary", "option", "released", "percent", "follow", "track", "note"), SPLITS
)
def test_the_split_follows_the_release_unless_given_and_a_shadow_gets_its_own_track(
    canary: Canary | None,
    option: int | None,
    released: bool,
    percent: int,
    follow: bool,
    track: str,
    note: str,
) -> None:
    rehearsal = plan_up(
        _request(canary_percent=option),
        schema=SCHEMA,
        canary=canary,
        released=released,
        stable=STABLE,
        trial=TRIAL,
    )
    assert rehearsal.traffic.canary_percent == percent
    assert rehearsal.follow is follow
    assert [s.track for s in rehearsal.servers] == ["stable", track]
    assert rehearsal.notes == ("release v1", note)
    assert [s.model_version for s in rehearsal.servers] == ["a" * 12, "b" * 12]
    config = traffic_config(
        rehearsal, rows_file=Path("/t.parquet"), ledger=Path("/l"), release_file=Path("/r.yaml")
    )
    following = follow and track != "shadow"
    assert config["release_file"] == ("/r.yaml" if following else None)
    assert config["mirror"] == ("shadow" if track == "shadow" else None)


# changes to the request -> the refusal
REFUSALS = [
    ({"env": "moon"}, "--env moon is not one of deploy.environments (production, staging)"),
    ({"time_scale": 0.5}, "--time-scale must be at least 1, got 0.5"),
    ({"canary_errors": 1.5}, "--canary-errors must be from 0 to 1, got 1.5"),
    ({"canary_errors": -0.1}, "--canary-errors must be from 0 to 1, got -0.1"),
]


@pytest.mark.parametrize(("changes", "message"), REFUSALS)
def test_what_cannot_be_rehearsed_is_refused_before_anything_is_fetched(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(RehearsalError) as refused:
        check_request(_request(**changes), ("production", "staging"))
    assert str(refused.value) == message


def test_a_request_that_can_be_rehearsed_passes() -> None:
    check_request(_request(canary_errors=1.0, time_scale=1.0), ("production",))


# --shift -> (feature, factor), or the refusal
SHIFTS = [
    (None, None),
    ("tenure_months=3", ("tenure_months", 3.0)),
    ("plan=0.5", ("plan", 0.5)),
    ("tenure_months", "--shift must be FEATURE=FACTOR"),
    ("height=2", "with one of the model's features (plan, tenure_months, monthly_charges)"),
    ("plan=lots", "got 'plan=lots' (e.g. --shift plan=3)"),
    ("plan=nan", "a number, got 'plan=nan'"),
]


@pytest.mark.parametrize(("shift", "expected"), SHIFTS)
def test_a_shift_is_one_of_the_models_features_and_a_number(
    shift: str | None, expected: tuple[str, float] | str | None
) -> None:
    request = _request(shift=shift)
    if isinstance(expected, str):
        with pytest.raises(RehearsalError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            parse_shift(request, SCHEMA.features)
        return
    parsed = parse_shift(request, SCHEMA.features)
    assert ((parsed.feature, parsed.factor) if parsed else None) == expected
    if parsed is not None:
        assert (parsed.at_seconds, parsed.seconds) == (60.0, 120.0)


def test_a_shift_beyond_the_run_is_refused_by_the_traffic_plan() -> None:
    with pytest.raises(RehearsalError, match="must end within the run"):
        plan_up(
            _request(shift="plan=2", minutes=2.0),
            schema=SCHEMA,
            canary=None,
            released=False,
            stable=STABLE,
            trial=TRIAL,
        )


def test_what_up_prints_names_every_address_and_what_to_expect() -> None:
    rehearsal = plan_up(
        _request(shift="plan=2", canary_errors=0.2),
        schema=SCHEMA,
        canary=Canary(V2, 25),
        released=True,
        stable=STABLE,
        trial=TRIAL,
    )
    text = to_text(rehearsal, [11, 12, 13], state=".rehearsal")
    lines = text.splitlines()
    assert lines[0] == (
        "up: 3 processes (PIDs 11, 12, 13); traffic for 10 min at 5 requests/s, 25% to the "
        "canary, truth after 30 s"
    )
    assert "  Prometheus  http://127.0.0.1:9090  (targets:" in text
    assert "production's rules, windows divided by 60)" in text
    assert (
        "  shift       plan: a category training never saw, from 60 s for 120 s: "
        "ModelopsFeatureDrift and ModelopsUnseenCategories should fire, then resolve"
    ) in lines
    assert "  errors      the canary fails 20% of predictions:" in text
    assert "  split       follows manifests/releases/production.yaml" in text
    assert "  canary      http://127.0.0.1:9001  model bbbbbbbbbbbb (release v2)" in text
    assert "# bins of tenure_months by track" in text, "the first numeric feature"
    assert lines[-1] == "Stop everything with: make down"


def test_every_option_of_up_is_a_field_of_the_request_and_back() -> None:
    from modelops.cli import _parser

    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = {a.dest for a in commands.choices["up"]._actions if a.dest != "help"}
    assert options == {field.name for field in dataclasses.fields(UpRequest)}

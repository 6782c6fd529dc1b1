"""`canary plan` without Prometheus (pure): traffic and `canary:` params -> each step's time,
whether the rollout fits `max_step_duration`, the exit code and the printed plan."""

from __future__ import annotations

import pytest

from modelops.canary.evidence import TrackCounts
from modelops.canary.plan import Traffic, plan_rollout, to_text, window_seconds
from modelops.errors import CanaryError, ExitCode
from modelops.params import CanaryParams
from tests.canary.test_judge import DRIFT, track

STEPS = (10, 25, 50, 100)


def _traffic(per_second: float, *, stable: bool = True) -> Traffic:
    hour = track(per_second * 3600)
    return Traffic(
        namespace="models-prod",
        window="1h",
        stable=hour if stable else TrackCounts(),
        canary=TrackCounts() if stable else hour,
        covered=3600.0,
    )


# (requests/s, max_step_duration) -> (fits, exit code, a line of the printed plan)
PLANS = [
    (50.0, "24h", True, ExitCode.OK, "whole rollout: about"),
    (50.0, "11m", False, ExitCode.FAILED, "> max_step_duration: raise traffic or bounds"),
    (0.05, "24h", False, ExitCode.FAILED, "> max_step_duration: raise traffic or bounds"),
]


@pytest.mark.parametrize(("per_second", "limit", "fits", "code", "line"), PLANS)
def test_a_plan_fits_when_every_step_decides_within_max_step_duration(
    per_second: float, limit: str, fits: bool, code: ExitCode, line: str
) -> None:
    params = CanaryParams(max_step_duration=limit)
    plan = plan_rollout("production", STEPS, _traffic(per_second), params, drift=DRIFT)
    assert [step.weight for step in plan.steps] == [10, 25, 50]
    assert (plan.fits, plan.exit_code) == (fits, code)
    text = to_text(plan)
    assert text.startswith(f"plan for production: {per_second:.3g} predict requests/s")
    assert f"max_step_duration {limit}" in text.splitlines()[0]
    assert line in text


def test_the_canary_alone_is_the_baseline_when_stable_has_no_traffic() -> None:
    traffic = _traffic(50.0, stable=False)
    assert traffic.baseline is traffic.canary
    assert plan_rollout("production", STEPS, traffic, CanaryParams(), drift=DRIFT).fits


@pytest.mark.parametrize("covered", [0.0, 3600.0])
def test_no_traffic_to_plan_from_is_refused_with_the_namespace(covered: float) -> None:
    empty = Traffic("models-prod", "1h", TrackCounts(), TrackCounts(), covered)
    with pytest.raises(CanaryError, match="no predict requests in namespace models-prod over"):
        plan_rollout("production", STEPS, empty, CanaryParams(), drift=DRIFT)


@pytest.mark.parametrize(("window", "seconds"), [("30m", 1800.0), ("1h", 3600.0), ("1d", 86400.0)])
def test_a_window_is_a_promql_duration(window: str, seconds: float) -> None:
    assert window_seconds(window) == seconds


def test_a_window_that_is_not_a_duration_is_refused_with_the_form() -> None:
    with pytest.raises(CanaryError, match="--window must be like 30m, 1h or 1d, got 'soon'"):
        window_seconds("soon")

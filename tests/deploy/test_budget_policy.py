"""The error-budget policy through the real `modelops release deploy`, in a temporary git repo.

Prometheus is the local stand-in of tests/canary/test_prometheus_client.py (its HTTP API only,
on loopback): it answers that production's availability budget is spent. A deploy that would
start a canary there is refused with the way out; with --override-budget it starts the canary
and the commit says why. Staging (direct) is never held back by it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.canary.test_prometheus_client import ANSWERS, _vector, server
from tests.deploy.support import merge_model, modelops, step, traffic
from tests.support import git

__all__ = ["server"]
SPENT = 'modelops:slo_error_budget_remaining:ratio{namespace="churn-production"}'


@pytest.fixture
def spent_budget(server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MODELOPS_PROMETHEUS_URL", server)
    ANSWERS[SPENT] = (200, _vector([({"slo": "availability"}, "-0.2")]))
    return server


def test_a_spent_budget_refuses_a_new_canary_unless_overridden_with_a_reason(
    repo: Path, trained_models: list[Path], spent_budget: str
) -> None:
    first, second, _ = trained_models
    merge_model(repo, first)
    step(repo, "deploy")  # no canary yet: the first model goes straight to stable
    merge_model(repo, second)
    code, _, err = modelops("release", "deploy")
    assert code == 1
    assert "production: the error budget is spent (availability -20% left)" in err
    assert "--override-budget 'REASON'" in err
    assert git(repo, "status", "--porcelain", "--", "manifests") == "", "nothing written"
    title = step(repo, "deploy", "--override-budget", "the fix for the outage itself")
    assert "production (canary 10%)" in title
    body = git(repo, "log", "-1", "--format=%b")
    assert "Error-budget policy overridden in production: error budget spent" in body
    assert "the fix for the outage itself" in body
    assert traffic(repo, "production") == {"stable": 90, "canary": 10}

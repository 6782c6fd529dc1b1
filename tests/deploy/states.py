"""The release states the render tests draw, and the deploy params of each target.

Staging is direct and production canary (the defaults), each state built by the real state
machine. Every state renders on both targets but the shadow, which KServe cannot mirror (its
render is refused: tests/deploy/test_render_kserve.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from modelops.deploy.render import render
from modelops.params import DeployParams, RealtimeEnvironmentParams, Target
from modelops.releases import state
from modelops.releases.experiment import start_experiment
from modelops.releases.state import Experiment, Release, Variant
from tests.deploy.support import change, changed, model_version
from tests.support import REPO_ROOT

TEMPLATES = REPO_ROOT / "manifests" / "templates"
GOLDEN = Path(__file__).parent / "golden"
"""golden/<target>/<state>/: what each state renders on each target."""
STEPS = (10, 25, 50, 100)
V1, V2 = model_version("v1"), model_version("v2")
TARGETS: tuple[Target, ...] = ("seldon", "kserve")
WORKLOAD = {"seldon": "seldondeployment.yaml", "kserve": "inferenceservice.yaml"}
"""The file each target's model pods render to."""


def releases(production_canary: int | None, *, shadow: bool = False) -> dict[str, Release]:
    """Staging serves V2; production V1, beside V2 as a canary at a weight or as a shadow."""
    staging = changed(
        state.deploy(Release("staging"), V2, strategy="direct", steps=STEPS, change=change())
    )
    production = changed(
        state.deploy(Release("production"), V1, strategy="canary", steps=STEPS, change=change())
    )
    if shadow:
        production = changed(
            state.deploy(
                production, V2, strategy="canary", steps=STEPS, change=change(), shadow_first=True
            )
        )
    if production_canary is not None:
        production = changed(
            state.deploy(production, V2, strategy="canary", steps=STEPS, change=change())
        )
        assert production.canary is not None
        production = replace(
            production, canary=replace(production.canary, weight=production_canary)
        )
    return {"staging": staging, "production": production}


def experiment() -> dict[str, Release]:
    """Production runs an A/B experiment: V1 (stable) 60%, V2 (b) 40% of the customers."""
    states = releases(None)
    offer = Experiment(
        name="offer-v2",
        salt="offer-v2",
        unit="customer_id",
        variants=(Variant("stable", V1, 60), Variant("b", V2, 40)),
    )
    states["production"] = changed(start_experiment(states["production"], offer, change=change()))
    return states


STATES = {
    "stable": releases(None),
    "canary-25": releases(25),
    "shadow": releases(None, shadow=True),
    "experiment": experiment(),
    "autoscaled": releases(25),
}
AUTOSCALED = {"requests_per_replica": 40.0, "recommend_resources": True}
"""State `autoscaled`: a canary at 25% where production scales with KEDA on 40 requests per
second per replica and a VerticalPodAutoscaler recommends (the others use the defaults)."""
RENDERED: tuple[tuple[Target, str], ...] = tuple(
    (target, name)
    for target in TARGETS
    for name in sorted(STATES)
    if not (target == "kserve" and name == "shadow")
)
"""(target, state) pairs that render: every one but a shadow on KServe."""


def deploy_params(target: Target = "seldon", state: str | None = None) -> DeployParams:
    """The default deploy params (golden files do not move when params.yaml is edited), with
    every real-time environment on `target`, and production autoscaled in state `autoscaled`."""
    defaults = DeployParams()
    environments = {
        name: environment.model_copy(update={"target": target})
        for name, environment in defaults.environments.items()
    }
    if state == "autoscaled":
        production = environments["production"]
        assert isinstance(production, RealtimeEnvironmentParams)
        scaled = production.autoscaling.model_copy(update=AUTOSCALED)
        environments["production"] = production.model_copy(update={"autoscaling": scaled})
    return defaults.model_copy(update={"environments": environments})


def render_state(
    releases: dict[str, Release], target: Target = "seldon", deploy: DeployParams | None = None
) -> dict[str, str]:
    """Every file `releases` render to, on `target` (or with `deploy` as given)."""
    return render(TEMPLATES, deploy or deploy_params(target), releases, threshold=0.5)


def render_named(name: str, target: Target) -> dict[str, str]:
    """Every file the state called `name` renders to on `target`, with its own params."""
    return render_state(STATES[name], target, deploy_params(target, name))

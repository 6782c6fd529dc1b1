"""`modelops up` and `modelops down`: what the rehearsal needs from the project, then started.

The edges: params, the trained model and prepared data, the release file, released models from
the store (copied into .rehearsal/models/ once), the environment's rules in compressed time and
the example Alertmanager routes. What runs is decided by `rehearsal.plan` (pure); the processes
are `rehearsal.processes`.
"""

from __future__ import annotations

from pathlib import Path

from modelops.errors import PublishError, RehearsalError
from modelops.identity import content_hash
from modelops.observability import rules
from modelops.params import BatchEnvironmentParams, Params, load_params
from modelops.paths import ALERTMANAGER_FILE, ProjectPaths
from modelops.prepared import TEST_FILE, load_meta
from modelops.rehearsal import processes
from modelops.rehearsal.plan import (
    MODEL_COPIES,
    Rehearsal,
    Served,
    UpRequest,
    alertmanager_config,
    check_request,
    plan_up,
    traffic_config,
)
from modelops.releases.files import load_releases, release_file
from modelops.releases.publish import fetched
from modelops.releases.state import ModelVersion


def up(paths: ProjectPaths, request: UpRequest) -> tuple[Rehearsal, list[processes.Started]]:
    """Plan the rehearsal from the project and start it; what was planned and started.

    Raises:
        RehearsalError: it cannot be rehearsed as asked, or did not start (nothing is left
            running then).
    """
    params = load_params(paths.params_file)
    check_request(request, params.deploy.environments)
    if isinstance(params.deploy.environments[request.env], BatchEnvironmentParams):
        raise RehearsalError(
            f"{request.env} is a batch environment: `modelops up` rehearses real-time serving; "
            "run a batch scoring by hand with modelops-score (runbooks/batch-scoring.md)"
        )
    if not (paths.model_dir / "MLmodel").is_file():
        raise RehearsalError(f"no trained model in {paths.show(paths.model_dir)}: run `make repro`")
    meta = load_meta(paths.prepared_dir)  # the traffic process reads the test rows itself
    release = load_releases(paths.root, params).get(request.env)
    canary = release.canary if release is not None else None
    rehearsal = plan_up(
        request,
        schema=meta.schema,
        canary=canary,
        released=release is not None,
        stable=_served(paths, release.stable if release else None),
        trial=_served(paths, canary.model if canary else None),
    )
    state = paths.rehearsal_dir
    started = processes.up(
        paths.root,
        rehearsal.servers,
        rehearsal.traffic,
        prometheus_port=request.prometheus_port,
        threshold=params.evaluate.threshold,
        business_value=(
            params.monitoring.business.server_value() if params.monitoring.business else None
        ),
        traffic_config=traffic_config(
            rehearsal,
            rows_file=paths.prepared_dir.resolve() / TEST_FILE,
            ledger=(state / "traffic.jsonl").resolve(),
            release_file=paths.root.resolve() / release_file(request.env),
        ),
        alerting=_alerting(paths, params, request),
    )
    return rehearsal, started


def down(paths: ProjectPaths) -> list[processes.Started]:
    """Stop exactly what `up` started (recorded in .rehearsal/); what was stopped."""
    return processes.down(paths.root)


def _alerting(paths: ProjectPaths, params: Params, request: UpRequest) -> processes.Alerting:
    """The environment's rules in compressed time, and the example Alertmanager routes."""
    groups = rules.environment_groups(
        params.deploy, params.monitoring, request.env, time_scale=request.time_scale
    )
    example = paths.root / ALERTMANAGER_FILE
    if not example.is_file():
        raise RehearsalError(f"{ALERTMANAGER_FILE} is missing: the rehearsal routes alerts with it")
    return processes.Alerting(
        rules=rules.to_yaml({"groups": groups}, header="modelops up: rules in compressed time"),
        alertmanager_config=alertmanager_config(example.read_text(encoding="utf-8")),
        alertmanager_port=request.alertmanager_port,
        namespace=params.deploy.environments[request.env].namespace,
    )


def _served(paths: ProjectPaths, model: ModelVersion | None) -> Served:
    """A released model's directory in the local store, else the workspace's model."""
    directory, note = _model(paths, model)
    return Served(directory.resolve(), content_hash(directory), note)


def _model(paths: ProjectPaths, model: ModelVersion | None) -> tuple[Path, str]:
    if model is None:
        return paths.model_dir, "the workspace model"
    try:
        copy = fetched(model.model_uri, cache=paths.rehearsal_dir / MODEL_COPIES, root=paths.root)
    except PublishError as exc:
        return paths.model_dir, f"the workspace model: release {model.version} unavailable ({exc})"
    return copy, f"release {model.version}"

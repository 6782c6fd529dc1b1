"""`modelops up` and `modelops down`: what the rehearsal needs from the project, then started.

The edges: params, the trained model and prepared data, the release file, released models from
the store (copied into .rehearsal/models/ once; every variant of a running experiment), the
environment's rules in compressed time and the example Alertmanager routes. What runs is decided
by `rehearsal.plan` for a real-time environment (`rehearsal.experiment` when its release runs an
A/B experiment) and `rehearsal.batchplan` for a batch one (pure); the processes are
`rehearsal.processes`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from modelops.errors import PublishError, RehearsalError
from modelops.identity import content_hash
from modelops.observability import rules
from modelops.params import (
    BatchEnvironmentParams,
    Params,
    batch_name,
    load_params,
    missed_after_seconds,
    served_by_pods,
)
from modelops.paths import ALERTMANAGER_FILE, ProjectPaths
from modelops.prepared import TEST_FILE, load_meta
from modelops.rehearsal import batchplan, experiment, plan, processes
from modelops.rehearsal.batchplan import BatchRehearsal
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
from modelops.releases.state import ModelVersion, Release

Planned = Rehearsal | BatchRehearsal
"""What `up` planned: real-time serving, or a batch environment's scheduled runs."""


def up(paths: ProjectPaths, request: UpRequest) -> tuple[Planned, list[processes.Started]]:
    """Plan the rehearsal from the project and start it; what was planned and started.

    Raises:
        RehearsalError: it cannot be rehearsed as asked, or did not start (nothing is left
            running then).
    """
    params = load_params(paths.params_file)
    check_request(request, params.deploy.environments)
    environment = params.deploy.environments[request.env]
    batch = isinstance(environment, BatchEnvironmentParams)
    batchplan.check_kind(request, batch=batch)
    if not (paths.model_dir / "MLmodel").is_file():
        raise RehearsalError(f"no trained model in {paths.show(paths.model_dir)}: run `make repro`")
    meta = load_meta(paths.prepared_dir)  # the traffic process reads the test rows itself
    release = load_releases(paths.root, params).get(request.env)
    running = release.experiment if release is not None else None
    if running is None:
        experiment.check_no_experiment(request)
    if isinstance(environment, BatchEnvironmentParams):
        return _up_batch(paths, params, request, environment, release, test_rows=meta.test_rows)
    canary = release.canary if release is not None else None
    if running is not None:
        rehearsal = experiment.plan_experiment(
            request,
            schema=meta.schema,
            experiment=running,
            served={v.name: _served(paths, v.model) for v in running.variants},
            threshold=params.evaluate.threshold,
        )
    else:
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


def _up_batch(
    paths: ProjectPaths,
    params: Params,
    request: UpRequest,
    environment: BatchEnvironmentParams,
    release: Release | None,
    *,
    test_rows: int,
) -> tuple[BatchRehearsal, list[processes.Started]]:
    """A batch environment's scheduled runs with its release's stable model (the workspace's
    without a release), pushing to a Pushgateway its rules read."""
    if request.batch_input is not None:  # as the user wrote it, from where they are
        request = dataclasses.replace(
            request, batch_input=str(Path(request.batch_input).absolute())
        )
    stable = release.stable if release is not None else None
    model = _served(paths, stable)
    fetched_release = stable is not None and model.digest == stable.model_hash
    objectives = params.monitoring.objectives
    state = paths.rehearsal_dir.resolve()
    batch = batchplan.plan_batch(
        request,
        environment,
        job=batch_name(params.deploy.name, request.env),
        model=model,
        model_version=stable.version if stable and fetched_release else model.digest[:12],
        test_rows_file=paths.prepared_dir.resolve() / TEST_FILE,
        test_rows=test_rows,
        min_drift_rows=min(objectives.feature_drift.min_rows, objectives.score_drift.min_rows),
        output=state / batchplan.SCORES_DIR,
    )
    target = rules.BatchTarget(
        rules.Target(request.env, environment.namespace, _runbook(params), request.time_scale),
        batch.job,
        missed_after_seconds(environment),
    )
    groups = rules.batch_rule_groups(params.monitoring, target)
    started = processes.up_batch(
        paths.root,
        prometheus_port=request.prometheus_port,
        pushgateway_port=request.pushgateway_port,
        alerting=_alerting_with(paths, params, request, groups),
        scheduler=batchplan.scheduler_config(
            batch,
            score=paths.root.resolve() / "serving" / ".venv" / "bin" / "modelops-score",
            ledger=state / batchplan.RUNS_FILE,
        ),
    )
    return batch, started


def to_text(planned: Planned, started: list[processes.Started], *, paths: ProjectPaths) -> str:
    """What `modelops up` prints once everything runs."""
    pids = [process.pid for process in started]
    state = paths.show(paths.rehearsal_dir)
    if isinstance(planned, BatchRehearsal):
        return batchplan.to_text(planned, pids, state=state, root=paths.root.resolve())
    if planned.experiment is not None:
        return experiment.to_text(planned, pids, state=state)
    return plan.to_text(planned, pids, state=state)


def down(paths: ProjectPaths) -> list[processes.Started]:
    """Stop exactly what `up` started (recorded in .rehearsal/); what was stopped."""
    return processes.down(paths.root)


def _alerting(paths: ProjectPaths, params: Params, request: UpRequest) -> processes.Alerting:
    """The environment's rules in compressed time, and the example Alertmanager routes."""
    groups = rules.environment_groups(
        params.deploy, params.monitoring, request.env, time_scale=request.time_scale
    )
    return _alerting_with(paths, params, request, groups)


def _runbook(params: Params) -> str:
    deploy = params.deploy
    return rules.runbook_base(params.monitoring, repo_url=deploy.repo_url, revision=deploy.revision)


def _alerting_with(
    paths: ProjectPaths, params: Params, request: UpRequest, groups: list[rules.RuleGroup]
) -> processes.Alerting:
    """`groups` for Prometheus, and the example Alertmanager routes."""
    example = paths.root / ALERTMANAGER_FILE
    if not example.is_file():
        raise RehearsalError(f"{ALERTMANAGER_FILE} is missing: the rehearsal routes alerts with it")
    return processes.Alerting(
        rules=rules.to_yaml({"groups": groups}, header="modelops up: rules in compressed time"),
        alertmanager_config=alertmanager_config(example.read_text(encoding="utf-8")),
        alertmanager_port=request.alertmanager_port,
        namespace=served_by_pods(
            params.deploy.environments[request.env], name=request.env, what="the rehearsal"
        ).namespace,
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

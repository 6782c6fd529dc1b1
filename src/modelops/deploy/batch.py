"""What the batch templates need beyond params: where volumes are mounted and the command line.

A batch environment's pods run `modelops-score` (serving/modelops_serving/score_cli.py) with the
released model's content hash, so a pod refuses any other model; the flags are built here, once,
for the CronJob and the ScheduledSparkApplication alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelops.params import BatchEnvironmentParams, ClaimPath, batch_name, duration_seconds
from modelops.releases.state import ModelVersion

KUBERNETES_MASTER = "k8s://https://kubernetes.default.svc:443"
"""The API server as Spark addresses it from inside the cluster (the driver asks it for
executors)."""


@dataclass(frozen=True)
class BatchMounts:
    """Where the batch pods see the model, the input, the output and scratch space.

    The model is downloaded into an emptyDir by the storage initializer, as for the Seldon
    pods; an input URL is downloaded beside it the same way (engine local); claims are mounted.
    """

    model: str = "/mnt/models"
    input: str = "/mnt/input"
    output: str = "/mnt/output"
    tmp: str = "/tmp"


BATCH_MOUNTS = BatchMounts()


@dataclass(frozen=True)
class BatchRun:
    """One environment's scheduled run as the templates see it."""

    name: str
    """The CronJob's (or ScheduledSparkApplication's) name."""
    model: ModelVersion
    arguments: tuple[str, ...]
    """`modelops-score`'s flags."""
    fetch_input: bool
    """The input is a URL that an init container downloads (engine local)."""
    timeout_seconds: int


def batch_run(
    deploy_name: str,
    environment_name: str,
    environment: BatchEnvironmentParams,
    model: ModelVersion,
    *,
    pushgateway_url: str | None,
) -> BatchRun:
    """The run of `environment` with `model` (its release's stable model), pushing its figures
    to `pushgateway_url` (None: nowhere)."""
    name = batch_name(deploy_name, environment_name)
    arguments = score_arguments(environment, model)
    if pushgateway_url is not None:
        arguments += push_arguments(pushgateway_url, name, environment.namespace, model)
    return BatchRun(
        name=name,
        model=model,
        arguments=arguments,
        fetch_input=environment.engine == "local" and environment.input.url is not None,
        timeout_seconds=duration_seconds(environment.timeout),
    )


def score_arguments(environment: BatchEnvironmentParams, model: ModelVersion) -> tuple[str, ...]:
    """`modelops-score`'s flags for a run of `environment` with `model`.

    The local engine's run id is the Job's name (`$(RUN_ID)`, set from the pod's job-name label
    by the CronJob template), so a run's record names the Job whose logs tell its story.
    """
    arguments = [
        "--model",
        BATCH_MOUNTS.model,
        "--model-hash",
        model.model_hash,
        "--input",
        input_location(environment),
        "--output",
        _on_claim(BATCH_MOUNTS.output, environment.output),
    ]
    for column in environment.id_columns:
        arguments += ["--id-column", column]
    arguments += ["--max-refused", str(environment.max_refused)]
    arguments += ["--batch-rows", str(environment.batch_rows)]
    if environment.engine == "local":
        arguments += ["--run-id", "$(RUN_ID)"]
    else:
        arguments += ["--engine", "spark", "--master", KUBERNETES_MASTER]
    return tuple(arguments)


def push_arguments(
    pushgateway_url: str, name: str, namespace: str, model: ModelVersion
) -> tuple[str, ...]:
    """`modelops-score`'s flags to push a run's figures under the group the batch rules read
    (`job` the batch objects' name, `namespace` the environment's; observability/batch.py)."""
    return (
        *("--pushgateway", pushgateway_url),
        *("--push-job", name),
        *("--push-label", f"namespace={namespace}"),
        *("--model-version", model.version),
    )


def input_location(environment: BatchEnvironmentParams) -> str:
    """What `--input` names inside the pod: the mounted claim, the downloaded URL's folder, or
    (engine spark, which reads it itself) the URL."""
    location = environment.input
    if location.url is not None:
        return location.url if environment.engine == "spark" else BATCH_MOUNTS.input
    assert location.claim is not None, "params hold a url or a claim"
    return _on_claim(BATCH_MOUNTS.input, ClaimPath(claim=location.claim, path=location.path))


def _on_claim(mount: str, where: ClaimPath) -> str:
    return f"{mount}/{where.path}" if where.path else mount

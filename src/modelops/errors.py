"""Every error modelops raises on purpose, and the exit codes its commands return.

An error here is an expected failure caused by something the user controls (params, data, a
file, a service's address or credentials): its message says what is wrong, where (file, key,
row or field) and how to fix it. The CLI prints it as one `error: ...` line, without a
traceback, and exits with the command's error code. Any other exception is a bug and keeps its
traceback.

    ModelopsError
     ├── ParamsError          params.yaml is missing, unreadable or invalid
     ├── DataError            the data cannot be loaded or breaks the declared schema
     ├── PrometheusError      Prometheus unreachable, refusing, or answering no vector
     ├── GitHubError          GitHub unreachable, refusing, or not configured
     ├── PublishError         the model store refuses, or holds other bytes at an address
     ├── ReleaseError         an illegal transition, or a release file that is not one
     ├── SchemaError          a pinned manifest schema cannot be had
     │    └── CrdError        a schema file is not a CRD with one storage version
     ├── DeployError          manifests that do not validate; a deploy that cannot be planned
     ├── UngatedModelError    a model the gates did not judge, or did not pass
     ├── CanaryError          nothing to judge, or a step that cannot be found
     ├── ExperimentError      no experiment declared or running, or nothing to plan it from
     ├── MonitorError         nothing served to monitor, or no profile to judge it with
     ├── RowsError            a request log the server did not write
     ├── RetrainError         the retraining branch cannot be made
     ├── RehearsalError       the rehearsal cannot start as asked
     ├── BatchError           no model to score with, or no batch engine installed
     ├── CapacityError        a load test that cannot run: bad options, no server answering
     └── ExportError          an edge bundle refused: a format that cannot hold the model,
                              parity outside tolerance, no signing key, no exporter installed

Exit codes, the same for every command (`ExitCode`; the handlers return them by name):

    0    OK           done; for a judge: promote, or (auto) acted, held or found no canary;
                      for an experiment: a winner, or no difference
    1    FAILED       an error above; a check that failed: a blocking verdict, stale manifests
                      (render --check), drift in logged rows (monitor --rows), a canary plan
                      past canary.max_step_duration; for a judge: roll back; for an
                      experiment: stop (a broken split, a guardrail breached), or a plan
                      longer than its max_days
    2    UNDECIDED    a judge that cannot judge (canary analyze, plan, auto: no canary, no
                      Prometheus, bad params); a command line argparse refuses, or a command
                      group given no action (`modelops`, `modelops release`, `modelops canary`)
    3    ASK          a person must decide: the judge holds (analyze), an experiment must
                      keep running, or a step held past
                      canary.max_step_duration with canary.on_timeout: ask (auto)
    130  INTERRUPTED  Ctrl-C; the message says whether anything was written
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a `modelops` command's exit status means (the table above)."""

    OK = 0
    FAILED = 1
    UNDECIDED = 2
    ASK = 3
    INTERRUPTED = 130


class ModelopsError(Exception):
    """An expected failure caused by input the user controls (params, data, state)."""


class ParamsError(ModelopsError):
    """`params.yaml` is missing, unreadable or invalid."""


class DataError(ModelopsError):
    """The input data cannot be loaded or does not match the declared schema."""


class PrometheusError(ModelopsError):
    """Prometheus cannot be reached, refuses, or answers something that is not a vector."""


class GitHubError(ModelopsError):
    """GitHub cannot be reached, refuses a request, or is not configured."""

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class PublishError(ModelopsError):
    """The model cannot be published, or the store holds something else at its address."""


class ReleaseError(ModelopsError):
    """An illegal transition, or a release file that is not a release."""


class SchemaError(ModelopsError):
    """A pinned schema is not on this machine and could not be fetched, or was refused."""


class CrdError(SchemaError):
    """The text is not a CRD with exactly one storage version."""


class DeployError(ModelopsError):
    """Manifests that do not validate, or a deploy that cannot be prepared."""


class UngatedModelError(ModelopsError):
    """The model was not judged by the gates, or they did not pass it: it is never deployed."""


class CanaryError(ModelopsError):
    """Nothing to judge (no canary), or a release whose current step cannot be found."""


class ExperimentError(ModelopsError):
    """No experiment declared or running, or no reference to plan or judge it with."""


class MonitorError(ModelopsError):
    """Nothing served to monitor, or no profile to judge it against."""


class RowsError(ModelopsError):
    """A request log that cannot be read as the server writes it."""


class RetrainError(ModelopsError):
    """The retraining branch cannot be made (dirty checkout, nothing to refresh, a failed step)."""


class RehearsalError(ModelopsError):
    """The rehearsal cannot start as asked; nothing is left running."""


class BatchError(ModelopsError):
    """No model to score with (none trained, none released, not in the store), no engine."""


class CapacityError(ModelopsError):
    """A capacity run that cannot run as asked: bad options, a server that does not start or
    answer, a load generator that fails, or a capacity report that is not one."""


class ExportError(ModelopsError):
    """An edge export that did not publish (`modelops export`): the exporter's refusal (a format
    that cannot hold the model faithfully, parity outside tolerance, no signing key), or no
    exporter environment (edge/.venv)."""

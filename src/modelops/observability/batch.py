"""A batch environment's rules: its last run's drift, and the alerts on its runs.

A scheduled run pushes its figures to the Pushgateway when it ends (`modelops_serving.push`,
series in `modelops_contract.batch`); Prometheus scrapes them from there with the run's own
`job` (the CronJob's name) and `namespace`. The rules here read them:
- the PSI of the last successful run's rows against the reference profile's shares, per
  feature and for the score, computed as for the servers (`recording.psi_of`, bins clamped at
  1e-4), and judged only on at least `min_rows` rows;
- a run failed: the last failure is newer than the last success (or no success was ever pushed);
- a run was missed: no run succeeded for the longest gap between two scheduled runs plus the
  time a run may take (`params.batch.missed_after_seconds`).

Pure functions of params and a `BatchTarget`; `rules.py` groups them.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelops_contract import MISSING, REFERENCE_SCORE_SHARE, REFERENCE_SHARE, records
from modelops_contract import batch as contract
from modelops_contract.records import LastRunDriftRules

from modelops.observability.alerts import ML, NODATA, SERVICE, TICKET, AlertingRule, Alerts
from modelops.observability.recording import (
    CLAMP,
    RecordingRule,
    Target,
    psi_of,
    record,
)
from modelops.params import DriftObjective, MonitoringParams

BY_RUN = "namespace, job, model_version"
"""What a batch run's series are kept by: the environment's namespace, its CronJob, the model."""
RUN = "namespace, job"


@dataclass(frozen=True)
class BatchTarget:
    """Where the rules apply: the environment, and the name its runs push under."""

    target: Target
    job: str
    """The batch objects' name: the `job` its runs push under (`--push-job`)."""
    missed_after_seconds: int

    @property
    def selector(self) -> str:
        return f'namespace="{self.target.namespace}", job="{self.job}"'


def batch_records(target: BatchTarget) -> list[RecordingRule]:
    """The PSI of the last successful run, per feature and for the score."""
    return [
        *_last_run_psi(
            target,
            records.BATCH_FEATURE_DRIFT,
            contract.FEATURE_BIN_ROWS.name,
            REFERENCE_SHARE.name,
            by=f"{BY_RUN}, feature",
            exclude=f'bin!="{MISSING}"',
        ),
        *_last_run_psi(
            target,
            records.BATCH_SCORE_DRIFT,
            contract.SCORE_BIN_ROWS.name,
            REFERENCE_SCORE_SHARE.name,
            by=BY_RUN,
            exclude="",
        ),
    ]


def _last_run_psi(
    target: BatchTarget,
    names: LastRunDriftRules,
    gauge: str,
    reference: str,
    *,
    by: str,
    exclude: str,
) -> list[RecordingRule]:
    selector = ", ".join(part for part in (target.selector, exclude) if part)
    # max by: the scrape may add labels of its own (pod, service); the pushed value is one.
    bin_rows = f"max by ({by}, bin) ({gauge}{{{selector}}})"
    expected = f"clamp_min(max by ({by}, bin) ({reference}{{{target.selector}}}), {CLAMP})"
    share = f"{names.bin_share}{{{target.selector}}}"
    return [
        record(names.rows, f"sum by ({by}) ({bin_rows})"),
        record(
            names.bin_share,
            f"clamp_min({bin_rows} / ignoring (bin) group_left {names.rows}{{{target.selector}}}"
            f", {CLAMP})",
        ),
        record(names.psi, psi_of(share, expected, by=by)),
    ]


def _duration(seconds: int) -> str:
    """A Prometheus duration for whole seconds, in the largest unit that divides them."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class BatchAlerts(Alerts):
    """The alerts of one batch environment, in the order its rule group lists them."""

    def __init__(self, monitoring: MonitoringParams, target: BatchTarget) -> None:
        super().__init__(monitoring, target.target)
        self.batch = target

    def alerts(self) -> list[AlertingRule]:
        return [self._failed(), *self._missed(), *self._drifted()]

    def _failed(self) -> AlertingRule:
        sel = self.batch.selector
        failure = f"max by ({RUN}) ({contract.LAST_FAILURE.name}{{{sel}}})"
        success = f"max by ({RUN}) ({contract.LAST_SUCCESS.name}{{{sel}}})"
        return self._alert(
            "ModelopsBatchRunFailed",
            TICKET,
            SERVICE,
            f"({failure} > on ({RUN}) {success}) or ({failure} unless on ({RUN}) {success})",
            "1m",
            "The last scheduled run of {{ $labels.job }} in {{ $labels.namespace }} failed",
            "It stopped at {{ $value | humanizeTimestamp }} without publishing scores; the "
            "previous run's output is kept as it was. Its Job's log says why.",
        )

    def _missed(self) -> list[AlertingRule]:
        sel, seconds = self.batch.selector, self.batch.missed_after_seconds
        deadline = max(round(seconds / self.t.time_scale), 1)  # as `scaled` divides durations
        success = f"{contract.LAST_SUCCESS.name}{{{sel}}}"
        hours = f"{seconds / 3600:g}"
        summary = (
            "No scheduled run of {{ $labels.job }} in {{ $labels.namespace }} succeeded for "
            f"{hours} hours"
        )
        allows = (
            f"longer than the schedule allows ({hours} h: the longest gap between two "
            "scheduled runs plus the time a run may take)"
        )
        causes = (
            "The CronJob did not start, its runs fail or hang, or their figures never reached "
            "the Pushgateway."
        )
        return [
            self._alert(
                "ModelopsBatchRunMissed",
                TICKET,
                NODATA,
                f"time() - max by ({RUN}) ({success}) > {deadline}",
                "5m",
                summary,
                f"The last success was {{{{ $value | humanizeDuration }}}} ago, {allows}. {causes}",
            ),
            # No success pushed at all (a new environment, a Pushgateway restarted without
            # persistence): the same alert once that has lasted as long as the deadline.
            self._alert(
                "ModelopsBatchRunMissed",
                TICKET,
                NODATA,
                f"absent({success})",
                _duration(seconds),
                summary,
                f"No run has pushed a success (value {{{{ $value }}}}: none) for {allows}. "
                f"{causes}",
            ),
        ]

    def _drifted(self) -> list[AlertingRule]:
        alerts = []
        for name, names, objective, by in (
            (
                "ModelopsBatchFeatureDrift",
                records.BATCH_FEATURE_DRIFT,
                self.o.feature_drift,
                f"{BY_RUN}, feature",
            ),
            ("ModelopsBatchScoreDrift", records.BATCH_SCORE_DRIFT, self.o.score_drift, BY_RUN),
        ):
            alerts.append(self._drift_alert(name, names, objective, by))
        return alerts

    def _drift_alert(
        self, name: str, names: LastRunDriftRules, objective: DriftObjective, by: str
    ) -> AlertingRule:
        sel = self.batch.selector
        subject = "{{ $labels.feature }}" if names is records.BATCH_FEATURE_DRIFT else "The score"
        return self._alert(
            name,
            TICKET,
            ML,
            f"{names.psi}{{{sel}}} > {objective.max_psi:g}"
            f" and on ({by}) {names.rows}{{{sel}}} >= {objective.min_rows}",
            "5m",
            f"{subject} drifted in the last run of {{{{ $labels.job }}}} in "
            "{{ $labels.namespace }}",
            f'PSI {{{{ $value | printf "%.3f" }}}} of the last successful run\'s rows against '
            f"the training profile of model {{{{ $labels.model_version }}}} (limit "
            f"{objective.max_psi:g}, judged on at least {objective.min_rows} rows).",
        )

"""The canary judge (pure): from the criteria's findings over a step to promote, hold or roll back.

Each criterion (`modelops.canary.criteria`) tests one difference between canary and stable and
passes, fails or stays inconclusive. Any failed criterion rolls back at once (the intervals are
valid at every look, whatever the sample size); a promotion waits until each track has
`min_requests` and the step has soaked `min_soak`, then needs every judged criterion to pass;
otherwise hold, saying how much more traffic would decide. `alpha` is
split evenly (Bonferroni) over every test that is not skipped, fixed before any data is seen,
so the chance of any wrong verdict in a step stays below `alpha` however often it is looked at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from modelops.canary import stats
from modelops.canary.criteria import Criterion, Finding, run_all, select
from modelops.canary.evidence import Evidence
from modelops.errors import ExitCode
from modelops.params import CanaryParams, DriftGateParams, duration_seconds

Decision: TypeAlias = Literal["promote", "hold", "rollback"]
METHOD = (
    "normal-mixture confidence sequence (Robbins 1970; Howard, Ramdas, McAuliffe and Sekhon "
    "2021), valid at every look; alpha split evenly over the tests (Bonferroni)"
)
_SCALES = (1.25, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


@dataclass(frozen=True)
class Verdict:
    """The decision, why, and the findings it rests on."""

    decision: Decision
    summary: str
    findings: tuple[Finding, ...]
    canary_requests: float
    stable_requests: float
    step_seconds: float
    alpha: float
    more_needed: str | None = None
    method: str = METHOD

    @property
    def exit_code(self) -> ExitCode:
        """Promote 0, roll back 1, hold 3: a person (or `canary auto`) decides."""
        return {"promote": ExitCode.OK, "hold": ExitCode.ASK, "rollback": ExitCode.FAILED}[
            self.decision
        ]


def judge(
    evidence: Evidence,
    params: CanaryParams,
    business: Mapping[str, float] | None = None,
    *,
    drift: DriftGateParams,
) -> Verdict:
    """The verdict for one look at a step (`business`: value per confusion-matrix cell;
    `drift`: the pull-request drift gate's limits, which the inputs are judged with)."""
    tests, skipped = select(evidence, params, business, drift)
    alpha = params.alpha / max(len(tests), 1)
    findings = run_all(tests, evidence.canary, evidence.stable, alpha, _planned(evidence, params))
    failed = [f for f in findings if f.status == "fail"]
    open_ = [f for f in findings if f.status == "inconclusive" and f.blocking]
    advisory = [f for f in findings if f.status == "inconclusive" and not f.blocking]
    short = _too_early(evidence, params)
    more: str | None = None
    decision: Decision
    if failed:
        # The sequences are valid at every look, so a bound already crossed is not waited for:
        # the minimums hold only a promotion.
        early = f" (before the step's minimums: {short})" if short else ""
        decision, summary = "rollback", f"roll back: {_because(failed)}{early}"
    elif short:
        decision, more = "hold", short
        summary = f"hold: {short}."
    elif not open_:
        judged = ", ".join(f.criterion for f in findings if f.status == "pass") or "nothing"
        decision, summary = "promote", f"promote: every criterion is within its bound ({judged})"
        if advisory:
            summary += (
                f"; not decided yet, and not required (quality.required false): {_names(advisory)}"
            )
    else:
        more = _more_needed(tests, evidence, params, alpha)
        decision, summary = "hold", f"hold: not enough data yet for {_names(open_)}; {more}"
    return Verdict(
        decision=decision,
        summary=summary,
        findings=(*findings, *skipped),
        canary_requests=evidence.canary.requests,
        stable_requests=evidence.stable.requests,
        step_seconds=evidence.step_seconds,
        alpha=params.alpha,
        more_needed=more,
    )


def _planned(evidence: Evidence, params: CanaryParams) -> float:
    """The effective sample size the sequences are tightest at: the planned canary requests
    beside the stable requests the same step brings."""
    weight = min(max(evidence.weight, 1), 99)
    planned = float(params.planned_requests)
    return stats.effective_samples(planned, planned * (100 - weight) / weight)


def _too_early(evidence: Evidence, params: CanaryParams) -> str:
    needs = []
    soak = duration_seconds(params.min_soak)
    for track, counts in (("canary", evidence.canary), ("stable", evidence.stable)):
        if counts.requests < params.min_requests:
            needs.append(
                f"{track} has {counts.requests:.0f} of the {params.min_requests} requests a step "
                f"needs ({params.min_requests - counts.requests:.0f} more)"
            )
    if evidence.step_seconds < soak:
        needs.append(
            f"the step has soaked {duration_words(evidence.step_seconds)} of min_soak "
            f"{params.min_soak} ({duration_words(soak - evidence.step_seconds)} more)"
        )
    if evidence.canary.requests == 0 and evidence.step_seconds >= soak:
        needs.append("the canary received no requests at all: check the traffic split")
    return "; ".join(needs)


def _more_needed(
    tests: Sequence[Criterion], evidence: Evidence, params: CanaryParams, alpha: float
) -> str:
    planned = _planned(evidence, params)
    for factor in _SCALES:
        canary, stable = evidence.canary.scaled(factor), evidence.stable.scaled(factor)
        findings = run_all(tests, canary, stable, alpha, planned)
        if all(f.status != "inconclusive" or not f.blocking for f in findings):
            requests = evidence.canary.requests * (factor - 1)
            when = ""
            if evidence.step_seconds > 0 and evidence.canary.requests > 0:
                more_time = duration_words(evidence.step_seconds * (factor - 1))
                when = f", about {more_time} more at this rate"
            return (
                f"about {factor:g}x the traffic so far would decide (~{requests:.0f} more canary "
                f"requests{when}, if the differences stay as they are)"
            )
    return (
        f"even {_SCALES[-1]}x the traffic so far would not decide: the difference sits at "
        f"the bound; max_step_duration ({params.max_step_duration}) will end the step"
    )


def _names(findings: Sequence[Finding]) -> str:
    return ", ".join(f.criterion for f in findings)


def _because(findings: Sequence[Finding]) -> str:
    return "; ".join(
        f"{f.criterion} ({f.statistic} {f.estimate:.4g}, interval [{f.low:.4g}, {f.high:.4g}], "
        f"bound {f.threshold}: {f.reason})"
        for f in findings
    )


def duration_words(seconds: float) -> str:
    """Seconds as a person reads them: 45 s, 12 min, 3.5 h, 2.0 d."""
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"

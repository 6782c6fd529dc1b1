"""Gate `champion`: is the candidate at least as good as the model it would replace?

Which model that is and where its files come from is `champion_source`'s part; `matchup` loads
it once for every gate that compares with it (this one and `latency`). Both models are scored
on the candidate's test set with the same metric code, so the comparison is fair. The gate's
context says which champion it was and where it came from.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from modelops import tracking
from modelops.data import Schema
from modelops.errors import ModelopsError
from modelops.gates.bootstrap import METRICS, paired_differences
from modelops.gates.champion_source import NoChampion, find_champion
from modelops.gates.evidence import MIN_POSITIVES
from modelops.gates.results import CheckRecord, GateResult, gate_status
from modelops.params import ChampionGateParams, GateMode, GatesParams
from modelops.statistics import Interval, decide_at_least, leans_beyond_limit

if TYPE_CHECKING:
    from modelops.model import Classifier

_TITLE = "Champion comparison"


@dataclass(frozen=True)
class Matchup:
    """The candidate, the champion it would replace, and the test rows both are judged on.

    Found once for every gate that compares the two (`registry.Gate.against_champion`).
    `champion` is None when there is none yet (`absent` says why: those gates are skipped) or
    when it could not be obtained (`problem` says why: those gates fail closed).
    """

    candidate: Classifier
    champion: Classifier | None
    context: dict[str, str]
    """Which champion it is and where it came from, as the report shows it."""
    test: pd.DataFrame
    """The test rows; besides this schema's columns, the source's others: after a schema
    change the champion is scored on the columns it was trained with."""
    schema: Schema
    threshold: float
    absent: str = ""
    problem: str = ""


def matchup(
    params: ChampionGateParams,
    *,
    root: Path,
    candidate: Classifier,
    test: pd.DataFrame,
    schema: Schema,
    threshold: float,
) -> Matchup:
    """Find the champion (`champion_source`) and load it beside the candidate."""
    with tempfile.TemporaryDirectory(prefix="modelops-champion-") as workdir:
        try:
            found = find_champion(root, params, workdir=Path(workdir))
            if isinstance(found, NoChampion):
                return Matchup(
                    candidate, None, found.context, test, schema, threshold, absent=found.reason
                )
            champion = tracking.load_model(found.model_dir)
        except Exception as exc:
            return Matchup(candidate, None, {}, test, schema, threshold, problem=one_line(exc))
    return Matchup(candidate, champion, found.context, test, schema, threshold)


def without_champion(
    name: str, mode: GateMode, matchup: Matchup, *, title: str
) -> GateResult | None:
    """A gate's result when there is no champion to compare with: skipped when there is none
    yet, failed closed when it could not be obtained; None when there is one."""
    if matchup.absent:
        return GateResult(name, mode, "skipped", notes=(matchup.absent,), context=matchup.context)
    if matchup.champion is None:
        return failed_closed(name, mode, title, matchup.problem, context=matchup.context)
    return None


def failed_closed(
    name: str, mode: GateMode, title: str, problem: str, *, context: Mapping[str, str]
) -> GateResult:
    """The comparison could not run: one error record, and the gate fails (fail closed)."""
    record = CheckRecord(
        name,
        title,
        "test",
        "the champion can be obtained and scored",
        problem,
        "error",
        "the comparison could not run, so the gate fails closed",
    )
    return GateResult(name, mode, "fail", checks=(record,), context=dict(context))


def one_line(exc: BaseException) -> str:
    """An exception as one short line: its type and message."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def champion_gate(gates: GatesParams, matchup: Matchup) -> GateResult:
    """Score both models on the same test rows and judge the candidate's metrics."""
    params, statistics = gates.champion, gates.statistics
    skipped = without_champion("champion", params.mode, matchup, title=_TITLE)
    if skipped is not None:
        return skipped
    assert matchup.champion is not None, "without_champion returned a result otherwise"
    test, schema, threshold = matchup.test, matchup.schema, matchup.threshold
    try:
        scores = [
            _positive_scores(model, test, schema) for model in (matchup.candidate, matchup.champion)
        ]
    except Exception as exc:
        return failed_closed(
            "champion", params.mode, _TITLE, one_line(exc), context=matchup.context
        )
    truth = (test[schema.label] == schema.positive_label).to_numpy(dtype=np.float64)
    metrics: list[str] = [*params.max_drop, *params.max_rise]
    deltas = paired_differences(
        truth,
        scores[0],
        scores[1],
        metrics,
        threshold=threshold,
        resamples=statistics.bootstrap_resamples,
        confidence=statistics.confidence,
        seed=statistics.seed,
    )
    observed = {
        metric: (
            _metric(metric, truth, scores[0], threshold),
            _metric(metric, truth, scores[1], threshold),
        )
        for metric in metrics
    }
    records = tuple(
        compare(
            deltas,
            observed,
            params,
            rows=len(truth),
            positives=int(truth.sum()),
            confidence=statistics.confidence,
        )
    )
    numbers = ", ".join(f"{metric} {observed[metric][1]:.4f}" for metric in metrics)
    context = {**matchup.context, "champion_metrics": numbers}
    return GateResult(
        "champion", params.mode, gate_status(records), checks=records, context=context
    )


def compare(
    deltas: Mapping[str, Interval],
    observed: Mapping[str, tuple[float, float]],
    params: ChampionGateParams,
    *,
    rows: int,
    positives: int,
    confidence: float,
) -> list[CheckRecord]:
    """One record per metric: candidate minus champion with its paired bootstrap interval.

    A drop fails only when the whole interval is beyond the tolerance (`max_drop`, `max_rise`);
    an interval that reaches past it is inconclusive; each delta reads better, worse or within
    noise by whether its interval excludes zero.
    """
    records = []
    few = min(positives, rows - positives) < MIN_POSITIVES
    for metric, tolerance, lower_is_better in [
        *((m, t, False) for m, t in params.max_drop.items()),
        *((m, t, True) for m, t in params.max_rise.items()),
    ]:
        found = deltas[metric]
        gain = Interval(-found.estimate, -found.high, -found.low) if lower_is_better else found
        status = "inconclusive" if few else decide_at_least(gain, -tolerance)
        word = "better" if gain.low > 0 else "worse" if gain.high < 0 else "within noise"
        ours, theirs = observed[metric]
        side, key = ("higher", "max_rise") if lower_is_better else ("lower", "max_drop")
        reason = ""
        if status == "fail":
            reason = "the candidate is worse than the model it would replace"
        elif few:
            reason = (
                f"inconclusive: {min(positives, rows - positives)} test rows of the rarer class "
                f"are too few for a paired interval of {metric}; at least {MIN_POSITIVES} would "
                "give one"
            )
        elif status == "inconclusive":
            reason = (
                f"inconclusive: {rows} test rows cannot tell whether {metric} is {side} than the "
                f"champion's by more than {tolerance:g} ({found.text()}); more test rows would"
            )
        records.append(
            CheckRecord(
                metric,
                _TITLE,
                "test (both models)",
                f"{metric} not {side} than the champion's by more than {tolerance:g}",
                f"candidate {ours:.4f} vs champion {theirs:.4f}: {found.estimate:+.4f} "
                f"[{found.low:+.4f}, {found.high:+.4f}], {word} "
                f"({confidence:.0%} paired bootstrap on {rows} rows)",
                status,
                reason,
                tuned_by=f"gates.champion.{key}.{metric} = {tolerance:g}",
                leans_fail=not few and leans_beyond_limit(gain, -tolerance, at_most=False),
            )
        )
    return records


def columns_of(model: Classifier, test: pd.DataFrame, schema: Schema) -> list[str]:
    """The columns a model was trained with, all of which the test rows must have.

    Raises:
        ModelopsError: the model needs a column that the test rows do not have at all.
    """
    needed = list(getattr(model, "feature_names_in_", schema.features))
    missing = [column for column in needed if column not in test.columns]
    if missing:
        raise ModelopsError(
            f"the champion needs columns that the data no longer has: {missing}, so the two "
            "models cannot be scored on the same rows and the candidate cannot be shown to be "
            "at least as good. Keep those columns in prepare.source (the candidate can leave "
            "them out with prepare.columns.drop): the champion is then scored on them"
        )
    return needed


def _positive_scores(
    model: Classifier, test: pd.DataFrame, schema: Schema
) -> npt.NDArray[np.float64]:
    """A model's positive-class scores on the test rows, from the columns it was trained with.

    Raises:
        ModelopsError: a column is missing (`columns_of`), or the model does not predict the
            positive class.
    """
    needed = columns_of(model, test, schema)
    classes = [str(c) for c in model.classes_]
    if schema.positive_label not in classes:
        raise ModelopsError(
            f"the champion predicts classes {classes}, not '{schema.positive_label}'"
        )
    proba = model.predict_proba(test.loc[:, needed])
    scores: npt.NDArray[np.float64] = np.asarray(
        proba[:, classes.index(schema.positive_label)], dtype=np.float64
    )
    return scores


def _metric(
    name: str, truth: npt.NDArray[np.float64], score: npt.NDArray[np.float64], threshold: float
) -> float:
    return float(
        METRICS[name](np.ones((1, len(truth)), dtype=np.float32), truth, score, threshold)[0]
    )

"""Decide a check from the numbers Deepchecks computed, with their sample sizes and intervals.

Deepchecks' own conditions compare a point estimate with a threshold, whatever the number of
rows: on a hundred rows that blocks clean data by accident, and passes broken data by luck.
A judge reads the same result, attaches the interval the sample supports (`statistics`), and
decides pass, fail or inconclusive; an inconclusive record says in one sentence how many rows
would settle it. Pure functions over the check result and the data's sizes; what they share
(the evidence, the verdict, the wording) is in `evidence`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from modelops.gates import bootstrap
from modelops.gates.evidence import (
    MIN_POSITIVES,
    OUTLIER_ROWS,
    Evidence,
    GateParamsT,
    Judge,
    Sizes,
    Verdict,
    at_least,
    needs_rows,
    rate_at_most,
    worst,
)
from modelops.statistics import (
    Decision,
    Interval,
    auc_interval,
    cramers_v_interval,
    cramers_v_rows_needed,
    decide_at_least,
    decide_at_most,
    ks_interval,
    ks_rows_needed,
    leans_beyond_limit,
    wilson,
    youden_j,
    z_value,
)

if TYPE_CHECKING:
    from modelops.params import DataGateParams, DriftGateParams, ModelGateParams

# Rates ---------------------------------------------------------------------------------------


def ratio_judge(
    read: Callable[[Any], float],
    limit_of: Callable[[GateParamsT], float],
    what: str,
    *,
    severe: str = "",
) -> Judge[GateParamsT]:
    """A judge of one share: `read` takes it from Deepchecks' value, `limit_of` from params;
    `severe` (the way out) fails an estimate beyond the limit at any sample size."""

    def judge(evidence: Evidence[GateParamsT]) -> list[Verdict]:
        rows = evidence.rows()
        events = round(read(evidence.value) * rows)
        z = z_value(evidence.confidence)
        limit = limit_of(evidence.params)
        return [rate_at_most(events, rows, limit, z=z, what=what, unit="rows", severe=severe)]

    return judge


duplicates: Judge[DataGateParams] = ratio_judge(
    lambda v: float(v), lambda p: p.max_duplicate_ratio, "duplicated"
)
conflicting_labels: Judge[DataGateParams] = ratio_judge(
    lambda v: float(v["percent_of_conflicting_samples"]),
    lambda p: p.max_conflicting_label_ratio,
    "with a conflicting label",
)


def nulls(evidence: Evidence[DataGateParams]) -> list[Verdict]:
    """Per column, at most `max_null_ratio` nulls; the columns share the error rate."""
    shares = evidence.value["Percent of nulls in sample"]
    rows = evidence.rows()
    z = z_value(evidence.confidence, tests=len(shares))
    limit = evidence.params.max_null_ratio
    per_column = {
        str(column): rate_at_most(round(share * rows), rows, limit, z=z, what="null", unit="rows")
        for column, share in shares.items()
    }
    return [worst(per_column, f"share of nulls in each column at most {limit:g}")]


def outliers(evidence: Evidence[DataGateParams]) -> list[Verdict]:
    """At most `max_outlier_ratio` rows with an outlier probability above the cut-off.

    Deepchecks returns 1,000 quantiles of the rows' probabilities, whatever the rows: the share
    above the cut-off comes from them, the sample size from the rows the check scored (its
    sample of at most `OUTLIER_ROWS`), so 214 test rows are judged as 214, not as 1,000.
    """
    quantiles = np.asarray(evidence.value, dtype=np.float64)
    cut = evidence.params.outlier_probability
    rows = min(evidence.rows(), OUTLIER_ROWS)
    share = float(np.mean(quantiles > cut)) if len(quantiles) else 0.0
    return [
        rate_at_most(
            round(share * rows),
            rows,
            evidence.params.max_outlier_ratio,
            z=z_value(evidence.confidence),
            what=f"outlying (probability > {cut:g})",
            unit="rows",
        )
    ]


def new_categories(evidence: Evidence[DriftGateParams]) -> list[Verdict]:
    """Test rows with a category never seen in train, beyond what sampling alone leaves unseen.

    A category absent from a small train set by chance is expected: Good-Turing's estimate of
    the unseen share (values seen once in train / train rows) is added to the limit.
    """
    table = evidence.value
    rows = evidence.sizes.test_rows
    z = z_value(evidence.confidence, tests=max(len(table), 1))
    limit = evidence.params.max_new_category_ratio
    per_column = {}
    for column, entry in table.iterrows():
        unseen = evidence.sizes.singletons.get(str(column), 0) / max(evidence.sizes.train_rows, 1)
        events = round(float(entry["Ratio of New Categories"]) * rows)
        verdict = rate_at_most(
            events, rows, limit + unseen, z=z, what="with a new category", unit="test rows"
        )
        per_column[str(column)] = verdict
    condition = f"share of test rows with a new category at most {limit:g} (+ unseen by chance)"
    return [worst(per_column, condition)]


def single_value(evidence: Evidence[DataGateParams]) -> list[Verdict]:
    """A column with one value is a broken feed, unless so few rows show one value by chance.

    Constant over all the data: it fails. Constant in this dataset only: the chance that n rows
    all draw the most common value (top share ** n) decides whether that is evidence.
    """
    rows = evidence.rows()
    constant = [str(column) for column, count in evidence.value.items() if count <= 1]
    tests = max(len(evidence.value), 1)
    alpha = (1.0 - evidence.confidence) / tests
    per_column = {}
    for column in constant:
        everywhere = evidence.sizes.distinct.get(column, 1) <= 1
        chance = 0.0 if everywhere else evidence.sizes.top_share.get(column, 1.0) ** rows
        if everywhere or chance <= alpha:
            where = "in all the data" if everywhere else f"in these {rows} rows"
            per_column[column] = Verdict("fail", "", f"one value {where}")
        else:
            per_column[column] = Verdict(
                "inconclusive",
                "",
                f"one value in {rows} rows; more in the other set",
                f"inconclusive: {rows} rows show one value of '{column}' by chance with "
                f"probability {chance:.2f}; more rows would tell a constant column from luck",
            )
    return [worst(per_column, "no column holds a single value")]


# Distribution distances ----------------------------------------------------------------------


def feature_drift(evidence: Evidence[DriftGateParams]) -> list[Verdict]:
    """Per feature, drift within its limit; the features share the error rate."""
    params = evidence.params
    tests = max(len(evidence.value), 1)
    per_column = {
        str(column): _distance(
            entry["Drift score"],
            str(entry["Method"]),
            evidence,
            limit=params.max_categorical_drift
            if "Cramer" in str(entry["Method"])
            else params.max_numeric_drift,
            categories=evidence.sizes.categories.get(str(column), 2),
            tests=tests,
        )
        for column, entry in evidence.value.items()
    }
    condition = (
        f"drift of each feature at most {params.max_numeric_drift:g} (numeric, KS) and "
        f"{params.max_categorical_drift:g} (categorical, Cramér's V)"
    )
    return [worst(per_column, condition)]


def label_drift(evidence: Evidence[DriftGateParams]) -> list[Verdict]:
    limit = evidence.params.max_label_drift
    verdict = _distance(
        evidence.value["Drift score"],
        str(evidence.value["Method"]),
        evidence,
        limit=limit,
        categories=2,
    )
    return [replace(verdict, condition=f"label drift at most {limit:g}")]


def prediction_drift(evidence: Evidence[ModelGateParams]) -> list[Verdict]:
    limit = evidence.params.max_prediction_drift
    verdict = _distance(
        evidence.value["Drift score"],
        str(evidence.value["Method"]),
        evidence,
        limit=limit,
        categories=2,
    )
    return [replace(verdict, condition=f"prediction drift at most {limit:g}")]


def multivariate_drift(evidence: Evidence[DriftGateParams]) -> list[Verdict]:
    """The domain classifier's drift score (2 AUC - 1) from its held-out AUC's interval.

    Deepchecks samples min(train, test, sample_rows) rows of each side and holds 30% out.
    """
    limit = evidence.params.max_multivariate_drift
    sample = min(evidence.sizes.train_rows, evidence.sizes.test_rows)
    held_out = max(1, round(0.3 * sample))
    auc = float(evidence.value["domain_classifier_auc"])
    found = auc_interval(auc, held_out, held_out, z=z_value(evidence.confidence))
    drift = Interval(
        max(2 * auc - 1, 0.0), max(2 * found.low - 1, 0.0), max(2 * found.high - 1, 0.0)
    )
    decision = decide_at_most(drift, limit)
    value = f"domain classifier AUC {auc:.3f} on {2 * held_out} held-out rows: drift {drift.text()}"
    reason = ""
    if decision == "inconclusive":
        reason = needs_rows(
            f"{sample} rows per side cannot tell whether the data drifted beyond {limit:g}",
            sample,
            drift,
            limit,
            unit="rows per side",
        )
    return [
        Verdict(
            decision,
            f"multivariate drift at most {limit:g}",
            value,
            reason,
            leans_fail=leans_beyond_limit(drift, limit, at_most=True),
        )
    ]


def _distance(
    score: float,
    method: str,
    evidence: Evidence[GateParamsT],
    *,
    limit: float,
    categories: int,
    tests: int = 1,
) -> Verdict:
    train, test = evidence.sizes.train_rows, evidence.sizes.test_rows
    if "Cramer" in method:
        found = cramers_v_interval(
            float(score), train + test, categories, confidence=evidence.confidence, tests=tests
        )
        needed = cramers_v_rows_needed(
            limit, categories, confidence=evidence.confidence, tests=tests
        )
        name = "Cramér's V"
    else:
        found = ks_interval(float(score), train, test, confidence=evidence.confidence, tests=tests)
        share = train / max(train + test, 1)
        needed = ks_rows_needed(limit, share=share, confidence=evidence.confidence, tests=tests)
        name = "KS"
    decision = decide_at_most(found, limit)
    value = f"{name} {found.text()} on {train} + {test} rows"
    reason = ""
    if decision == "inconclusive":
        reason = (
            f"inconclusive: {train} + {test} rows cannot tell a drift of {limit:g} from none "
            f"({name} {found.text()}); about {needed} rows in all would"
        )
    return Verdict(
        decision,
        f"drift at most {limit:g}",
        value,
        reason,
        leans_fail=leans_beyond_limit(found, limit, at_most=True),
    )


# The model -----------------------------------------------------------------------------------


def performance(evidence: Evidence[ModelGateParams]) -> list[Verdict]:
    """ROC AUC (Hanley-McNeil) and the positive class's recall (Wilson) against their minimums."""
    params, sizes = evidence.params, evidence.sizes
    table = evidence.value
    auc = float(table[table["Metric"] == "roc_auc"]["Value"].iloc[0])
    positives, negatives = sizes.test_positives, sizes.test_rows - sizes.test_positives
    z = z_value(evidence.confidence)
    found_auc = auc_interval(auc, positives, negatives, z=z)
    verdicts = [
        at_least(
            found_auc,
            params.min_roc_auc,
            condition=f"ROC AUC at least {params.min_roc_auc:g}",
            value=f"ROC AUC {found_auc.text()} on {positives} positive and {negatives} negative "
            "test rows",
            rows=sizes.test_rows,
            what="ROC AUC",
        )
    ]
    recall_rows = table[(table["Metric"] == "recall")]
    if evidence.test_truth is not None and evidence.test_score is not None:
        hits = int(
            np.sum((evidence.test_truth > 0.5) & (evidence.test_score >= evidence.threshold))
        )
    else:  # from the table, for the positive class
        hits = round(float(recall_rows["Value"].iloc[-1]) * positives)
    found_recall = wilson(hits, positives, z=z)
    verdicts.append(
        at_least(
            found_recall,
            params.min_recall,
            condition=f"recall of the positive class at least {params.min_recall:g}",
            value=f"recall {found_recall.text()}: {hits} of {positives} positives found",
            rows=positives,
            what="recall",
            unit="positive test rows",
        )
    )
    if evidence.test_truth is not None and evidence.test_score is not None:
        verdicts.append(_too_good(evidence, evidence.test_truth > 0.5, evidence.test_score))
    return verdicts


# A model this good at its threshold can be legitimate (breast-cancer screening scores 0.95 to
# 0.99 on clean data): a perfect score blocks once its interval rules out "merely excellent".
_EXCELLENT = 0.95
# A feature whose separation of the test classes is within this of the model's carries it alone.
_SAME_SEPARATION = 0.01


def _too_good(
    evidence: Evidence[ModelGateParams],
    positive: npt.NDArray[np.bool_],
    score: npt.NDArray[np.float64],
) -> Verdict:
    """A (nearly) perfect balanced accuracy at the threshold is too good to be true: a leak
    (a column computed from the outcome, rows of test in train) is likelier than a perfect
    model. A score beyond the limit fails once its interval excludes a merely excellent model,
    and at any size when one feature alone separates the test classes as well as the model
    does; below the limit it passes (an imperfect score is not a symptom)."""
    limit = evidence.params.max_balanced_accuracy
    decided = score >= evidence.threshold
    positives, negatives = int(positive.sum()), int((~positive).sum())
    z = z_value(evidence.confidence, tests=2)
    tpr = wilson(int((decided & positive).sum()), positives, z=z)
    tnr = wilson(int((~decided & ~positive).sum()), negatives, z=z)
    found = Interval(
        (tpr.estimate + tnr.estimate) / 2, (tpr.low + tnr.low) / 2, (tpr.high + tnr.high) / 2
    )
    model_j = youden_j(score, positive)
    carried = {
        f: j
        for f, j in evidence.sizes.test_separation.items()
        if f not in evidence.trusted and j >= model_j - _SAME_SEPARATION
    }
    alone = max(carried, key=lambda f: carried[f]) if carried else None
    # An imperfect score is never too good: only a score beyond the limit is looked at.
    decision: Decision = "pass"
    if found.estimate > limit:
        decision = "fail" if alone is not None or found.low > _EXCELLENT else "inconclusive"
    value = (
        f"balanced accuracy {found.text()} at threshold {evidence.threshold:g} on {positives} "
        f"positive and {negatives} negative test rows; the model separates them with J "
        f"{model_j:.3f}"
    )
    reason = ""
    if decision == "fail":
        carrier = (
            f"'{alone}' alone separates the test classes as well as the model (J "
            f"{carried[alone]:.3f} vs {model_j:.3f}), "
            if alone is not None
            else ""
        )
        reason = (
            f"too good to be true: {carrier}a (nearly) perfect score is likelier a leak than a "
            "model. Find the column computed from or after the outcome and drop it "
            "(`prepare.columns.drop`); if a feature is legitimately that strong and known when a "
            "prediction is made, list it in `gates.drift.trusted_features`; if the problem is "
            "truly this easy, raise `gates.model.max_balanced_accuracy`"
        )
    elif decision == "inconclusive":
        reason = needs_rows(
            f"{positives + negatives} test rows cannot tell a perfect model (a leak) from an "
            "excellent one",
            positives + negatives,
            found,
            _EXCELLENT,
            unit="test rows",
        )
    return Verdict(
        decision,
        f"not too good to be true: balanced accuracy at most {limit:g}",
        value,
        reason,
        leans_fail=decision == "inconclusive",
    )


def simple_model(evidence: Evidence[ModelGateParams]) -> list[Verdict]:
    """The positive class's F1 gain over the majority class, with a bootstrap interval."""
    limit = evidence.params.min_simple_model_gain
    condition = f"F1 gain over the majority class at least {limit:g}"
    positives = evidence.sizes.test_positives
    if positives < MIN_POSITIVES:
        reason = (
            f"inconclusive: {positives} positive test rows are too few for an interval of the "
            f"F1 gain; at least {MIN_POSITIVES} would give one"
        )
        return [Verdict("inconclusive", condition, f"{positives} positive test rows", reason)]
    simple = float(evidence.value["scores"]["F1"][evidence.positive_label]["Simple"])
    assert evidence.test_truth is not None, "the model gate shares its predictions"
    assert evidence.test_score is not None, "the model gate shares its predictions"
    found = bootstrap.interval(
        evidence.test_truth,
        evidence.test_score,
        "f1",
        threshold=evidence.threshold,
        resamples=evidence.resamples,
        confidence=evidence.confidence,
        seed=evidence.seed,
    )
    scale = 1.0 - simple if simple < 1.0 else 1.0
    gain = Interval(
        (found.estimate - simple) / scale,
        (found.low - simple) / scale,
        (found.high - simple) / scale,
    )
    return [
        at_least(
            gain,
            limit,
            condition=condition,
            value=f"F1 {found.text()} against {simple:.3f} for the majority class: gain "
            f"{gain.text()} (bootstrap, {evidence.resamples} resamples)",
            rows=evidence.sizes.test_rows,
            what="the F1 gain",
        )
    ]


def weak_segments(evidence: Evidence[ModelGateParams]) -> list[Verdict]:
    """The weakest segment of at least `min_segment_rows`, against the average accuracy.

    Segments are searched, so the weakest is an extreme of many: the intervals share the error
    rate over the segments Deepchecks reports.
    """
    params = evidence.params
    limit = params.max_weak_segment_drop
    minimum = params.min_segment_rows
    segments = evidence.value["weak_segments_list"]
    average = float(evidence.value["avg_score"])
    floor = average * (1.0 - limit)
    condition = (
        f"no segment of {minimum}+ rows more than {limit:g} below the average accuracy "
        f"({average:.3f}, so not under {floor:.3f})"
    )
    sized = [
        (float(row["Accuracy Score"]), len(row["Samples in Segment"]), _segment_name(row))
        for _, row in segments.iterrows()
        if len(row["Samples in Segment"]) >= minimum
    ]
    rows = evidence.sizes.test_rows
    if not sized:
        return [
            Verdict("pass", condition, f"no weak segment of {minimum}+ rows in {rows} test rows")
        ]
    z = z_value(evidence.confidence, tests=len(sized))
    per_segment = {}
    for accuracy, size, name in sized:
        found = wilson(round(accuracy * size), size, z=z)
        decision = decide_at_least(found, floor)
        reason = ""
        if decision == "inconclusive":
            reason = needs_rows(
                f"a segment of {size} rows cannot tell whether its accuracy is under {floor:.3f}",
                size,
                found,
                floor,
                unit="rows in the segment",
            )
        # No lean: the weakest of the searched segments has an estimate biased low by the
        # search itself, so below the floor is what chance alone shows on small test sets.
        per_segment[name] = Verdict(decision, "", f"accuracy {found.text()} on {size} rows", reason)
    return [worst(per_segment, condition, order=("fail", "inconclusive", "pass"))]


def weak_segments_too_small(sizes: Sizes, params: ModelGateParams) -> str | None:
    """Below two minimum segments of test rows the search has nothing it may call weak."""
    minimum = params.min_segment_rows
    if sizes.test_rows >= 2 * minimum:
        return None
    return (
        f"inconclusive: {sizes.test_rows} test rows hold no segment of {minimum} rows "
        f"(gates.model.min_segment_rows) to judge; at least {2 * minimum} test rows would"
    )


def overfitting(evidence: Evidence[ModelGateParams]) -> list[Verdict]:
    """The relative ROC AUC drop from train to test, from both AUCs' intervals."""
    limit = evidence.params.max_overfitting
    table = evidence.value
    sizes = evidence.sizes
    train = float(table[table["Dataset"] == "Train"]["Value"].iloc[0])
    test = float(table[table["Dataset"] == "Test"]["Value"].iloc[0])
    z = z_value(evidence.confidence)
    in_train = auc_interval(
        train, sizes.train_positives, sizes.train_rows - sizes.train_positives, z=z
    )
    in_test = auc_interval(test, sizes.test_positives, sizes.test_rows - sizes.test_positives, z=z)
    drop = Interval(
        1.0 - test / train if train > 0 else 0.0,
        max(-1.0, 1.0 - in_test.high / max(in_train.low, 1e-9)),
        min(1.0, 1.0 - in_test.low / max(in_train.high, 1e-9)),
    )
    decision = decide_at_most(drop, limit)
    reason = ""
    if decision == "inconclusive":
        reason = needs_rows(
            f"{sizes.test_rows} test rows cannot tell whether ROC AUC drops more than {limit:g} "
            "from train to test",
            sizes.test_rows,
            drop,
            limit,
            unit="test rows",
        )
    value = f"ROC AUC train {in_train.text()} vs test {in_test.text()}: relative drop {drop.text()}"
    return [
        Verdict(
            decision,
            f"relative ROC AUC drop at most {limit:g}",
            value,
            reason,
            leans_fail=leans_beyond_limit(drop, limit, at_most=True),
        )
    ]


def _segment_name(row: pd.Series) -> str:
    parts = [f"{row['Feature1']} in {row['Feature1 Range']}"]
    if isinstance(row.get("Feature2"), str) and row.get("Feature2"):
        parts.append(f"{row['Feature2']} in {row['Feature2 Range']}")
    return " and ".join(parts)

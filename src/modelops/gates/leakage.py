"""Leakage judges: what makes every other number of a pull request a lie.

A leak is severe: it fails on its estimate at any sample size (`statistics.decide_severe_at_most`),
naming the column and the way out, instead of waiting for a whole interval beyond its limit
as the other judges do (runbooks/pr-gates.md states the rule for each check).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops.gates.evidence import Evidence, Verdict, needs_rows, worst
from modelops.gates.judges import ratio_judge
from modelops.statistics import (
    Interval,
    auc_interval,
    decide_at_most,
    decide_severe_at_most,
    difference,
    ks_interval,
    leans_beyond_limit,
    wilson,
    z_value,
)

if TYPE_CHECKING:
    from modelops.gates.evidence import Judge
    from modelops.params import DriftGateParams

sample_overlap: Judge[DriftGateParams] = ratio_judge(
    lambda v: float(v["ratio"]),
    lambda p: p.max_sample_overlap_ratio,
    "also in train",
    severe="the same rows are in train and test (duplicated records across the split): "
    "deduplicate the source before `prepare` splits it",
)


def label_correlation(evidence: Evidence[DriftGateParams]) -> list[Verdict]:
    """A leak predicts the label almost alone, or far better in train than in test.

    The predictive power score (PPS) is a one-feature model's F1 rescaled by the F1 of always
    predicting the majority class; its interval is a Wilson interval of the F1 on the rows
    scored, shrunk by that rescaling (`_score_interval`). A strong legitimate feature predicts
    well but not almost perfectly, and as well in test as in train;
    `gates.drift.trusted_features` lists features known to be legitimately that strong.
    """
    params = evidence.params
    train, test = evidence.value["train"], evidence.value["test"]
    features = [f for f in train if str(f) not in evidence.trusted]
    tests = max(len(features), 1)
    z = z_value(evidence.confidence, tests=tests)
    rows_train, rows_test = evidence.sizes.train_rows, evidence.sizes.test_rows
    alone, gap = {}, {}
    sizes = evidence.sizes
    for feature in features:
        in_train = _score_interval(
            float(train[feature]), rows_train, z=z, positives=sizes.train_positives
        )
        in_test = _score_interval(
            float(test.get(feature, 0.0)), rows_test, z=z, positives=sizes.test_positives
        )
        alone[str(feature)] = _leak_verdict(
            in_train,
            params.max_feature_label_pps,
            (rows_train, f"{rows_train} rows"),
            what="predicts the label alone",
            measure="PPS",
            column=str(feature),
        )
        change = difference(in_train, in_test)
        decision = decide_at_most(change, params.max_feature_label_pps_change)
        reason = ""
        if decision == "inconclusive":
            reason = needs_rows(
                f"{rows_train} + {rows_test} rows cannot tell whether it predicts the label better "
                f"in train than in test by more than {params.max_feature_label_pps_change:g}",
                rows_test,
                change,
                params.max_feature_label_pps_change,
                unit="test rows",
            )
        gap[str(feature)] = Verdict(
            decision,
            "",
            f"train {in_train.text()} vs test {in_test.text()}",
            reason,
            leans_fail=leans_beyond_limit(
                change, params.max_feature_label_pps_change, at_most=True
            ),
        )
    trusted = f" (trusted: {', '.join(evidence.trusted)})" if evidence.trusted else ""
    return [
        worst(
            alone,
            f"no feature predicts the label alone beyond PPS {params.max_feature_label_pps:g}"
            + trusted,
        ),
        worst(
            _separation(evidence),
            "no feature separates the classes alone beyond J "
            f"{params.max_feature_label_separation:g}" + trusted,
        ),
        worst(
            gap,
            "no feature predicts the label better in train than in test by more than "
            f"{params.max_feature_label_pps_change:g}",
        ),
    ]


def identifier_leakage(evidence: Evidence[DriftGateParams]) -> list[Verdict]:
    """The order of the id or the timestamp must not predict the label.

    Deepchecks scores the id with ppscore, which gives 0 to any column whose values are all
    unique (ids and timestamps always are), so it can never see an export sorted by outcome.
    Here the order itself is scored: |2 AUC - 1| of the ranks against the label, in train, with
    the Hanley-McNeil interval.
    """
    limit = evidence.params.max_identifier_label_power
    sizes = evidence.sizes
    z = z_value(evidence.confidence, tests=max(len(sizes.order_auc), 1))
    positives, negatives = sizes.train_positives, sizes.train_rows - sizes.train_positives
    per_column = {}
    for column, auc in sizes.order_auc.items():
        found = auc_interval(auc, positives, negatives, z=z)
        power = Interval(
            abs(2 * auc - 1),
            max(0.0, 2 * found.low - 1, 1 - 2 * found.high),
            max(abs(2 * found.low - 1), abs(2 * found.high - 1)),
        )
        decision = decide_severe_at_most(power, limit)
        reason = ""
        if decision == "fail":
            reason = (
                f"the order of '{column}' predicts the label (|2 AUC - 1| {power.text()}, beyond "
                f"{limit:g}): a leak fails at any sample size. The export is sorted by outcome "
                "or its ids are handed out after it: fix the export"
            )
        elif decision == "inconclusive":
            reason = needs_rows(
                f"{sizes.train_rows} rows cannot tell whether the order of '{column}' predicts "
                f"the label beyond {limit:g}",
                sizes.train_rows,
                power,
                limit,
                unit="rows",
            )
        per_column[column] = Verdict(
            decision,
            "",
            f"order vs label: |2 AUC - 1| {power.text()} (AUC {auc:.3f})",
            reason,
        )
    return [
        worst(per_column, f"the id's and timestamp's order predict the label at most {limit:g}")
    ]


def _score_interval(score: float, rows: int, *, z: float, positives: int) -> Interval:
    """A PPS with an interval: PPS = (F1 - F1_naive) / (1 - F1_naive), so its standard error is
    the F1's divided by (1 - F1_naive); a Wilson interval on rows * (1 - F1_naive)**2 effective
    rows has that spread. F1_naive is the weighted F1 of predicting the majority class."""
    clipped = min(max(score, 0.0), 1.0)
    majority = max(positives, rows - positives) / rows if rows else 1.0
    naive = majority * 2 * majority / (1 + majority)
    effective = max(1, round(rows * (1 - naive) ** 2))
    found = wilson(round(clipped * effective), effective, z=z)
    return Interval(clipped, found.low, found.high)


def _separation(evidence: Evidence[DriftGateParams]) -> dict[str, Verdict]:
    """Per feature: how well it alone separates the classes (Youden's J, the Kolmogorov-Smirnov
    distance between the positives' and the negatives' values), with the DKW interval of the two
    classes' CDFs over every train and test row.

    The predictive power score reads about 0 on an imbalanced label (it rescales F1 by the
    majority class's), so a copy of a 3 %-positive label with 5 % of rows flipped passes it; J
    reads 0.9 for that copy at any class balance.
    """
    sizes, limit = evidence.sizes, evidence.params.max_feature_label_separation
    measured = {f: j for f, j in sizes.separation.items() if f not in evidence.trusted}
    positives, negatives = sizes.all_positives, sizes.all_negatives
    rows = (positives, f"{positives} positive and {negatives} negative rows")
    verdicts = {}
    for feature, j in measured.items():
        found = ks_interval(
            j, positives, negatives, confidence=evidence.confidence, tests=max(len(measured), 1)
        )
        verdicts[feature] = _leak_verdict(
            found,
            limit,
            rows,
            what="separates the classes alone",
            measure="J = max |TPR - FPR|",
            column=feature,
            unit="positive rows",
        )
    return verdicts


def _leak_verdict(
    found: Interval,
    limit: float,
    rows: tuple[int, str],
    *,
    what: str,
    measure: str,
    column: str,
    unit: str = "rows",
) -> Verdict:
    """A feature that predicts the label almost alone is a leak: it fails on its estimate, at
    any sample size, naming the way out for a feature that is legitimately that strong."""
    decision = decide_severe_at_most(found, limit)
    reason = ""
    if decision == "fail":
        reason = (
            f"'{column}' {what} ({measure} {found.text()}, beyond {limit:g}): it leaks the "
            "label, and a leak fails at any sample size. Remove it if it is computed from or "
            "after the outcome (`prepare.columns.drop`); if it is legitimately that strong and "
            "known when a prediction is made, list it in `gates.drift.trusted_features`"
        )
    elif decision == "inconclusive":
        reason = needs_rows(
            f"{rows[1]} cannot tell whether it {what} beyond {measure} {limit:g}",
            rows[0],
            found,
            limit,
            unit=unit,
        )
    return Verdict(
        decision,
        "",
        f"{measure} {found.text()} on {rows[1]}",
        reason,
        leans_fail=decision == "inconclusive" and leans_beyond_limit(found, limit, at_most=True),
    )

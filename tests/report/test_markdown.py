"""The report's text: pinned by a golden file, bounded by GitHub's comment limit.

Regenerate the golden file after an intended change with `UPDATE_GOLDEN=1 pytest tests/report`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from modelops.deploy.preview import DeployPreview, EnvironmentChange
from modelops.gates.edge import NOT_APPLICABLE
from modelops.gates.results import CheckRecord, GateResult
from modelops.paths import ProjectPaths
from modelops.report.inputs import BaseRef, Plot, ReportInputs, ValueChange
from modelops.report.markdown import COMMENT_LIMIT, REPORT_DIR, render

GOLDEN = Path(__file__).parent / "golden"


def _inputs() -> ReportInputs:
    leak = CheckRecord(
        "label_correlation",
        "Feature-label correlation",
        "train vs test",
        "Train features' Predictive Power Score is less than 0.7",
        "Found 1 out of 15 features in train dataset with PPS above threshold: {'refund': '0.93'}",
        "fail",
        "A feature predicts the label almost alone, or much better than in test: it leaks it.",
        tuned_by="gates.drift.max_feature_label_pps = 0.9; gates.drift.skip: [label_correlation]",
    )
    unsure = CheckRecord(
        "duplicates",
        "Duplicate rows",
        "test",
        "share duplicated at most 0.05",
        "0 of 40 rows duplicated: 0.0% [0.0%, 8.8%]",
        "inconclusive",
        "inconclusive: 40 rows cannot show the share duplicated is under 0.05 (0.0% [0.0%, 8.8%]); "
        "about 73 rows at this rate would",
        tuned_by="gates.data.max_duplicate_ratio = 0.05; gates.data.skip: [duplicates]",
    )
    gates = (
        GateResult(
            "data",
            "enforce",
            "pass",
            (CheckRecord("nulls", "Percent of nulls", "train", "c", "v", "pass"), unsure),
        ),
        GateResult(
            "drift",
            "enforce",
            "fail",
            (
                leak,
                CheckRecord(
                    "date_leakage",
                    "Date leakage",
                    "-",
                    "",
                    "",
                    "not_applicable",
                    "random split: train and test dates overlap by design",
                ),
            ),
        ),
        GateResult(
            "model",
            "warn",
            "fail",
            (
                CheckRecord(
                    "weak_segments",
                    "Weak segments",
                    "test",
                    "c",
                    "timed out",
                    "timeout",
                    "did not finish",
                ),
            ),
        ),
        GateResult(
            "champion",
            "enforce",
            "pass",
            checks=(
                CheckRecord(
                    "roc_auc",
                    "Champion comparison",
                    "test (both models)",
                    "roc_auc not lower than the champion's by more than 0.01",
                    "candidate 0.8300 vs champion 0.8100 (+0.0200)",
                    "pass",
                ),
            ),
            context={
                "champion": "production's stable model 1a2b3c4d5e6f "
                "(manifests/releases/production.yaml on main (0123456789ab))",
                "source": "the model store (s3://models/churn/1a2b3c)",
            },
        ),
        GateResult(
            "latency",
            "warn",
            "fail",
            checks=(
                CheckRecord(
                    "single_row",
                    "Serving latency",
                    "one-row requests, both models",
                    "time per row at most 1.2x the champion's",
                    "candidate 0.61 ms vs champion 0.52 ms per row: 1.17x [1.02x, 1.34x], slower "
                    "(95% sign-test interval of the median of 20 paired repeats of 10 requests "
                    "per model)",
                    "inconclusive",
                    "inconclusive: 20 paired repeats cannot tell whether the candidate is more "
                    "than 20% slower per row (1.17x [1.02x, 1.34x]): the timings vary too much; "
                    "about 87 repeats (gates.latency.repeats), or a quieter machine, would",
                    tuned_by="gates.latency.max_slowdown = 0.2; gates.latency.repeats = 20; "
                    "gates.latency.skip: [single_row]",
                ),
                CheckRecord(
                    "batch",
                    "Serving latency",
                    "batches of 100 rows, both models",
                    "time per row at most 1.2x the champion's",
                    "candidate 61.2 µs vs champion 12.4 µs per row: 4.94x [4.71x, 5.10x], slower "
                    "(95% sign-test interval of the median of 20 paired repeats of 10 requests "
                    "per model)",
                    "fail",
                    "the candidate takes more than 1.2 times the champion's time per row",
                    tuned_by="gates.latency.max_slowdown = 0.2; gates.latency.repeats = 20; "
                    "gates.latency.skip: [batch]",
                ),
            ),
            context={
                "latency": "200 sampled test rows, 20 paired repeats in 1.4 s, 1 thread; scoring "
                "path: candidate lookup, champion trees"
            },
        ),
    )
    return ReportInputs(
        gates=gates,
        base_ref=BaseRef(
            ref="main",
            commit="0123456789abcdef0123",
            subject="Train the first model",
            date="2026-11-20",
            data_version="5d41402abc4b2a76b9719d911017c592.dir",
        ),
        metrics=(
            ValueChange("roc_auc", 0.81, 0.83),
            ValueChange("log_loss", 0.40, 0.42),
            ValueChange("recall", 0.30, 0.30),
            ValueChange("per_class.1.support", 850, 859),
            ValueChange("baseline.accuracy", 0.78, 0.785),
        ),
        data=(
            ValueChange("rows.train", 16000, 16000),
            ValueChange("positive_rate.test", 0.21, 0.2147),
        ),
        params=(ValueChange("train.model.learning_rate", 0.1, 0.3),),
        plots=(
            Plot("ROC curve", "../plots/roc.png", "report/main-roc.png"),
            Plot("Calibration", "../plots/calibration.png"),
        ),
        html_reports=("data.html", "drift.html"),
        artifacts_url="https://github.com/acme/churn/actions/runs/42",
        timings={"prepare": 1.234, "gate_data": 9.81},
        deploy=DeployPreview(
            changes=(
                EnvironmentChange(
                    "production",
                    "production: stable 1a2b3c4d5e6f (100%)",
                    "production: stable 1a2b3c4d5e6f (90%), canary 9f8e7d6c5b4a (10%)",
                ),
                EnvironmentChange(
                    "staging",
                    "staging: stable 1a2b3c4d5e6f (100%)",
                    "staging: stable 9f8e7d6c5b4a (100%)",
                ),
            ),
            diff=(
                "--- a/manifests/rendered/staging/seldondeployment.yaml\n"
                "+++ b/manifests/rendered/staging/seldondeployment.yaml\n"
                "@@ -20,1 +20,1 @@\n"
                '-      modelops.io/model-version: "1a2b3c4d5e6f"\n'
                '+      modelops.io/model-version: "9f8e7d6c5b4a"\n'
            ),
        ),
    )


def test_the_report_matches_the_golden_file() -> None:
    text = render(_inputs())
    golden = GOLDEN / "report.md"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), "run with UPDATE_GOLDEN=1 after an intended change"


def test_the_first_line_is_the_verdict() -> None:
    first = render(_inputs()).splitlines()[0]
    assert first == "## ❌ Blocked: enforced gate(s) failed: drift"
    checks = (CheckRecord("nulls", "Percent of nulls", "train", "c", "v", "pass"),)
    passing = replace(_inputs(), gates=(GateResult("data", "enforce", "pass", checks),))
    assert render(passing).splitlines()[0] == "## ✅ Safe to merge: 1 check passed"


def test_latency_shows_each_request_shape_with_its_decision_first() -> None:
    text = render(_inputs())
    assert (
        "Serving latency against the champion (200 sampled test rows, 20 paired repeats in 1.4 s, "
        "1 thread; scoring path: candidate lookup, champion trees):\n"
        "- ❔ inconclusive (one-row requests, both models): candidate 0.61 ms vs champion 0.52 ms "
        "per row: 1.17x [1.02x, 1.34x]"
    ) in text, "an inconclusive shape never reads as passed"
    assert "- ⚠️ fail (does not block) (batches of 100 rows, both models): candidate 61.2 µs" in text
    assert "| latency | warn | ⚠️ fail (does not block) | 1 failed, 1 inconclusive |" in text
    # Given the same gate enforced and passing, then it reads as passed and as blocking nothing
    latency = _inputs().gates[-1]
    passed = replace(
        latency,
        mode="enforce",
        status="pass",
        checks=tuple(replace(check, status="pass") for check in latency.checks),
    )
    text = render(replace(_inputs(), gates=(passed,)))
    assert "- ✅ pass (one-row requests, both models): " in text
    assert text.splitlines()[0] == "## ✅ Safe to merge: 2 checks passed"
    # And with no champion yet, no latency line: the gate row says why it was skipped
    skipped = GateResult("latency", "warn", "skipped", notes=("no 'main' branch yet",))
    text = render(replace(_inputs(), gates=(skipped,)))
    assert "Serving latency against" not in text
    assert "| latency | warn | ⏭️ skipped | no 'main' branch yet |" in text


def test_failures_say_what_they_mean_and_warn_mode_does_not_block() -> None:
    text = render(_inputs())
    assert "it leaks it." in text
    assert "⏱️ timeout" in text
    assert "Blocked: enforced gate(s) failed: drift" in text, "model is in warn mode"


def test_better_and_worse_follow_each_metric_direction() -> None:
    text = render(_inputs())
    assert "| roc_auc | 0.8100 | 0.8300 | +0.0200 | better |" in text
    assert "| log_loss | 0.4000 | 0.4200 | +0.0200 | worse |" in text
    assert "| recall | 0.3000 | 0.3000 | 0 |  |" in text
    assert "| baseline.accuracy | 0.7800 | 0.7850 | +0.0050 |  |" in text, "context, not a score"


def test_without_a_baseline_the_report_says_so_plainly() -> None:
    inputs = replace(
        _inputs(),
        base_ref=BaseRef(
            ref="main", problem="there is no 'main' branch yet, so nothing to compare against"
        ),
        metrics=(ValueChange("roc_auc", None, 0.83),),
        params=(),
    )
    text = render(inputs)
    assert "No comparison numbers: there is no 'main' branch yet" in text
    assert "### Params" not in text
    assert "| roc_auc | — | 0.8300 |  |  |" in text


def test_plots_can_be_listed_instead_of_embedded() -> None:
    text = render(_inputs(), images=False)
    assert "![" not in text
    assert "`plots/roc.png`" in text


def test_the_report_folder_is_where_the_report_is_written() -> None:
    paths = ProjectPaths(Path("/project"))
    assert paths.report_file.parent == paths.root / REPORT_DIR


def test_the_report_names_the_champion_and_where_it_came_from() -> None:
    text = render(_inputs())
    assert "Champion: production's stable model 1a2b3c4d5e6f" in text
    assert "from the model store" in text


def test_a_huge_report_still_fits_a_github_comment() -> None:
    many_checks = tuple(
        CheckRecord(f"check{i}", f"Check {i}", "test", "x" * 200, "y" * 300, "fail", "z" * 200)
        for i in range(400)
    )
    inputs = replace(
        _inputs(),
        gates=(GateResult("data", "enforce", "fail", many_checks),),
        params=tuple(ValueChange(f"p{i}", i, i + 1) for i in range(2000)),
    )
    text = render(inputs)
    assert len(text) <= COMMENT_LIMIT
    assert text.startswith("## ❌ Blocked")
    assert "more |" in text, "long tables say how many rows they leave out"


def test_the_deploy_section_says_what_a_merge_would_change_or_why_it_would_not() -> None:
    text = render(_inputs())
    assert "### Deploy on merge" in text
    assert "- **production**: stable 1a2b3c4d5e6f (100%) → stable 1a2b3c4d5e6f (90%)" in text
    assert "Manifest changes (1 file)" in text
    assert "```diff" in text
    refused = replace(
        _inputs(), deploy=DeployPreview(problem="production is running a canary (x at 10%)")
    )
    assert "⚠️ A merge would not deploy: production is running a canary (x at 10%)." in render(
        refused
    )
    assert "Deploy on merge" not in render(replace(_inputs(), deploy=None))


def test_a_long_manifest_diff_is_shortened_before_anything_is_cut() -> None:
    long_diff = "".join(f"+line {i}\n" for i in range(20_000))
    deploy = _inputs().deploy
    assert deploy is not None
    inputs = replace(_inputs(), deploy=replace(deploy, diff=long_diff))
    text = render(inputs)
    assert len(text) <= COMMENT_LIMIT
    assert "more lines" in text
    assert "report cut" not in text, "the diff shrinks first"


def test_rendering_is_deterministic() -> None:
    assert render(_inputs()) == render(_inputs())


def test_a_failed_row_names_the_param_that_tunes_it_and_its_value() -> None:
    text = render(_inputs())
    assert "`gates.drift.max_feature_label_pps = 0.9`" in text
    assert "Tune with (params.yaml)" in text


def test_inconclusive_checks_say_what_the_data_cannot_tell_and_do_not_fail() -> None:
    text = render(_inputs())
    assert "❔ Inconclusive: too little data to tell (2)" in text
    assert "40 rows cannot show the share duplicated is under 0.05" in text
    assert "about 73 rows at this rate would" in text
    only_unsure = GateResult(
        "data", "enforce", "inconclusive", (replace(_inputs().gates[0].checks[1]),)
    )
    first = render(replace(_inputs(), gates=(only_unsure,))).splitlines()[0]
    assert first == (
        "## ⚠️ Safe to merge, with warnings from: data (inconclusive); 0 checks passed, "
        "1 inconclusive (too little data)"
    )


def test_the_inconclusive_checks_and_their_numbers_are_under_the_verdict() -> None:
    unsure = replace(_inputs().gates[0].checks[1], leans_fail=True)
    gates = (GateResult("data", "enforce", "pass", (unsure,)),)
    lines = render(replace(_inputs(), gates=gates)).splitlines()
    assert lines[0].startswith("## ⚠️ Needs review: 1 inconclusive check(s) lean toward failing")
    top = "\n".join(lines[:8])
    assert "**Not decided: too little data**" in top
    assert (
        f"⚠️ leans toward failing: **{unsure.title}** (data, {unsure.dataset}): {unsure.value}"
        in top
    )


def test_a_lower_log_loss_reads_better_and_a_higher_one_worse() -> None:
    improved = replace(_inputs(), metrics=(ValueChange("log_loss", 0.4206, 0.42),))
    headline = render(improved).splitlines()[2]
    assert "**log_loss** 0.4200 (better: -0.0006 vs `main`)" in headline
    assert "▲" not in render(improved)
    worse = replace(_inputs(), metrics=(ValueChange("log_loss", 0.40, 0.42),))
    assert "(worse: +0.0200 vs `main`)" in render(worse)


def test_the_edge_gate_shows_each_format_with_its_decision_first() -> None:
    # Given an edge gate with a format within parity, one refused and one left out
    condition = "max |Δp| ≤ 1e-05 and the same class at evaluate.threshold 0.5 on every row"
    edge = GateResult(
        "edge",
        "enforce",
        "fail",
        checks=(
            CheckRecord(
                "native",
                "Edge bundle parity (native)",
                "600 test rows + 91 edge cases",
                condition,
                "max |Δp| 2.22e-16 (mean 3.41e-17), 0 of 691 rows classed differently; "
                "archive 41.4 KB",
                "pass",
            ),
            CheckRecord(
                "onnx",
                "Edge bundle parity (onnx)",
                "test set + edge cases",
                "`modelops export --format onnx` converts the model",
                "refused before any row was scored",
                "fail",
                "--format onnx cannot hold this model: skl2onnx ignores HistGradientBoosting's "
                "native categorical splits. Use --format native",
                tuned_by="deploy.environments.devices.format = onnx",
            ),
        ),
        context={"edge": "native for tills; onnx for devices"},
    )
    text = render(replace(_inputs(), gates=(edge,)))
    # Then each format has its line, the decision first; the refusal's cause is under What failed
    assert (
        "Edge bundles of this model, as `modelops export` builds them (unsigned, nothing "
        "published): native for tills; onnx for devices\n"
        "- ✅ pass **native** (600 test rows + 91 edge cases): max |Δp| 2.22e-16 (mean "
        f"3.41e-17), 0 of 691 rows classed differently; archive 41.4 KB; needs {condition}\n"
        "- ❌ fail **onnx** (test set + edge cases): refused before any row was scored (why: "
        "What failed)"
    ) in text
    assert "| edge | Edge bundle parity (onnx) | test set + edge cases |" in text
    assert "| refused before any row was scored | ❌ fail | --format onnx cannot hold" in text
    assert "Use --format native | `deploy.environments.devices.format = onnx` |" in text
    assert text.splitlines()[0] == "## ❌ Blocked: enforced gate(s) failed: edge"
    # And without an edge environment: no section, the row says it does not apply
    skipped = GateResult("edge", "enforce", "skipped", notes=(NOT_APPLICABLE,))
    text = render(replace(_inputs(), gates=(skipped,)))
    assert "Edge bundles of this model" not in text
    assert f"| edge | enforce | ⏭️ skipped | {NOT_APPLICABLE} |" in text

"""A short summary of the pipeline's outputs: where everything is, and the headline numbers."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from modelops.io import JSONObject
from modelops.paths import ProjectPaths
from modelops.prepared import META_FILE

MLFLOW_UI_URL = "http://127.0.0.1:5000"


def describe(paths: ProjectPaths) -> str:
    """Lines naming each output, or saying it is missing and which command makes it."""
    lines = ["modelops outputs (paths relative to the project root):"]
    meta = _read_json(paths.prepared_dir / META_FILE)
    if meta:
        lines.append(
            f"  data     {paths.show(paths.prepared_dir)}/  train {meta['train_rows']} rows, "
            f"test {meta['test_rows']} rows, positive rate {meta['train_positive_rate']:.3f}, "
            f"data hash {meta['data_hash'][:12]}  (source: {meta['source']})"
        )
    else:
        lines.append("  data     missing: run `dvc repro prepare`")
    if (paths.model_dir / "MLmodel").is_file():
        lines.append(f"  model    {paths.show(paths.model_dir)}/  (MLflow model directory)")
    else:
        lines.append("  model    missing: run `dvc repro train`")
    metrics = _read_json(paths.model_metrics)
    if metrics:
        lines.append(
            f"  metrics  {paths.show(paths.model_metrics)}  roc_auc {metrics['roc_auc']:.4f}, "
            f"accuracy {metrics['accuracy']:.4f} (majority baseline "
            f"{metrics['baseline']['accuracy']:.4f}), f1 {metrics['f1']:.4f}"
        )
        plots = sorted(p.name for p in paths.plots_dir.glob("*.png"))
        lines.append(f"  plots    {paths.show(paths.plots_dir)}/  {', '.join(plots)}")
    else:
        lines.append("  metrics  missing: run `dvc repro evaluate`")
    gates = _read_json(paths.gates_file)
    if gates:
        lines.append(
            f"  gates    {paths.show(paths.gates_file)}  {gates['verdict']['headline']}"
            f"  (full reports: {paths.show(paths.html_dir)}/)"
        )
    else:
        lines.append("  gates    missing: run `dvc repro`")
    if paths.report_file.is_file():
        lines.append(f"  report   {paths.show(paths.report_file)}  (the pull-request comment)")
    run = _read_json(paths.mlflow_run_file)
    if run:
        lines.append(
            f"  mlflow   run {run['run_id']} in experiment '{run['experiment']}' "
            f"at {_display_uri(run['tracking_uri'])}"
        )
        if run["tracking_uri"].startswith("sqlite:"):
            lines.append(
                f"           browse: `make mlflow-ui`, then {MLFLOW_UI_URL}/#/experiments/"
                f"{run['experiment_id']}/runs/{run['run_id']}"
            )
    return "\n".join(lines)


def _read_json(path: Path) -> JSONObject | None:
    try:
        data: JSONObject = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _display_uri(uri: str) -> str:
    """Hide credentials a server URI may carry."""
    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@")
    return uri

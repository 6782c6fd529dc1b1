"""Where each stage reads and writes, relative to the project root (mirrors `dvc.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelops.params import PARAMS_FILE

MODEL_CARD = "modelops.json"
"""Beside the MLflow files in a model directory: classes, positive label, data version and model
kind, for serving and deploys."""


@dataclass(frozen=True)
class ProjectPaths:
    """The project's file layout; `dvc.yaml` declares the same paths (a test checks it)."""

    root: Path

    def show(self, path: Path) -> str:
        """`path` relative to the root when it is inside it, for messages."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    @property
    def params_file(self) -> Path:
        return self.root / PARAMS_FILE

    @property
    def raw_dir(self) -> Path:
        """User data lives here (git- or DVC-tracked); `prepare` depends on it."""
        return self.root / "data" / "raw"

    @property
    def prepared_dir(self) -> Path:
        return self.root / "data" / "prepared"

    @property
    def model_dir(self) -> Path:
        return self.root / "models" / "model"

    @property
    def data_metrics(self) -> Path:
        return self.root / "metrics" / "data.json"

    @property
    def model_metrics(self) -> Path:
        return self.root / "metrics" / "model.json"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    @property
    def importance_file(self) -> Path:
        return self.root / "reports" / "feature_importance.json"

    @property
    def mlflow_run_file(self) -> Path:
        return self.root / "reports" / "mlflow_run.json"

    @property
    def champion_file(self) -> Path:
        """Which model the champion gate compares with (written on every `dvc repro`)."""
        return self.root / "reports" / "champion.json"

    @property
    def gate_dir(self) -> Path:
        """One JSON file per gate, written by the gate stages."""
        return self.root / "reports" / "gates"

    @property
    def gates_file(self) -> Path:
        """Every gate and the verdict: what the report and `modelops verdict` read."""
        return self.root / "reports" / "gates.json"

    @property
    def html_dir(self) -> Path:
        """Full Deepchecks HTML reports: run artifacts (git-ignored), not DVC outputs."""
        return self.root / "reports" / "deepchecks"

    @property
    def timings_file(self) -> Path:
        """How long each stage command last took (git-ignored; read by the report)."""
        return self.root / "reports" / "timings.json"

    @property
    def report_file(self) -> Path:
        return self.root / "reports" / "report.md"

    @property
    def report_images_dir(self) -> Path:
        """Plots of the base ref, extracted for the report (git-ignored)."""
        return self.root / "reports" / "report"

"""Every path of the project, relative to its root, in one place (`dvc.yaml` declares the same).

The constants are POSIX paths relative to the project root, as `dvc.yaml`, `dvc.lock` and git
name them (`git show <commit>:<path>`, the keys of `dvc metrics diff`); `ProjectPaths` joins
them to a checkout's root. A module that reads or writes a project path takes it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODEL_CARD = "modelops.json"
"""Beside the MLflow files in a model directory: classes, positive label, data version and model
kind, for serving and deploys."""

PARAMS_FILE = "params.yaml"
"""Every knob of the project (the `params` package reads and validates it)."""
DVC_FILE = "dvc.yaml"
LOCK_FILE = "dvc.lock"
RAW_DIR = "data/raw"
PREPARED_DIR = "data/prepared"
MODEL_DIR = "models/model"
DATA_METRICS = "metrics/data.json"
MODEL_METRICS = "metrics/model.json"
PLOTS_DIR = "plots"
REPORTS_DIR = "reports"
GATES_FILE = f"{REPORTS_DIR}/gates.json"
REPORT_FILE = f"{REPORTS_DIR}/report.md"
PREVIEW_DIR = f"{REPORTS_DIR}/deploy-preview"
"""Where `modelops release preview` writes the manifests a merge would commit."""
MANIFESTS_DIR = "manifests"
TEMPLATES_DIR = f"{MANIFESTS_DIR}/templates"
RELEASES_DIR = f"{MANIFESTS_DIR}/releases"
"""One release file per environment (`releases.files`)."""
DECISIONS_DIR = f"{MANIFESTS_DIR}/decisions"
"""The drift monitor's decision log, one JSON-lines file per environment."""
GENERATED_DIRS = (
    f"{MANIFESTS_DIR}/rendered",
    f"{MANIFESTS_DIR}/argocd",
    f"{MANIFESTS_DIR}/prometheus",
)
"""What `modelops render` generates, each folder replaced whole."""
ALERTMANAGER_FILE = f"{MANIFESTS_DIR}/alertmanager/alertmanager.yml"
"""The example Alertmanager routing (the rehearsal routes its alerts with it)."""
REHEARSAL_DIR = ".rehearsal"
FETCHED_MODELS_DIR = ".models"
"""Released models fetched from the store to score with here (`modelops score --env`), by hash."""
"""The local rehearsal's state (`make up`): its processes, logs and model copies (git-ignored)."""


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
    def dvc_file(self) -> Path:
        return self.root / DVC_FILE

    @property
    def raw_dir(self) -> Path:
        """User data lives here (git- or DVC-tracked); `prepare` depends on it."""
        return self.root / RAW_DIR

    @property
    def prepared_dir(self) -> Path:
        return self.root / PREPARED_DIR

    @property
    def model_dir(self) -> Path:
        return self.root / MODEL_DIR

    @property
    def data_metrics(self) -> Path:
        return self.root / DATA_METRICS

    @property
    def model_metrics(self) -> Path:
        return self.root / MODEL_METRICS

    @property
    def plots_dir(self) -> Path:
        return self.root / PLOTS_DIR

    @property
    def importance_file(self) -> Path:
        return self.root / REPORTS_DIR / "feature_importance.json"

    @property
    def mlflow_run_file(self) -> Path:
        return self.root / REPORTS_DIR / "mlflow_run.json"

    @property
    def champion_file(self) -> Path:
        """Which model the champion gate compares with (written on every `dvc repro`)."""
        return self.root / REPORTS_DIR / "champion.json"

    @property
    def gate_dir(self) -> Path:
        """One JSON file per gate, written by the gate stages."""
        return self.root / REPORTS_DIR / "gates"

    @property
    def gates_file(self) -> Path:
        """Every gate and the verdict: what the report and `modelops verdict` read."""
        return self.root / GATES_FILE

    @property
    def html_dir(self) -> Path:
        """Full Deepchecks HTML reports: run artifacts (git-ignored), not DVC outputs."""
        return self.root / REPORTS_DIR / "deepchecks"

    @property
    def timings_file(self) -> Path:
        """How long each stage command last took (git-ignored; read by the report)."""
        return self.root / REPORTS_DIR / "timings.json"

    @property
    def report_file(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def report_images_dir(self) -> Path:
        """Plots of the base ref, extracted for the report (git-ignored)."""
        return self.root / REPORTS_DIR / "report"

    @property
    def canary_dir(self) -> Path:
        """`modelops canary` writes each environment's verdict here (<env>.md, <env>.json)."""
        return self.root / REPORTS_DIR / "canary"

    @property
    def experiments_dir(self) -> Path:
        """`modelops experiment analyze` writes each environment's verdict here (<env>.md,
        <env>.json)."""
        return self.root / REPORTS_DIR / "experiments"

    @property
    def capacity_dir(self) -> Path:
        """`modelops capacity` writes each environment's report here (<env>.md, <env>.json):
        commit them, autoscaling is rendered from the JSON's proposal."""
        return self.root / REPORTS_DIR / "capacity"

    @property
    def monitor_dir(self) -> Path:
        """`modelops monitor` writes its reports here, one folder per environment (and rows/)."""
        return self.root / REPORTS_DIR / "monitor"

    @property
    def decisions_dir(self) -> Path:
        return self.root / DECISIONS_DIR

    @property
    def rehearsal_dir(self) -> Path:
        return self.root / REHEARSAL_DIR

    @property
    def fetched_models_dir(self) -> Path:
        return self.root / FETCHED_MODELS_DIR

"""modelops: a GitOps CI/CD template for machine-learning models.

The packages and modules of `modelops`, in layers, top to bottom. A module imports only from its
own layer or the ones below it, and never so that two of them import each other, however
indirectly (`tests/test_layers.py` holds both rules; README.md draws the same table):

    cli          the `modelops` command: each handler turns argv into one call and prints
    jobs         stages gates canary experiments capacity monitoring deploy rehearsal batch
                 report summary
                 what users run: the DVC stages, the pull-request gates, the canary judge,
                 A/B experiments between models, the load test that sizes replicas, the
                 drift monitor, the release commands, the local rehearsal, batch scoring,
                 the report
    services     releases observability telemetry
                 what the jobs share: release state and files, rules and dashboards, the
                 reference profile and Prometheus
    domain       data prepared synth sources model metrics plots statistics tracking github
                 gitinfo identity
                 pure functions over tables, models and numbers, and one seam per outside
                 service (MLflow, GitHub, git)
    config       params paths metric_registry
    base         errors io yamltext interrupt orphan lockfile authorized

The server (`serving/`) imports nothing from here; the telemetry contract both sides share is
the `modelops_contract` distribution (serving/contract/), below every layer.
"""

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cli", ("cli",)),
    (
        "jobs",
        (
            "stages",
            "gates",
            "canary",
            "experiments",
            "capacity",
            "monitoring",
            "deploy",
            "rehearsal",
            "batch",
            "edge",
            "report",
            "summary",
        ),
    ),
    ("services", ("releases", "observability", "telemetry")),
    (
        "domain",
        (
            "data",
            "prepared",
            "synth",
            "sources",
            "model",
            "metrics",
            "plots",
            "statistics",
            "tracking",
            "github",
            "gitinfo",
            "identity",
        ),
    ),
    ("config", ("params", "paths", "metric_registry")),
    ("base", ("errors", "io", "yamltext", "interrupt", "orphan", "lockfile", "authorized")),
)
"""(layer, the packages and modules in it), top to bottom."""

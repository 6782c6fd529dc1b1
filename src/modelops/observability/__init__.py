"""What operations watch, as code: recording rules and alerts from `monitoring.objectives`, the
Grafana dashboards, and the error-budget check a new canary must pass."""

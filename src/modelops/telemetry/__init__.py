"""What the server's telemetry means to the pipeline: the reference profile a model is watched
against, reading Prometheus's answers (PromQL), and the one client of Prometheus's HTTP API."""

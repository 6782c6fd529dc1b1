"""Pipeline stages: each a `run(params, *, paths) -> Result` that dvc.yaml calls via the CLI."""

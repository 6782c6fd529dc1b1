"""The pipeline's side of edge bundles (`modelops export`): the inputs of the exporter, which
runs in its own environment (edge/.venv, the `modelops_edge` package)."""

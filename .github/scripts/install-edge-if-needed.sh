#!/usr/bin/env bash
# Build edge/.venv (`make install-edge`, ~580 MB) only when params.yaml has an edge environment
# (deploy.environments.<env>.strategy: edge): then the edge gate runs `modelops export`'s parity
# there, and fails saying "run make install-edge" without it. Otherwise the gate does not apply.
# Reads params.yaml as `modelops params` validates it (defaults filled, block style), from .venv.
set -euo pipefail

params="$(.venv/bin/modelops params)"
if grep -qE '^ +strategy: edge$' <<<"$params"; then
  make install-edge
else
  echo "No edge environment in params.yaml: the edge gate does not apply, edge/.venv is not built."
fi

#!/usr/bin/env bash
# Push a pull request's gated candidate to the DVC remote, running none of the pull request's
# code (pr.yml, job `candidate`, the one that holds the remote's credentials).
#
#   push-candidate.sh TRUSTED CANDIDATE OBJECTS
#
# TRUSTED: a checkout of main with its locked environment installed (`make install-pipeline`):
#   the dvc that runs, and the remote it pushes to (main's .dvc/config).
# CANDIDATE: the commit the gates job ran on, checked out as data: its dvc.yaml, dvc.lock and
#   .dvc files name the outputs to push. Its own DVC settings are set aside (main's replace
#   them), and nothing in it is executed.
# OBJECTS: what the gates job's `dvc push --run-cache` to a local folder wrote (the artifact
#   `dvc-candidate`): the outputs and run-cache entries, laid out as DVC's cache is.
#
# The remote's credentials come from the environment (the `candidates` environment's secrets),
# read by dvc alone. Objects the remote has already are not sent again.
set -euo pipefail

trusted=$(cd "${1:?usage: push-candidate.sh TRUSTED CANDIDATE OBJECTS}" && pwd)
candidate=$(cd "${2:?usage: push-candidate.sh TRUSTED CANDIDATE OBJECTS}" && pwd)
objects=$(cd "${3:?usage: push-candidate.sh TRUSTED CANDIDATE OBJECTS}" && pwd)
dvc="$trusted/.venv/bin/dvc"

if [ -z "$("$dvc" --cd "$trusted" remote list)" ]; then
  echo "main configures no DVC remote: nothing to push."
  exit 0
fi
# main's remote and settings, not the pull request's: its .dvc/config could name another remote.
mkdir -p "$candidate/.dvc"
cp "$trusted/.dvc/config" "$candidate/.dvc/config"
rm -f "$candidate/.dvc/config.local"
"$dvc" --cd "$candidate" config --local cache.dir "$objects"
"$dvc" --cd "$candidate" push --run-cache

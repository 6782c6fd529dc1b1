#!/usr/bin/env bash
# Commit what a release command changed under manifests/ and push it to the branch.
#
#   commit-and-push.sh MESSAGE_FILE
#
# When someone pushed first, rebase on top of their commit, check that the manifests are still
# what the templates and releases produce, and push again (up to $ATTEMPTS times). A rebase
# that conflicts means two release changes raced on the same environment: stop, push nothing,
# and say so; re-running the workflow applies the command to the new state.
#
# Environment: REMOTE (default origin; a URL works too), BRANCH (default main),
# MODELOPS (default .venv/bin/modelops), ATTEMPTS (default 5).
set -euo pipefail

message_file=${1:?usage: commit-and-push.sh MESSAGE_FILE}
remote=${REMOTE:-origin}
branch=${BRANCH:-main}
modelops=${MODELOPS:-.venv/bin/modelops}
attempts=${ATTEMPTS:-5}

if [ -z "$(git status --porcelain -- manifests)" ]; then
  echo "Nothing changed under manifests/: nothing to commit."
  exit 0
fi
git add -- manifests
git commit --quiet --file "$message_file"
echo "Committed: $(git log -1 --format=%s)"

for attempt in $(seq 1 "$attempts"); do
  if git push --quiet "$remote" "HEAD:refs/heads/$branch"; then
    echo "Pushed $(git rev-parse --short HEAD) to $branch."
    exit 0
  fi
  echo "Push rejected (attempt $attempt of $attempts): $branch moved; rebasing on top of it."
  git fetch --quiet "$remote" "$branch"
  if ! git rebase --quiet FETCH_HEAD; then
    git rebase --abort
    echo "::error::$branch changed manifests/ meanwhile (another release change). Nothing was" \
      "pushed. Re-run this workflow to apply the command to the new state."
    exit 1
  fi
  if ! "$modelops" render --check; then
    echo "::error::After rebasing on $branch the manifests are not what the templates and" \
      "releases produce. Nothing was pushed. Run make render on $branch, commit, and re-run."
    exit 1
  fi
  sleep $((attempt * 2))
done
echo "::error::Gave up after $attempts attempts: $branch keeps moving. Re-run this workflow."
exit 1

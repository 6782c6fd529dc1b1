#!/usr/bin/env bash
# Is a release run (deploy.yml, or rollout.yml started by hand) running or waiting? Then a
# scheduled run (the canary judge, the monitor) skips and says so instead of queueing: GitHub
# keeps one pending run per concurrency group and cancels the older one, so a scheduled run
# waiting in the releases' group would cancel a waiting deploy or rollback. Writes
# `busy=true|false` to $GITHUB_OUTPUT; needs $GH_TOKEN (actions: read) and $GITHUB_REPOSITORY.
set -euo pipefail

releases='[.workflow_runs[]
  | select(.path == ".github/workflows/deploy.yml"
      or (.path == ".github/workflows/rollout.yml" and .event == "workflow_dispatch"))]
  | length'
busy=0
for status in queued in_progress waiting pending requested; do
  count=$(gh api "repos/${GITHUB_REPOSITORY}/actions/runs?status=${status}&per_page=100" \
    --jq "$releases")
  busy=$((busy + count))
done

if [ "$busy" -gt 0 ]; then
  echo "busy=true" >> "$GITHUB_OUTPUT"
  message="skipped: $busy release run(s) running or waiting (deploy, or a rollout by hand);"
  message="$message the next scheduled run looks again"
  echo "::notice::$message"
  echo "$message" >> "$GITHUB_STEP_SUMMARY"
else
  echo "busy=false" >> "$GITHUB_OUTPUT"
fi

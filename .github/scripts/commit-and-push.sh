#!/usr/bin/env bash
# Run a release command, commit what it changed under manifests/ and push it to the branch.
#
#   commit-and-push.sh MESSAGE_FILE -- COMMAND [ARGUMENT...]
#
# COMMAND (a `modelops release ...` call) writes the release files, the rendered manifests and
# MESSAGE_FILE. When someone pushed first, the change is never rebased: a promote computed on
# the old state, replayed on the new one, could promote twice or undo a rollback. Instead the
# checkout is reset to the new tip of the branch and COMMAND runs again there, so the request
# applies to the state that is really there (up to $ATTEMPTS times). When COMMAND refuses on
# the new tip, nothing is pushed and the message names the recovery: a new run of the workflow
# (GitHub's "Re-run" would start again from the old commit).
#
# Environment: REMOTE (default origin; a URL works too, never one with a token in it), BRANCH
# (default main), ATTEMPTS (default 5), BACKOFF (seconds times the attempt number to wait before
# recomputing, default 2), WORKFLOW (the name shown in messages, default "this workflow").
#
# GIT_PUSH_TOKEN (optional): the token to fetch and push with (in Actions, the release
# environment's GitHub App token). It reaches git alone: the script takes it out of its own
# environment before COMMAND runs, and gives it to each `git fetch`/`git push` in that git's
# environment, where a credential helper (set through GIT_CONFIG_* variables, so nothing is
# written to a file) hands it over when $GITHUB_SERVER_URL (default https://github.com), and no
# other host, asks. It is never part of a URL, an argument list, or the checkout's config.
set -euo pipefail

message_file=${1:?usage: commit-and-push.sh MESSAGE_FILE -- COMMAND [ARGUMENT...]}
shift
[ "${1:-}" = "--" ] || { echo "usage: commit-and-push.sh MESSAGE_FILE -- COMMAND ..." >&2; exit 2; }
shift
[ "$#" -gt 0 ] || { echo "commit-and-push.sh: no command given" >&2; exit 2; }
remote=${REMOTE:-origin}
branch=${BRANCH:-main}
attempts=${ATTEMPTS:-5}
backoff=${BACKOFF:-2}
workflow=${WORKFLOW:-this workflow}
token=${GIT_PUSH_TOKEN:-}
unset GIT_PUSH_TOKEN
server=${GITHUB_SERVER_URL:-https://github.com}
# The helper runs in git's shell: `printf` is a builtin there, so the token is in no argv either.
# shellcheck disable=SC2016  # expanded by that shell, from git's environment, not here
helper='!f() { test "$1" = get && printf "username=x-access-token\npassword=%s\n" "$GIT_PUSH_TOKEN"; }; f'

# git, talking to the remote: with the token in its environment only (when there is one), the
# helpers configured elsewhere set aside for that server, and never a prompt.
remote_git() {
  if [ -z "$token" ]; then
    GIT_TERMINAL_PROMPT=0 git "$@"
    return
  fi
  GIT_PUSH_TOKEN=$token GIT_TERMINAL_PROMPT=0 GIT_CONFIG_COUNT=2 \
    GIT_CONFIG_KEY_0="credential.$server.helper" GIT_CONFIG_VALUE_0="" \
    GIT_CONFIG_KEY_1="credential.$server.helper" GIT_CONFIG_VALUE_1="$helper" \
    git "$@"
}

new_run="Start a new run of $workflow from $branch (Actions > $workflow > Run workflow); \"Re-run\" would start again from the old commit."

for attempt in $(seq 1 "$attempts"); do
  if ! "$@"; then
    if [ "$attempt" -gt 1 ]; then
      echo "::error::$branch moved while this run waited, and on its new tip the command was" \
        "refused (see above). Nothing was pushed. $new_run"
    fi
    exit 1
  fi
  if [ -z "$(git status --porcelain -- manifests)" ]; then
    echo "Nothing changed under manifests/: nothing to commit."
    exit 0
  fi
  git add -- manifests
  git commit --quiet --file "$message_file"
  echo "Committed: $(git log -1 --format=%s)"
  if remote_git push --quiet "$remote" "HEAD:refs/heads/$branch"; then
    echo "Pushed $(git rev-parse --short HEAD) to $branch."
    exit 0
  fi
  echo "Push rejected (attempt $attempt of $attempts): $branch moved; recomputing on its new tip."
  remote_git fetch --quiet "$remote" "$branch"
  git reset --quiet --hard FETCH_HEAD
  sleep $((attempt * backoff))
done
echo "::error::Gave up after $attempts attempts: $branch keeps moving, or refuses this push (the" \
  "reason is above: a ruleset refuses a token that may not bypass it, see runbooks/deploy.md)." \
  "Nothing was pushed. $new_run"
exit 1

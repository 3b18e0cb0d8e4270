#!/usr/bin/env bash
# Says whether a stack exists in the backend: `deployed=true|false` into $GITHUB_OUTPUT
# (stdout outside Actions). Read-only jobs (previews, the drift check) have nothing to compare
# a stack with before the deploy workflow has created it, and skip it instead of failing.
#
#   bash scripts/ci/stack-deployed.sh <project directory> <stack>
set -euo pipefail

directory="$1"
stack="$2"
output="${GITHUB_OUTPUT:-/dev/stdout}"
pulumi login ${PULUMI_BACKEND_URL:+"$PULUMI_BACKEND_URL"}
if pulumi stack select "$stack" --cwd "$directory"; then
  echo "deployed=true" >> "$output"
else
  echo "::notice::stack $stack of $directory is not deployed yet, so there is nothing to" \
    "compare it with; the deploy workflow creates it"
  echo "deployed=false" >> "$output"
fi

#!/usr/bin/env bash
# Fails when a stack's Azure resources differ from its state (the drift workflow).
#
#   bash scripts/ci/azure-drift.sh <project directory> <stack>
#
# A refresh preview, targeted at the state's azure-native resources: it reads each through ARM
# and compares; the program does not run and nothing is written. Kubernetes objects are left
# out (the read-only identity cannot reach the API server; the drift workflow checks them
# through `az aks command invoke`).
set -euo pipefail

directory="$1"
stack="$2"
state="$(mktemp)"
trap 'rm -f "$state"' EXIT

pulumi stack export --cwd "$directory" --stack "$stack" --file "$state"
mapfile -t urns < <(uv run python scripts/ci/drift.py azure-targets "$state")
if [ "${#urns[@]}" -eq 0 ]; then
  echo "::notice::stack $stack of $directory holds no Azure resources"
  exit 0
fi
targets=()
for urn in "${urns[@]}"; do
  targets+=(--target "$urn")
done
log="$(mktemp)"
trap 'rm -f "$state" "$log"' EXIT
status=0
pulumi refresh --preview-only --expect-no-changes --diff --suppress-outputs \
  --cwd "$directory" --stack "$stack" "${targets[@]}" 2>&1 | tee "$log" || status=$?
if [ "$status" -ne 0 ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  {
    echo "### Azure resources of $directory ($stack) differ from the state"
    echo
    echo '```'
    tail -n 200 "$log"
    echo '```'
  } >> "$GITHUB_STEP_SUMMARY"
fi
exit "$status"

#!/usr/bin/env bash
# Selects a stack for a CI deploy job and settles its subscription (README "CI workflows").
#
#   bash scripts/ci/stack-settings.sh <project directory> <stack>
#
# - Logs in to $PULUMI_BACKEND_URL (Pulumi Cloud when it is empty).
# - Selects the stack, or creates it on the first run. Only Pulumi Cloud can create it here:
#   a stack in a DIY backend (azblob://) needs its Key Vault secrets provider from the start,
#   so a missing one stops the job with the command that creates it (once, README).
# - azure-native:subscriptionId: set from ARM_SUBSCRIPTION_ID (this GitHub environment's
#   subscription) when the stack file has none; a committed value that differs stops the job
#   rather than deploying the stack into another subscription.
set -euo pipefail

directory="$1"
stack="$2"
stack_file="$directory/Pulumi.$stack.yaml"
: "${ARM_SUBSCRIPTION_ID:?set ARM_SUBSCRIPTION_ID to the environment subscription}"

pulumi login ${PULUMI_BACKEND_URL:+"$PULUMI_BACKEND_URL"}
if ! pulumi stack select "$stack" --cwd "$directory" 2> /dev/null; then
  case "${PULUMI_BACKEND_URL:-}" in
    "" | https://*)
      pulumi stack init "$stack" --cwd "$directory"
      ;;
    *)
      echo "::error file=$stack_file::stack $stack of $directory does not exist in" \
        "$PULUMI_BACKEND_URL. Create it once with its secrets provider and commit" \
        "$stack_file: pulumi stack init $stack -C $directory --secrets-provider" \
        "azurekeyvault://<vault>.vault.azure.net/keys/pulumi" >&2
      exit 1
      ;;
  esac
fi

committed="$(pulumi config get azure-native:subscriptionId --cwd "$directory" --stack "$stack" 2> /dev/null || true)"
if [ -z "$committed" ]; then
  pulumi config set azure-native:subscriptionId "$ARM_SUBSCRIPTION_ID" --cwd "$directory" --stack "$stack"
elif [ "${committed,,}" != "${ARM_SUBSCRIPTION_ID,,}" ]; then
  echo "::error file=$stack_file::$stack_file deploys to subscription $committed, but this" \
    "GitHub environment's AZURE_SUBSCRIPTION_ID is $ARM_SUBSCRIPTION_ID; make them agree" >&2
  exit 1
fi

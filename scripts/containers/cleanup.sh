#!/usr/bin/env bash
# Removes what the image tests leave behind, in recplat's own podman storage
# only (.scratch/podman; the machine's podman set-up is never touched).
#
#   bash scripts/containers/cleanup.sh          # containers and volumes of test runs
#   bash scripts/containers/cleanup.sh --all    # also every image and the cached base
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
[ -d "$repo/.scratch/podman" ] || exit 0
command -v podman >/dev/null 2>&1 || exit 0
eval "$(bash "$repo/scripts/containers/podman-env.sh")"

# Test containers carry this label (tests/images/containers.py sets it).
mapfile -t containers < <(podman ps -a -q --filter label=recplat.test=true)
if [ ${#containers[@]} -gt 0 ]; then
  podman rm -f -t 5 "${containers[@]}" >/dev/null
fi
podman volume prune -f >/dev/null
podman image prune -f >/dev/null

if [ "${1:-}" = --all ]; then
  # `system reset` unmounts layers before deleting them, which rm -rf cannot.
  podman system reset -f >/dev/null 2>&1 || true
  rm -rf "$repo/.scratch/podman" "$repo/.scratch/images"
fi

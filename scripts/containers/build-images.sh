#!/usr/bin/env bash
# Builds recplat's images (service, training, mlflow) and reports their build
# time and size.
#
#   bash scripts/containers/build-images.sh [service] [training] [mlflow]
#
# Default: all three, with podman, from the local debootstrap base
# (scripts/containers/build-base.sh), offline (--network none).
# Environment:
#   RECPLAT_BASE_IMAGE      base to build on (e.g. python:3.11-slim-bookworm, as in CI)
#   RECPLAT_IMAGE_PREFIX    image name prefix (default localhost/recplat-; CI: <acr>/recplat-)
#   RECPLAT_IMAGE_TAG       tag (default dev; CI: the git sha)
#   RECPLAT_CONTAINER_TOOL  podman (default) or docker
# Writes .scratch/images/build-report.json: {image: {ref, seconds, bytes}}.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
tool="${RECPLAT_CONTAINER_TOOL:-podman}"
prefix="${RECPLAT_IMAGE_PREFIX:-localhost/recplat-}"
tag="${RECPLAT_IMAGE_TAG:-dev}"
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(service training mlflow)

log() { printf '==> %s\n' "$*" >&2; }

build_flags=()
if [ "$tool" = podman ]; then
  eval "$(bash scripts/containers/podman-env.sh)"
  # OCI image format has no HEALTHCHECK; the docker format keeps it.
  build_flags+=(--format docker)
fi
if [ -n "${RECPLAT_BASE_IMAGE:-}" ]; then
  base="$RECPLAT_BASE_IMAGE"
else
  base="$(bash scripts/containers/build-base.sh)"
  # The local base holds every OS package the images need: build offline.
  build_flags+=(--network none --pull=never)
fi

declare -A dockerfile=(
  [service]=reference-service/Dockerfile
  [training]=reference-training/Dockerfile
  [mlflow]=images/mlflow/Dockerfile
)
report="$repo/.scratch/images/build-report.json"
mkdir -p "$(dirname "$report")"
entries=()
for image in "${images[@]}"; do
  [ -n "${dockerfile[$image]:-}" ] || { echo "build-images.sh: unknown image '$image'" >&2; exit 2; }
  bash scripts/containers/wheelhouse.sh "$image" >/dev/null
  ref="$prefix$image:$tag"
  log "building $ref from $base"
  started=$EPOCHREALTIME
  "$tool" build "${build_flags[@]}" \
    --build-arg "BASE_IMAGE=$base" \
    --build-arg "WHEELHOUSE=.scratch/images/wheels/$image" \
    --label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    --label "org.opencontainers.image.source=recplat" \
    -f "${dockerfile[$image]}" -t "$ref" . >&2
  seconds=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  bytes=$("$tool" image inspect --format '{{.Size}}' "$ref")
  log "$ref: $seconds s, $((bytes / 1000000)) MB"
  entries+=("\"$image\": {\"ref\": \"$ref\", \"seconds\": $seconds, \"bytes\": $bytes}")
done
(IFS=,; printf '{%s}\n' "${entries[*]}") >"$report"
cat "$report"

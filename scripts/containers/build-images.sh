#!/usr/bin/env bash
# Builds recplat's images and reports their build time and size.
#
#   bash scripts/containers/build-images.sh [service] [training] [mlflow]
#
# Default: all three, with podman, from the local debootstrap base
# (scripts/containers/build-base.sh), offline (--network none). The images are
# the repositories infra deploys from the environment's ACR (Pulumi config
# recplat:images): recplat/ranking-service, recplat/ranking-training, recplat/mlflow.
# An image whose inputs (Dockerfile, base, wheelhouse, files it ships) are unchanged since its
# last build is not rebuilt (RECPLAT_REBUILD=1 forces it).
# Environment:
#   RECPLAT_BASE_IMAGE      base to build on (e.g. python:3.11-slim-bookworm, as in CI)
#   RECPLAT_IMAGE_PREFIX    registry prefix (default localhost/; CI: <acr>.azurecr.io/)
#   RECPLAT_IMAGE_TAG       tag (default dev; CI: the git sha)
#   RECPLAT_CONTAINER_TOOL  podman (default) or docker
# Writes .scratch/images/build-report.json: {image: {ref, seconds, bytes, cached}}.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
tool="${RECPLAT_CONTAINER_TOOL:-podman}"
prefix="${RECPLAT_IMAGE_PREFIX:-localhost/}"
tag="${RECPLAT_IMAGE_TAG:-dev}"
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(service training mlflow)

log() { printf '==> %s\n' "$*" >&2; }

build_flags=()
if [ "$tool" = podman ]; then
  eval "$(bash scripts/containers/podman-env.sh)"
  # The docker format keeps HEALTHCHECK (OCI has none). Without intermediate
  # layers a cold build commits once per image: about a third faster here.
  build_flags+=(--format docker --layers=false)
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
# Files an image copies from the repository as they are (besides its wheelhouse).
declare -A shipped=(
  [service]=""
  [training]=""
  [mlflow]="images/mlflow/start-server.sh infra/mlflow_access_job.py reference-service/ranking_features"
)
declare -A repository=(
  [service]=recplat/ranking-service
  [training]=recplat/ranking-training
  [mlflow]=recplat/mlflow
)
report="$repo/.scratch/images/build-report.json"
mkdir -p "$(dirname "$report")"
entries=()
for image in "${images[@]}"; do
  [ -n "${dockerfile[$image]:-}" ] || { echo "build-images.sh: unknown image '$image'" >&2; exit 2; }
  wheels="$(bash scripts/containers/wheelhouse.sh "$image")"
  ref="$prefix${repository[$image]}:$tag"
  inputs="$( {
    echo "$base $("$tool" image inspect --format '{{.Id}}' "$base" 2>/dev/null || true)"
    sha256sum "${dockerfile[$image]}" images/build-venv.sh images/check-lightgbm.py
    # shellcheck disable=SC2086 # the list is split into paths on purpose
    [ -z "${shipped[$image]}" ] || find ${shipped[$image]} -type f -not -path '*/__pycache__/*' \
      | LC_ALL=C sort | xargs sha256sum
    (cd "$wheels" && sha256sum requirements.txt ./*.whl)
  } | sha256sum | cut -c1-16)"
  built="$("$tool" image inspect --format '{{index .Config.Labels "recplat.inputs"}}' "$ref" 2>/dev/null || true)"
  if [ "$built" = "$inputs" ] && [ "${RECPLAT_REBUILD:-0}" != 1 ]; then
    log "$ref is up to date (inputs $inputs)"
    seconds=0 cached=true
  else
    log "building $ref from $base"
    started=$EPOCHREALTIME
    "$tool" build "${build_flags[@]}" \
      --build-arg "BASE_IMAGE=$base" \
      --build-arg "WHEELHOUSE=${wheels#"$repo"/}" \
      --label "recplat.inputs=$inputs" \
      --label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
      -f "${dockerfile[$image]}" -t "$ref" . >&2
    seconds=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    cached=false
  fi
  bytes=$("$tool" image inspect --format '{{.Size}}' "$ref")
  log "$ref: $seconds s, $((bytes / 1000000)) MB"
  entries+=("\"$image\": {\"ref\": \"$ref\", \"seconds\": $seconds, \"bytes\": $bytes, \"cached\": $cached}")
done
(IFS=,; printf '{%s}\n' "${entries[*]}") >"$report"
cat "$report"

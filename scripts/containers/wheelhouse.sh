#!/usr/bin/env bash
# Builds the wheelhouse an image installs from: every pinned dependency of one
# image as a wheel, plus pip (run from its wheel, never installed in the
# image) and, for the platform images, recplat's own wheel.
#
#   bash scripts/containers/wheelhouse.sh service|training|mlflow
#
# Output: .scratch/images/wheels/<image>/ (requirements.txt + *.whl), the
# build context path the Dockerfiles' WHEELHOUSE argument expects. Versions
# come from the committed locks (uv.lock; images/mlflow/uv.lock), so an image
# holds exactly what the tests ran against. Downloads are cached; a rerun with
# an unchanged lock only rebuilds recplat's wheel.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
image="${1:?usage: wheelhouse.sh service|training|mlflow}"
out="$repo/.scratch/images/wheels/$image"
export PIP_CACHE_DIR="$repo/.scratch/images/pip-cache"
# pip's version is the one ensurepip would bundle; only used inside the builder stage.
pip_version="${RECPLAT_PIP_VERSION:-25.2}"

log() { printf '==> %s\n' "$*" >&2; }

mkdir -p "$out"
case "$image" in
  service | training)
    uv export --project "$repo" --locked --extra "$image" --no-dev --no-hashes \
      --no-emit-project --format requirements-txt --quiet >"$out/requirements.txt.new" ;;
  mlflow)
    uv export --project "$repo/images/mlflow" --locked --no-dev --no-hashes \
      --format requirements-txt --quiet >"$out/requirements.txt.new" ;;
  *) echo "wheelhouse.sh: unknown image '$image' (expected service, training or mlflow)" >&2; exit 2 ;;
esac

stamp="$(cat "$out/requirements.txt.new" | sha256sum | cut -c1-16)-pip$pip_version"
if [ "$(cat "$out/.stamp" 2>/dev/null || true)" != "$stamp" ]; then
  log "collecting wheels for the $image image into ${out#"$repo"/}"
  find "$out" -maxdepth 1 -name '*.whl' -delete
  # Wheels only, for the images' interpreter and glibc (CPython 3.11, Debian
  # bookworm's glibc 2.36), whatever the host runs: a CI runner with a newer
  # glibc must not pick a wheel the image cannot load. pip does not expand a
  # manylinux_2_36 platform to older tags itself, so every tag is listed.
  # (The filter drops pip's noise about configured find-links folders that do
  # not exist.)
  platforms=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
  for glibc_minor in $(seq 36 -1 5); do platforms+=(--platform "manylinux_2_${glibc_minor}_x86_64"); done
  uv tool run --quiet --python 3.11 --from "pip==$pip_version" pip download --quiet \
    --disable-pip-version-check --only-binary=:all: \
    "${platforms[@]}" --python-version 3.11 --implementation cp --abi cp311 \
    --dest "$out" -r "$out/requirements.txt.new" "pip==$pip_version" \
    2> >(grep -v 'is neither a file nor a directory' >&2)
  echo "$stamp" >"$out/.stamp"
fi
mv "$out/requirements.txt.new" "$out/requirements.txt"

if [ "$image" != mlflow ]; then
  rm -f "$out"/recplat-*.whl
  uv build --project "$repo" --wheel --quiet --out-dir "$out" 2>/dev/null \
    || uv build --project "$repo" --wheel --out-dir "$out"
fi
echo "$out"

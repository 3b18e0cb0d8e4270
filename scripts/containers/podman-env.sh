#!/usr/bin/env bash
# Podman set-up for recplat's images: renders containers.conf and storage.conf
# from images/podman/*.conf.in into .scratch/podman and prints the environment
# that points podman at them. Nothing outside .scratch is written.
#
#   eval "$(bash scripts/containers/podman-env.sh)"   # then use podman as usual
#
# Idempotent; safe to run before every command.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
root="${RECPLAT_PODMAN_ROOT:-$repo/.scratch/podman}"
mkdir -p "$root"/{storage,run,tmp,libpod-tmp,volumes,events,conf}

if [ "$(id -u)" = 0 ]; then
  overlay_options='# root: kernel overlay, no mount program needed'
else
  overlay_options='mount_program = "/usr/bin/fuse-overlayfs"'
fi

render() {
  sed -e "s|@ROOT@|$root|g" -e "s|@OVERLAY_OPTIONS@|$overlay_options|" "$1" > "$2.new"
  # Replace only on change, so a running podman never reads a half-written file.
  if ! cmp -s "$2.new" "$2" 2>/dev/null; then mv "$2.new" "$2"; else rm -f "$2.new"; fi
}
render "$repo/images/podman/containers.conf.in" "$root/conf/containers.conf"
render "$repo/images/podman/storage.conf.in" "$root/conf/storage.conf"

printf 'export CONTAINERS_CONF=%q\n' "$root/conf/containers.conf"
printf 'export CONTAINERS_STORAGE_CONF=%q\n' "$root/conf/storage.conf"
# Build contexts and layer blobs are staged under TMPDIR (default /var/tmp).
printf 'export TMPDIR=%q\n' "$root/tmp"

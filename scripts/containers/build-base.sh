#!/usr/bin/env bash
# Builds the local stand-in for python:3.11-slim-bookworm: a debootstrap
# bookworm minbase with Debian's python3 (3.11) and the runtime packages the
# images need, imported into podman as localhost/recplat-base:bookworm.
#
#   bash scripts/containers/build-base.sh        # prints the image name
#
# The root filesystem tarball is cached in .scratch/podman/base, keyed by the
# package list, so reruns only re-import it (seconds). Needs root, debootstrap
# and a Debian mirror (RECPLAT_DEBIAN_MIRROR, default deb.debian.org).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
eval "$(bash "$repo/scripts/containers/podman-env.sh")"

suite=bookworm
mirror="${RECPLAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
image="localhost/recplat-base:$suite"
# The same runtime packages the Dockerfiles install on the official slim image
# when they are missing: libgomp1 (LightGBM's OpenMP), tini (PID 1),
# iproute2 (ss, for testinfra's socket checks), ca-certificates (TLS to Azure).
packages=python3,libgomp1,tini,iproute2,ca-certificates
key="$(printf '%s %s %s' "$suite" "$packages" "v2" | sha256sum | cut -c1-12)"
cache="$repo/.scratch/podman/base"
tarball="$cache/$suite-$key.tar"

log() { printf '==> %s\n' "$*" >&2; }

if [ ! -s "$tarball" ]; then
  [ "$(id -u)" = 0 ] || { echo "build-base.sh: debootstrap needs root" >&2; exit 1; }
  rootfs="$cache/rootfs-$key"
  rm -rf "$rootfs"
  mkdir -p "$rootfs"
  log "debootstrap $suite minbase + $packages from $mirror (once; cached in $tarball)"
  mkdir -p "$cache/debs"
  debootstrap --variant=minbase --cache-dir="$cache/debs" --include="$packages" "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -n 30 "$cache/debootstrap.log" >&2; exit 1; }
  # What python:*-slim also leaves out: package lists, docs, man pages,
  # translations, caches.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log \
    "$rootfs"/usr/share/locale/*
  # Same sources.list a slim image ships, so apt works in derived images.
  echo "deb $mirror $suite main" > "$rootfs/etc/apt/sources.list"
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  rm -rf "$rootfs"
fi

if [ "$(podman image inspect --format '{{index .Labels "recplat.base.key"}}' "$image" 2>/dev/null || true)" != "$key" ]; then
  log "importing $tarball as $image"
  podman import \
    --change "LABEL recplat.base.key=$key" \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    "$tarball" "$image" >/dev/null
fi
echo "$image"

#!/usr/bin/env bash
# Set-up shared by `make demo` and `make test`: uv, the locked Python
# environment, Azurite from npm, and (as root on Debian) the system tools the
# tests use. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*"; }

if ! command -v uv >/dev/null 2>&1 && [ ! -x "$HOME/.local/bin/uv" ]; then
  log "installing uv from PyPI"
  python3 -m pip install --quiet --user uv 2>/dev/null || python3 -m pip install --quiet uv
fi

# System tools: prometheus and promtool (dashboard query and alert rule tests),
# podman/runc/debootstrap (image tests), iproute2 (ss for testinfra), wrk (load for benchmarks/bench_service.py).
# Installed only where we may.
need_apt=()
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || need_apt+=(prometheus)
if [ "${RECPLAT_WITH_CONTAINERS:-1}" = 1 ]; then
  command -v podman >/dev/null 2>&1 || need_apt+=(podman)
  command -v runc >/dev/null 2>&1 || need_apt+=(runc)
  command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
  command -v fuse-overlayfs >/dev/null 2>&1 || need_apt+=(fuse-overlayfs)
fi
command -v ss >/dev/null 2>&1 || need_apt+=(iproute2)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    log "missing system tools (${need_apt[*]}); install them with your package manager (Debian: apt-get install ${need_apt[*]})"
  fi
fi

log "syncing the Python environment (uv sync --locked --all-extras)"
uv sync --locked --all-extras --quiet

if command -v npm >/dev/null 2>&1; then
  if [ ! -x .scratch/node/node_modules/.bin/azurite ]; then
    log "installing Azurite from npm into .scratch/node"
    mkdir -p .scratch/node
    npm install --silent --no-audit --no-fund --prefix .scratch/node azurite@3 >/dev/null
  fi
else
  log "npm not found: Azurite tests need Node.js 20 and npm"
fi

#!/usr/bin/env bash
# `make demo` after `make setup`: the whole feedback loop once, on this machine, with the
# example brands. Exits 0 with a report (table, .scratch/local/report/report.json and ctr.png).
# Pass --storage azurite to run the lakes and MLflow artifacts on Azurite instead of folders.
set -euo pipefail
cd "$(dirname "$0")/.."
# Two cores: keep LightGBM and BLAS from spawning a thread per core in every process.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec uv run --locked recplat local demo --brands-dir brands "$@"

#!/usr/bin/env bash
# Run the full test suite. pytest's exit code 5 (no tests collected) is a
# failure here, never a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
uv run --locked pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"

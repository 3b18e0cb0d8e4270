#!/usr/bin/env bash
# Run the test suite: all of it, or what the arguments select (`make test-fast` passes
# `-m fast`), listing the 25 slowest tests at the end (where the suite's time goes). pytest's
# exit code 5 (no tests collected) is a failure here, never a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
uv run --locked pytest --durations=25 "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"

"""checkov, run one way for every test that runs it: JSON out, offline, and a failure whenever
it checked nothing.

checkov's own pins clash with the project lock, so it runs in a uv tool environment (`uvx`).
A run that prints nothing, prints something other than its JSON report, reports no resource or
no check, or could not parse a file is a `CheckovError`: a checker that looked at nothing must
never read as a pass. Failed checks are not an error here; they are in the report, for the
test to assert on (`report.failed == []`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKOV_TIMEOUT_S = 600


class CheckovError(AssertionError):
    """checkov did not check anything, or its output is not a report; the message says why."""


@dataclass(frozen=True)
class CheckovReport:
    """What one checkov run checked, summed over its frameworks."""

    passed: int
    failed: list[str]
    """One line per failed check: `<check id> <check name>: <resource> in <file>`."""
    resources: int


def run_checkov(
    framework: str,
    *,
    files: Sequence[Path] = (),
    directory: Path | None = None,
    skip_checks: Iterable[str] = (),
) -> CheckovReport:
    """Run checkov's `framework` checks on `files` or on every file under `directory`."""
    uvx = shutil.which("uvx")
    if uvx is None:
        raise CheckovError("uvx (from uv) runs checkov in its own environment; install uv")
    if bool(files) == (directory is not None):
        raise ValueError("run_checkov: give either files or a directory")
    targets = [a for f in files for a in ("--file", str(f))] or ["--directory", str(directory)]
    skips = sorted(skip_checks)
    result = subprocess.run(
        [uvx, "--from", "checkov", "checkov", "--framework", framework, *targets,
         "--output", "json", "--quiet", "--compact", "--skip-download",
         *(["--skip-check", ",".join(skips)] if skips else [])],
        capture_output=True,
        text=True,
        timeout=CHECKOV_TIMEOUT_S,
        check=False,
        # Offline: no guideline download from the vendor's API.
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    # checkov exits 1 when a check failed; anything else non-zero is checkov failing.
    if result.returncode not in (0, 1):
        raise CheckovError(f"checkov exited {result.returncode}:\n{result.stderr[-2000:]}")
    return parse_checkov_output(result.stdout, result.stderr)


def parse_checkov_output(stdout: str, stderr: str = "") -> CheckovReport:
    """The report in checkov's JSON output; `CheckovError` when it shows nothing was checked."""
    if not stdout.strip():
        raise CheckovError(f"checkov printed nothing; stderr:\n{stderr[-2000:]}")
    try:
        parsed: Any = json.loads(stdout)
    except json.JSONDecodeError as error:
        raise CheckovError(f"checkov's output is not JSON ({error}): {stdout[:500]}") from None
    reports = parsed if isinstance(parsed, list) else [parsed]
    # With nothing to check, checkov prints a bare summary ({"passed": 0, ...}), no "summary".
    summaries = [r["summary"] for r in reports if isinstance(r, dict) and "summary" in r]
    if not summaries:
        raise CheckovError(f"checkov found nothing to check: {stdout[:500]}")
    unparsed = sum(int(s.get("parsing_errors", 0)) for s in summaries)
    if unparsed:
        raise CheckovError(f"checkov could not parse {unparsed} file(s): {stdout[:2000]}")
    passed = sum(int(s.get("passed", 0)) for s in summaries)
    failed = [
        f"{check['check_id']} {check['check_name']}: {check.get('resource', '?')} in "
        f"{Path(str(check.get('file_path', '?'))).name}"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    resources = sum(int(s.get("resource_count", 0)) for s in summaries)
    if resources == 0 or passed + len(failed) == 0:
        raise CheckovError(f"checkov ran no check on any resource: {summaries}")
    return CheckovReport(passed=passed, failed=failed, resources=resources)

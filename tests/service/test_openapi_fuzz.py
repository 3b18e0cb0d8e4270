"""schemathesis against the running service's own OpenAPI schema: no request it can generate
(valid or not) gets a 5xx. Runs the schemathesis CLI, as a user would against a deployment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from recplat.testing.service_process import RankingService

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_no_generated_request_gets_a_5xx(service: RankingService, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{service.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "30",
            "--seed",
            "7",
            "--header",
            f"Authorization: Bearer {service.api_key}",
            "--request-timeout",
            "30",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "No issues found" in output or "passed" in output, output[-3000:]
    assert "Traceback" not in service.log()

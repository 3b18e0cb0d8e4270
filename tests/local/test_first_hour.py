"""A brand team's first hour with the local platform, without starting it (fast).

`recplat local status` against a stand-in service that answers `/readyz` and `/model` as a
service serving the fallback does; `up`'s summary rendered at a narrow terminal; the
commands it prints; and `recplat report ctr` on a folder lake given as a relative path.
The slow end-to-end tests (test_platform.py) run the printed commands against a real
platform.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from recplat.local import commands
from recplat.local.state import BrandRecord, PlatformState, ProcessRecord
from recplat.local.summary import NEXT_STEPS_HEADING, FirstRequest, print_summary
from recplat.synthetic import SynthParams, default_end_date, generate, write_lake
from tests.local.printed_commands import next_commands_in

NARROW = 60

FALLBACK_MODEL = {
    "brand": "streamly",
    "challenger_traffic": 0.05,
    "fallback": True,
    "models": [{"name": "streamly-ranker", "version": "1", "alias": "challenger"}],
}


class _FallbackService(BaseHTTPRequestHandler):
    """Answers like a ranking service that has a challenger but no champion yet."""

    def do_GET(self) -> None:
        answers = {"/readyz": {"status": "ready-fallback"}, "/model": FALLBACK_MODEL}
        body = json.dumps(answers.get(self.path, {"detail": "Not Found"})).encode()
        self.send_response(200 if self.path in answers else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def fallback_service() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FallbackService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _state(state_dir: Path, service_port: int | None = None) -> PlatformState:
    """Two brands: newsroom serves a champion, streamly the fallback (no champion yet)."""
    state = PlatformState(
        state_dir=str(state_dir), storage="local", mlflow_url="http://127.0.0.1:45678"
    )
    for name, port, version in (("newsroom", 51234, "1"), ("streamly", service_port, None)):
        state.brands[name] = BrandRecord(
            name=name,
            lake_uri=(state_dir / "lake" / name).as_uri(),
            service_url=f"http://127.0.0.1:{port or 51235}",
            api_key_file=str(state_dir / "keys" / f"{name}.key"),
            model_version=version,
            training_status="ok",
            training_message=f"{name}: registered {name}-ranker v1 as challenger",
        )
    if service_port is not None:
        # The stand-in service runs in this process, so this process is its recorded pid.
        state.processes.append(
            ProcessRecord(
                name="service-streamly",
                pid=os.getpid(),
                create_time=psutil.Process().create_time(),
                log_path=str(state_dir / "logs" / "service-streamly.log"),
                port=service_port,
            )
        )
    return state


def _run_recplat(*args: str, cwd: Path, columns: int = NARROW) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recplat", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env={**os.environ, "COLUMNS": str(columns)},
    )


def _row(output: str, first_cell: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(f"│ {first_cell} "))


def test_status_says_fallback_when_the_service_serves_the_fallback(
    tmp_path: Path, fallback_service: int
) -> None:
    _state(tmp_path, fallback_service).save()

    result = _run_recplat("local", "status", "--state-dir", str(tmp_path), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    process_row = _row(result.stdout, "service-streamly")
    assert "│ fallback" in process_row, result.stdout
    brand_row = _row(result.stdout, "streamly")
    assert brand_row.split("│")[2].strip() == "fallback", result.stdout
    assert "fallback" in brand_row.split("│")[3], "serving does not say fallback"
    assert "challenger v1" in result.stdout


def test_up_summary_keeps_every_url_on_one_line_at_a_narrow_terminal(tmp_path: Path) -> None:
    state = _state(tmp_path)
    output = StringIO()
    console = Console(file=output, width=NARROW, soft_wrap=True)

    print_summary(console, state, FirstRequest("newsroom", ["i000000", "i000001"]), detached=True)

    lines = output.getvalue().splitlines()
    urls = [
        "http://127.0.0.1:51234",
        "http://127.0.0.1:51235",
        "http://127.0.0.1:45678/#/models/newsroom-ranker",
        "http://127.0.0.1:45678/#/models/streamly-ranker",
    ]
    for url in urls:
        assert any(url in line for line in lines), f"{url} is broken across lines:\n{output}"
    assert "fallback" in _row(output.getvalue(), "streamly").split("│")[2]
    assert "newsroom's catalog holds items such as i000000, i000001" in output.getvalue()


def test_printed_commands_carry_uv_run_and_a_non_default_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(commands.PROJECT_ROOT)
    monkeypatch.setenv("UV", "/usr/local/bin/uv")
    assert commands.recplat_command("local", "down") == "uv run recplat local down"
    assert commands.recplat_command("local", "down", state_dir=commands.DEFAULT_STATE_DIR) == (
        "uv run recplat local down"
    )
    assert commands.recplat_command("local", "down", state_dir=tmp_path / "my state") == (
        f"uv run recplat local down --state-dir '{tmp_path / 'my state'}'"
    )
    monkeypatch.chdir(tmp_path)
    assert commands.recplat_command("local", "status") == (
        f"uv run --project {commands.PROJECT_ROOT} recplat local status"
    )
    monkeypatch.delenv("UV")
    assert commands.recplat_command("local", "status") == "recplat local status"


def test_up_summary_next_commands_use_relative_paths_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UV", "uv")
    output = StringIO()
    console = Console(file=output, width=NARROW, soft_wrap=True)

    print_summary(
        console, _state(tmp_path / "state"), FirstRequest("newsroom", ["i1"]), detached=True
    )

    assert NEXT_STEPS_HEADING in output.getvalue()
    project = f"uv run --project {commands.PROJECT_ROOT} recplat"
    assert next_commands_in(output.getvalue()) == [
        f"{project} local status --state-dir state",
        "curl -s -w '\\n' http://127.0.0.1:51234/rank "
        '-H "Authorization: Bearer $(cat state/keys/newsroom.key)" '
        "-H 'Content-Type: application/json' "
        """-d '{"user_id": "u000001", "candidates": ["i1"]}'""",
        f"{project} report ctr --lake-uri state/lake/newsroom",
        f"{project} local down --state-dir state",
    ]


def test_report_ctr_reads_a_folder_lake_given_as_a_relative_path(tmp_path: Path) -> None:
    params = SynthParams(brand="acme", users=40, items=20, days=2, end_date=default_end_date())
    write_lake(generate(params), (tmp_path / "lakes" / "acme").as_uri())

    result = _run_recplat(
        "report", "ctr", "--lake-uri", "lakes/acme", "--json", cwd=tmp_path, columns=80
    )

    assert result.returncode == 0, result.stderr
    assert '"champion"' in result.stdout


def test_report_ctr_names_the_resolved_folder_when_a_relative_lake_is_empty(
    tmp_path: Path,
) -> None:
    result = _run_recplat("report", "ctr", "--lake-uri", "no-such-lake", cwd=tmp_path)

    assert result.returncode == 1
    assert f"{(tmp_path / 'no-such-lake').as_uri()}: no impressions" in result.stderr

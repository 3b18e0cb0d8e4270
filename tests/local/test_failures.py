"""Failures a user meets with the local platform, and what they see: clear messages, clean stops."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from recplat.local.azurite import azurite_binary
from recplat.local.processes import LocalPlatformError, wait_until
from tests.local.platform_cli import recplat, write_brands


def test_missing_azurite_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(LocalPlatformError) as error:
        azurite_binary(tmp_path)
    assert str(error.value) == (
        f"Azurite is not installed ({tmp_path}/.scratch/node/node_modules/.bin/azurite-blob is "
        "missing); run `make setup` (it needs Node.js 20 and npm), or use `--storage local`"
    )


def test_a_bad_brands_dir_is_named(tmp_path: Path) -> None:
    result = recplat(
        "local", "up", "--brands-dir", str(tmp_path / "nope"), "--state-dir", str(tmp_path),
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        f"recplat local up: --brands-dir {tmp_path / 'nope'}: not a directory; "
        "point it at the folder of brand files\n"
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_an_invalid_brand_file_is_named_without_a_traceback(tmp_path: Path) -> None:
    brands = write_brands(tmp_path / "brands", ["alpha"])
    (brands / "alpha.yaml").write_text((brands / "alpha.yaml").read_text() + "colour: red\n")
    result = recplat(
        "local", "up", "--brands-dir", str(brands), "--state-dir", str(tmp_path / "s"),
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        "recplat local up: invalid brand files:\n"
        f"{brands / 'alpha.yaml'}: colour: no such key (remove it or check its spelling), "
        "got 'colour'\n"
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_status_without_a_platform_says_so(tmp_path: Path) -> None:
    result = recplat("local", "status", "--state-dir", str(tmp_path), timeout=60)
    assert result.returncode == 3
    # The hint runs as printed: it names this state folder (and `uv run` when needed).
    message = result.stdout.strip()
    assert message.startswith("no local platform is running (start one with `"), message
    command = message.split("`")[1]
    assert command.endswith(f"recplat local up --detach --state-dir {tmp_path}"), command


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ctrl_c_during_up_stops_everything_started(tmp_path: Path) -> None:
    brands = write_brands(tmp_path / "brands", ["alpha"])
    state_dir = tmp_path / "state"
    up = subprocess.Popen(
        [sys.executable, "-m", "recplat", "local", "up", "--brands-dir", str(brands),
         "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    state_file = state_dir / "state.json"

    def training_started() -> bool:
        try:
            state = json.loads(state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        return any(p["name"].startswith("training-") for p in state["processes"])

    try:
        wait_until(training_started, timeout_s=300, what="a training run to start")
        started = json.loads(state_file.read_text())["processes"]
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=120)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 130, output
    assert "interrupted: everything started has been stopped" in output
    assert "Traceback" not in output
    alive = [p["name"] for p in started if _alive(p["pid"])]
    assert alive == []
    assert not state_file.exists()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False

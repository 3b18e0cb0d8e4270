"""`recplat local up --storage` takes only the storage modes there are, and says which."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast


def test_an_unknown_storage_mode_exits_2_naming_the_choices_and_starts_nothing(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "state"
    result = subprocess.run(
        [sys.executable, "-m", "recplat", "local", "up", "--storage", "s3",
         "--state-dir", str(state_dir)],
        env={**os.environ, "COLUMNS": "200"},  # the error box on one line
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Invalid value for '--storage'" in result.stderr, result.stderr
    assert "'s3' is not one of 'local', 'azurite'" in result.stderr, result.stderr
    assert not state_dir.exists()

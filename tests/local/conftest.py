"""Fixtures for the local platform tests: a platform started like a user would.

The platform is started with the real CLI (`recplat local up --detach`) in a temp state
directory, once per storage mode, and stopped with `recplat local down`. The CLI runner and
the test brands are in `tests/local/platform_cli.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.local.platform_cli import StartedPlatform, recplat, write_brands


@pytest.fixture(scope="module", params=["local", "azurite"])
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartedPlatform]:
    storage: str = request.param
    root = tmp_path_factory.mktemp(f"platform-{storage}")
    state_dir = root / "state"
    brands = ["alpha", "bravo"]
    broken = None
    names = list(brands)
    if storage == "local":
        # A brand whose lake holds a corrupt catalog: its training must fail, alone.
        broken = "corrupt"
        names.append(broken)
        catalog = state_dir / "lake" / broken / "catalog" / "items.parquet"
        catalog.parent.mkdir(parents=True)
        catalog.write_bytes(b"this is not parquet")
    brands_dir = write_brands(root / "brands", names)
    result = recplat(
        "local", "up", "--detach", "--brands-dir", str(brands_dir),
        "--storage", storage, "--state-dir", str(state_dir),
    )  # fmt: skip
    started = StartedPlatform(storage, state_dir, brands, broken, result.stdout + result.stderr)
    try:
        assert result.returncode == 0, f"recplat local up failed:\n{started.up_output}"
        yield started
    finally:
        recplat("local", "down", "--state-dir", str(state_dir), timeout=120)

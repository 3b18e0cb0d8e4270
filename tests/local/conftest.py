"""Fixtures for the local platform tests: small brands, and a platform started like a user would.

The platform is started with the real CLI (`recplat local up --detach`) in a temp state
directory, once per storage mode, and stopped with `recplat local down`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from recplat.local.state import PlatformState, load_state

UP_TIMEOUT_S = 600

# Small and quick: few boosting rounds. Explores and judges like the example brands' dev
# (exploration 0.2, no label delay), so the counterfactual gate has data to decide on.
BRAND_TEMPLATE = """\
name: {name}
display_name: {name} test brand
owner: team-{name}@recplat.dev
cost_center: CC-TEST-01
environments: [dev]
serving:
  replicas: {{min: 1, max: 1}}
  max_candidates: 50
  challenger_traffic: 0.2
  exploration: 0.2
training:
  lookback_days: 14
  label_delay_hours: 0
  lightgbm:
    num_leaves: 31
    num_boost_round: 200
    min_data_in_leaf: 20
    early_stopping_rounds: 30
  promotion: {{metric: ndcg@10, min_gain: 0.0}}
"""


def write_brands(directory: Path, names: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / f"{name}.yaml").write_text(BRAND_TEMPLATE.format(name=name))
    return directory


def recplat(*args: str, timeout: float = UP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run the `recplat` CLI as a user would; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "recplat", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class StartedPlatform:
    """A platform started with `up --detach` for the tests of one storage mode."""

    storage: str
    state_dir: Path
    brands: list[str]
    broken_brand: str | None
    up_output: str

    @property
    def state(self) -> PlatformState:
        state = load_state(self.state_dir)
        assert state is not None, f"no state file in {self.state_dir}"
        return state


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


def state_json(state_dir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((state_dir / "state.json").read_text())
    return data

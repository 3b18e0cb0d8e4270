"""The local platform as a user drives it: the `recplat` CLI run as a process, small test
brand files, and what `recplat local up --detach` leaves (`StartedPlatform`)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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

"""One online experiment as its start recorded it, and the guardrails a challenger must keep.

The spec is read back from the challenger version's registry tags (`ranking-experiments`);
`ranking_training.experiment_arms` reads its events and `ranking_training.experiments`
decides on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ranking_features.assignment import CHALLENGER_ARM

from ranking_training.sequential_test import DEFAULT_MIXING_RELATIVE_SD


@dataclass(frozen=True)
class ExperimentSpec:
    """One online experiment, as its start recorded it (registry tags of the challenger)."""

    experiment_id: str
    started_at: datetime
    champion_version: str
    challenger_version: str
    # The share of users in the challenger arm (serving.challenger_traffic).
    challenger_traffic: float
    max_experiment_days: float
    alpha: float = 0.05
    # tau / champion CTR, the mixing standard deviation of the mSPRT (see `msprt`).
    mixing_relative_sd: float = DEFAULT_MIXING_RELATIVE_SD

    def __post_init__(self) -> None:
        where = f"experiment {self.experiment_id!r}"
        if self.started_at.tzinfo is None:
            raise ValueError(f"{where}: started_at must be timezone-aware (UTC), got naive")
        if not 0.0 < self.challenger_traffic < 1.0:
            raise ValueError(
                f"{where}: challenger_traffic must be in (0, 1), got {self.challenger_traffic}"
            )
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"{where}: alpha must be in (0, 1), got {self.alpha}")
        if not self.max_experiment_days > 0:
            raise ValueError(
                f"{where}: max_experiment_days must be > 0, got {self.max_experiment_days}"
            )
        if self.mixing_relative_sd <= 0:
            raise ValueError(
                f"{where}: mixing_relative_sd must be > 0, got {self.mixing_relative_sd}"
            )

    def version_of(self, arm: str) -> str:
        return self.challenger_version if arm == CHALLENGER_ARM else self.champion_version


@dataclass(frozen=True)
class Guardrails:
    """What a challenger must not break, and how much data a verdict needs."""

    # The challenger arm's fallback ratio may exceed the champion arm's by at most this.
    max_fallback_excess: float = 0.01
    # The same for the error ratio: failed requests / (answered + failed) requests.
    max_error_excess: float = 0.01
    # No verdict (promote or stop, except on expiry) before each arm has this many users: the
    # variance and the test are large-sample approximations.
    min_users_per_arm: int = 100


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive time is refused, since the lake's times are UTC."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()}: expected a timezone-aware (UTC) time")
    return moment.astimezone(UTC)

"""Moved to `recplat.testing.service_process` (benchmarks drive it too); this old path
re-exports it for tests not yet updated."""

from recplat.testing.servers import wait_until as wait_for
from recplat.testing.service_process import SERVE, RankingService

__all__ = ["SERVE", "RankingService", "wait_for"]

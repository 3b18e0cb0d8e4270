"""Moved to `recplat.testing.rankers` (benchmarks register rankers too); this old path
re-exports it for tests not yet updated."""

from recplat.testing.rankers import (
    AS_OF,
    DAY,
    register_broken_version,
    register_ranker,
    set_alias,
    tiny_snapshot,
    train_ranker,
)

__all__ = [
    "AS_OF",
    "DAY",
    "register_broken_version",
    "register_ranker",
    "set_alias",
    "tiny_snapshot",
    "train_ranker",
]

"""Reading back what the ranking services shipped to a brand's lake.

The demo and the tests use it to wait, with a deadline, until acknowledged feedback has
left the services' local logs and landed in the lake, where training will read it. (Online
CTR per variant is `recplat.online_ctr`'s, the one definition `recplat report ctr` uses too.)
Synthetic history files (`synthetic-*.parquet`) are not the services' and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable


def shipped_event_ids(lake_uri: str, kind: str = "feedback") -> set[str]:
    """Event ids in every service-written parquet file under `events/<kind>/` of the lake."""
    import pyarrow.parquet as pq
    from ranking_features.events import EVENTS_DIR, partition_glob
    from ranking_features.lake import open_lake

    fs, root = open_lake(lake_uri)
    pattern = f"{root}/{partition_glob(f'{EVENTS_DIR}/{kind}')}"
    found: set[str] = set()
    for path in fs.glob(pattern):
        name = str(path).rsplit("/", 1)[-1]
        if name.startswith("synthetic-"):
            continue
        with fs.open(path, "rb") as handle:
            found.update(pq.read_table(handle, columns=["event_id"]).column(0).to_pylist())
    return found


def missing_event_ids(lake_uri: str, expected: Iterable[str]) -> set[str]:
    """The ids in `expected` that are not in the lake yet."""
    return set(expected) - shipped_event_ids(lake_uri)

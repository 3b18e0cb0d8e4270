"""Synthetic lake history from a brand's hidden simulated world, and that world on the calendar.

The hidden truth (`GroundTruth`) is a `recplat.simulation.truth.World`: latent user and item
factors, cascade clicks (not a position curve), items arriving over days, conversions. It is
what a real brand never sees, and the features do not mirror it:

- each item's catalog category is `recplat.simulation.lake.WorldLake.categories` (its strongest
  of the first few latent factors), so category affinity and the session's categories see part
  of a user's taste, never the factors themselves; popularity sees the items' average
  attraction;
- items there from day 0 were published over the month before; the others are published at
  the start of the day they arrive. Attraction does not fade with age, so freshness is a
  feature the model may find useless.

Day 0 is the history's first day. The world runs `DAYS_AFTER_HISTORY` day past the history,
the day after it: a history that ends yesterday (`recplat data synth`'s default) leaves
today's arriving items new to every model.

`generate` plays a logging policy against the world for `params.days` days and writes
impressions, click and conversion feedback and catalog in the lake layout
(docs/architecture.md, "Contracts"). It
reports the oracle NDCG@10: ranking the logged lists by the true attraction, scored on the
logged labels. Two logging policies (`LoggingPolicy`):

- `popularity` logs as the ranking service does (docs/architecture.md, "Impressions and
  exploration"): each request sends `candidates` available items, which the policy ranks by
  their clicks on the days before (the brand's previous system, before any model); a share
  `exploration` of requests shows a uniformly random k-permutation of its top m = min(2k, n)
  with propensity 1/m and the pool logged, the rest its top k in order (propensity 1). This
  is the history the counterfactual gate can judge on, and the one the local platform writes.
- `random` shows k random available items: no service logged it, so its rows carry no
  `policy`, `propensity` or `pool` and the gate finds no exploration in it. A quick fixture
  for tests of the plumbing.

`GroundTruth` rebuilds deterministically from its parameters, which are saved as
`synthetic/groundtruth.json` in the lake, so the local traffic simulator
(`recplat.local.simulator`) decides clicks for the rankings it is served by the same world the
history came from. Training never reads that file.

The package: `ground_truth` (the world on the calendar, `SynthParams`), `logging_policies`
(what each policy served and the users did), `tables` (the lake's tables of it); here,
`generate` and `write_lake`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from ranking_features.events import CLICK, CONVERSION

from recplat.synthetic.ground_truth import (
    GROUNDTRUTH_PATH,
    GroundTruth,
    LoggingPolicy,
    SynthParams,
)
from recplat.synthetic.logging_policies import serve_popularity, serve_random
from recplat.synthetic.tables import feedback_table, impressions_and_catalog

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "GroundTruth",
    "LoggingPolicy",
    "SynthParams",
    "SyntheticData",
    "default_end_date",
    "generate",
    "write_lake",
]

# Seconds a user spends on an item before the next click, on average (cascade: in order).
CLICK_DELAY_S = 20.0
CONVERSION_DELAY_S = 120.0


@dataclass
class SyntheticData:
    """Generated tables (pyarrow) and the oracle's quality on them."""

    impressions: pa.Table
    feedback: pa.Table
    catalog: pa.Table
    oracle: dict[str, float]
    truth: GroundTruth


def generate(params: SynthParams) -> SyntheticData:
    """Play `params.logging_policy` against the world for `params.days` days."""
    params.check()
    truth = GroundTruth.from_params(params)
    world = truth.world
    rng = np.random.default_rng([params.seed, 2])
    if params.logging_policy == LoggingPolicy.POPULARITY:
        served = serve_popularity(truth, rng)
    else:
        served = serve_random(truth, rng)
    user, shown, request_ts = served.user, served.shown, served.request_ts
    clicked, converted = served.clicked, served.converted
    # A cascade scans top-down, so a list's clicks come in position order.
    click_ts = request_ts[:, None] + np.cumsum(
        np.floor(1.0 + rng.exponential(CLICK_DELAY_S, shown.shape)), axis=1
    )
    conversion_ts = click_ts + np.floor(1.0 + rng.exponential(CONVERSION_DELAY_S, shown.shape))

    request_ids = [uuid.UUID(int=int(key)).hex for key in rng.integers(0, 2**63, len(user))]
    tables = impressions_and_catalog(truth, request_ids, served)
    feedback = feedback_table(
        truth,
        request_ids,
        user,
        shown,
        [(CLICK, clicked, click_ts), (CONVERSION, converted, conversion_ts)],
    )
    from ranking_training.metrics import ranking_metrics

    labels = np.where(converted, 2.0, np.where(clicked, 1.0, 0.0))
    oracle = ranking_metrics(
        labels.ravel(),
        world.attraction_logit(user[:, None], shown).ravel(),
        np.full(len(user), shown.shape[1]),
    )
    return SyntheticData(tables[0], feedback, tables[1], oracle, truth)


def write_lake(data: SyntheticData, lake_uri: str) -> None:
    """Write the generated tables in the lake layout, one parquet file per day and table."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from ranking_features.events import CATALOG_PATH, FEEDBACK_DIR, IMPRESSIONS_DIR, partition_dir
    from ranking_features.lake import open_lake

    fs, root = open_lake(lake_uri)
    for events_dir, table in ((IMPRESSIONS_DIR, data.impressions), (FEEDBACK_DIR, data.feedback)):
        days = pc.strftime(table["ts"], format="%Y-%m-%d")
        for day in sorted(set(days.to_pylist())):
            folder = f"{root}/{partition_dir(events_dir, day)}"
            fs.makedirs(folder, exist_ok=True)
            part = table.filter(pc.equal(days, day))
            with fs.open(f"{folder}/synthetic-{data.truth.params.seed}.parquet", "wb") as handle:
                pq.write_table(part, handle)
    fs.makedirs(f"{root}/catalog", exist_ok=True)
    with fs.open(f"{root}/{CATALOG_PATH}", "wb") as handle:
        pq.write_table(data.catalog, handle)
    fs.makedirs(f"{root}/synthetic", exist_ok=True)
    with fs.open(f"{root}/{GROUNDTRUTH_PATH}", "w") as handle:
        handle.write(data.truth.to_json())


def default_end_date() -> str:
    return (datetime.now(UTC).date() - timedelta(days=1)).isoformat()

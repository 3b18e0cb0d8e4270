"""Stage 4: fit a LightGBM LambdaRank booster, in process or on a Dask cluster.

In process, `lgb.train` stops early on the validation set. On Dask (`--workers N` starts a
LocalCluster of N workers; `--dask-scheduler` joins an existing cluster) `lightgbm.dask` trains
the same parameters. `lightgbm.dask` has no early stopping and takes no served positions, so
it runs `num_boost_round` rounds without the position-bias correction (the run is tagged
`trainer=dask`).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
from ranking_features import FEATURE_NAMES

from ranking_training.config import LightGBMSettings
from ranking_training.features import RankingMatrix


def train_in_process(
    train: RankingMatrix, valid: RankingMatrix, settings: LightGBMSettings
) -> lgb.Booster:
    # Served positions (0-based) let LightGBM's unbiased LambdaMART divide position bias out.
    train_set = lgb.Dataset(
        train.features,
        train.labels,
        group=train.group_sizes,
        position=train.positions - 1,
        feature_name=list(FEATURE_NAMES),
    )
    valid_set = lgb.Dataset(
        valid.features, valid.labels, group=valid.group_sizes, reference=train_set
    )
    return lgb.train(
        settings.booster_params(),
        train_set,
        num_boost_round=settings.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )


def train_on_dask(
    train: RankingMatrix,
    settings: LightGBMSettings,
    workers: int,
    scheduler_address: str = "",
) -> lgb.Booster:
    import dask.array as da
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler_address:
        client = Client(scheduler_address)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False)
        client = Client(cluster)
    try:
        n_parts = max(workers, len(client.scheduler_info()["workers"]), 1)
        # Partitions must not cut a request in two: split on group boundaries.
        group_parts = np.array_split(train.group_sizes, n_parts)
        row_counts = [int(part.sum()) for part in group_parts]
        features = da.from_array(train.features, chunks=(tuple(row_counts), len(FEATURE_NAMES)))
        labels = da.from_array(train.labels, chunks=(tuple(row_counts),))
        groups = da.from_array(train.group_sizes, chunks=(tuple(len(p) for p in group_parts),))
        params = settings.booster_params()
        # lightgbm.dask sets threads per worker itself and evaluates nothing without eval sets.
        for unused in ("metric", "eval_at", "num_threads"):
            params.pop(unused)
        ranker = lgb.DaskLGBMRanker(client=client, n_estimators=settings.num_boost_round, **params)
        ranker.fit(features, labels, group=groups, feature_name=list(FEATURE_NAMES))
        return ranker.booster_
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

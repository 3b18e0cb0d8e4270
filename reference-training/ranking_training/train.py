"""Stage 4: fit a LightGBM LambdaRank booster, in this process or across Dask workers.

One fit, `fit_booster`, on either path: the served positions go to LightGBM's unbiased
LambdaMART (`Dataset(position=...)`) and boosting stops early on the early-stopping window. In
process it is plain `lgb.train` on the training window's rows.

On Dask (`fit_on_cluster`) the training rows stay on the workers that built them, in whole
requests. Each worker holding some runs `fit_booster` on its own rows as one machine of
LightGBM's data-parallel learner (its socket network: the mechanism `lightgbm.dask` drives).
`lightgbm.dask`'s estimators themselves are not used: they pass no positions, and their early
stopping lets each worker stop on its own slice of the validation data, out of step with the
others (LightGBM issues 6351, 7009). Here every worker evaluates the whole early-stopping
window (it is one of the window's days, copied to each), with the same model and thread count,
so all stop at the same round. What still differs from one machine (docs/architecture.md,
"Training on Dask"): each feature's bins are found on one worker's rows, leaf counts are
estimated from hessians summed across workers, and LightGBM fits the position-bias factors on
each worker's own rows (it does not share them), so the model agrees with the in-process one
within a tolerance, not bit for bit. On one worker it is bit for bit the in-process model.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
from ranking_features import FEATURE_NAMES

from ranking_training.config import LightGBMSettings
from ranking_training.features import RankingMatrix

if TYPE_CHECKING:
    from ranking_training.cluster import Task, TrainingCluster

NETWORK_TIMEOUT_MINUTES = 60
"""How long a LightGBM machine waits for the others at a synchronisation point."""


def train_in_process(
    train: RankingMatrix, valid: RankingMatrix, settings: LightGBMSettings
) -> lgb.Booster:
    """`fit_booster` on one in-memory training window."""
    return fit_booster([train], [valid], settings)


def fit_booster(
    train: list[RankingMatrix],
    valid: list[RankingMatrix],
    settings: LightGBMSettings,
    network: dict[str, Any] | None = None,
) -> lgb.Booster:
    """Fit on the requests of `train` (in order), stopping early on `valid`; with `network`,
    as one machine of a data-parallel fit whose other machines hold the other requests."""
    params = settings.booster_params()
    if network:
        params.update(network)
    pieces = [part for part in train if len(part.labels)]
    # Labels, groups and positions concatenated; the features, the window's largest part, as
    # the pieces hold them (LightGBM reads a list of arrays), never copied.
    rows = _concat([replace(part, features=part.features[:0]) for part in pieces])
    features = [part.features for part in pieces]
    # Served positions (0-based) let LightGBM's unbiased LambdaMART divide position bias out.
    train_set = lgb.Dataset(
        features[0] if len(features) == 1 else features,
        rows.labels,
        group=rows.group_sizes,
        position=rows.positions - 1,
        feature_name=list(FEATURE_NAMES),
    )
    held_out = _concat(valid)
    valid_set = lgb.Dataset(
        held_out.features, held_out.labels, group=held_out.group_sizes, reference=train_set
    )
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=settings.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )
    if network:
        booster.free_network()
    return booster


def fit_on_cluster(
    cluster: TrainingCluster,
    train: list[Task],
    valid: list[Task],
    settings: LightGBMSettings,
) -> lgb.Booster:
    """Fit on the training pieces where they are (`train`, in time order), stopping early on
    the early-stopping pieces `valid`."""
    if cluster.client is None:
        # In process the pieces are here already: the same fit, as one machine.
        return fit_booster(train, valid, settings)
    return _fit_on_workers(cluster, train, valid, settings)


def _fit_on_workers(
    cluster: TrainingCluster,
    train: list[Task],
    valid: list[Task],
    settings: LightGBMSettings,
) -> lgb.Booster:
    from distributed import futures_of

    client = cluster.client
    assert client is not None
    futures = [futures_of(piece)[0] for piece in train]
    holders = client.who_has(futures)
    by_worker: dict[str, list[Any]] = {}
    # In time order per worker: each machine's rows are whole requests, in any order of days.
    for future in futures:
        by_worker.setdefault(sorted(holders[future.key])[0], []).append(future)
    workers = sorted(by_worker)
    valid_futures = [futures_of(piece)[0] for piece in valid]
    threads = settings.num_threads or min(client.ncores(workers).values())
    # The same thread count everywhere: the early-stopping metric must be equal to the bit on
    # every machine, or they stop at different rounds and wait on each other until time-out.
    settings_here = _with_threads(settings, threads)
    if len(workers) == 1:
        future = client.submit(
            fit_booster, by_worker[workers[0]], valid_futures, settings_here,
            workers=workers, pure=False,
        )  # fmt: skip
        return cluster.gather([future])[0]
    ports = client.run(_free_port, workers=workers)
    machines = ",".join(f"{_host(w)}:{ports[w]}" for w in workers)
    fits = [
        client.submit(
            fit_booster,
            by_worker[worker],
            valid_futures,
            settings_here,
            {
                "tree_learner": "data",
                "num_machines": len(workers),
                "machines": machines,
                "local_listen_port": ports[worker],
                "time_out": NETWORK_TIMEOUT_MINUTES,
            },
            workers=[worker],
            allow_other_workers=False,
            pure=False,
        )
        for worker in workers
    ]
    # Every machine ends with the same model; the first one's is returned.
    boosters = cluster.gather(fits)
    return boosters[0]


def _concat(parts: list[RankingMatrix]) -> RankingMatrix:
    if len(parts) == 1:
        return parts[0]
    return RankingMatrix(
        features=np.concatenate([p.features for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        positions=np.concatenate([p.positions for p in parts]),
        group_sizes=np.concatenate([p.group_sizes for p in parts]),
        request_ts=np.concatenate([p.request_ts for p in parts]),
    )


def _with_threads(settings: LightGBMSettings, threads: int) -> LightGBMSettings:
    return replace(settings, num_threads=threads)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def _host(address: str) -> str:
    from urllib.parse import urlparse

    return urlparse(address).hostname or "127.0.0.1"

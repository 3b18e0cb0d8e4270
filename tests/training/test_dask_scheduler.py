"""The brand's Dask scheduler, as the Dask operator's autoscaler asks it (RPC
`adaptive_target`): the run's workers while a training run is connected, none once it left."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from distributed import Client, LocalCluster
from distributed.core import rpc

from recplat.testing.servers import wait_until

RUN_WORKERS = 3


def _target(address: str) -> int:
    """What the operator reads when the scheduler has no HTTP API route: the RPC answer."""

    async def ask() -> int:
        async with rpc(address) as scheduler:
            return int(await scheduler.adaptive_target())

    return asyncio.run(ask())


@pytest.fixture
def scheduler(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[str]:
    """A scheduler with no workers, as on AKS between runs; with the preload unless the test
    is parametrised with False."""
    monkeypatch.setenv("RECPLAT_TRAINING_WORKERS", str(RUN_WORKERS))
    preload = ["ranking_training.dask_scheduler"] if getattr(request, "param", True) else []
    with LocalCluster(
        n_workers=0, processes=False, dashboard_address=":0", scheduler_kwargs={"preload": preload}
    ) as cluster:
        yield cluster.scheduler_address


def test_the_scheduler_wants_the_runs_workers_exactly_while_a_run_is_connected(
    scheduler: str,
) -> None:
    assert _target(scheduler) == 0
    client = Client(scheduler)
    try:
        wait_until(lambda: _target(scheduler) == RUN_WORKERS, 10, "the target to rise")
    finally:
        client.close()
    wait_until(lambda: _target(scheduler) == 0, 10, "the target to fall back to zero")


@pytest.mark.parametrize("scheduler", [False], indirect=True)
def test_without_the_preload_a_connected_run_gets_no_workers(scheduler: str) -> None:
    """Can fail: Dask's own target follows queued work, not a connected driver."""
    with Client(scheduler):
        assert _target(scheduler) == 0

"""Where the training job's tasks run: in this process, or on Dask workers.

The job is one pipeline of tasks on day partitions (`lake_window`, `day_features`) and a fit
(`train`), whatever runs it. `TrainingCluster` runs it:

- `in_process()`: every task runs here, in order, as soon as it is submitted (what Dask's
  synchronous scheduler does, without building a graph first), and nothing is serialised: the
  job without `--workers`.
- `local(n)`: a `LocalCluster` of `n` worker processes (`--workers N` without a scheduler).
- `join(address, n)`: an existing cluster, the brand's DaskCluster on AKS. Its workers are
  scaled by the Dask operator while this client is connected (`ranking_training.
  dask_scheduler`), so joining waits, with a deadline, until `n` of them are there.

Results that later stages need stay where their task ran (`persist`); only small ones come back
to this process (`compute`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dask

from ranking_training.errors import TrainingError

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

Task = Any
"""A task's result as the pipeline holds it: the value itself in process, a Dask `Delayed`
(of a result kept on a worker) on a cluster."""

WORKER_WAIT_SECONDS = 900.0
"""How long joining waits for the workers: on AKS the user node pool may first add nodes."""
BUCKETS_PER_WORKER = 2
"""Buckets of the shuffles (`lake_window`) per worker: small enough to move, enough to spread."""


class TrainingCluster:
    """Runs the pipeline's tasks; `client` is None in process."""

    def __init__(self, client: Client | None = None, owned: LocalCluster | None = None) -> None:
        self.client = client
        self._owned = owned

    @classmethod
    def in_process(cls) -> TrainingCluster:
        return cls()

    @classmethod
    def local(cls, workers: int, memory_limit: str | None = None) -> TrainingCluster:
        """A LocalCluster of `workers` processes sharing this machine's cores."""
        from distributed import Client, LocalCluster

        threads = max(1, (os.cpu_count() or 1) // workers)
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            memory_limit=memory_limit or "auto",
            dashboard_address=":0",
        )
        return cls(Client(cluster), cluster)

    @classmethod
    def join(
        cls, address: str, workers: int, wait_seconds: float = WORKER_WAIT_SECONDS
    ) -> TrainingCluster:
        """The cluster at `address`, once `workers` workers (at least one) have joined."""
        from distributed import Client

        client = Client(address, timeout=60)
        wanted = max(1, workers)
        try:
            client.wait_for_workers(wanted, timeout=wait_seconds)
        except TimeoutError as error:
            present = len(client.scheduler_info()["workers"])
            client.close()
            raise TrainingError(
                f"Dask cluster {address}: {present} of {wanted} workers joined within "
                f"{wait_seconds:.0f} s; check the brand's DaskCluster, its autoscaler and "
                "the node pool (kubectl get daskcluster,daskautoscaler,pods)"
            ) from error
        return cls(client)

    @property
    def distributed(self) -> bool:
        return self.client is not None

    def workers(self) -> list[str]:
        """The workers' addresses (none in process)."""
        if self.client is None:
            return []
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    @property
    def buckets(self) -> int:
        """How many buckets the shuffles use: one in process (it holds everything anyway)."""
        return 1 if self.client is None else BUCKETS_PER_WORKER * max(1, len(self.workers()))

    def task(self, function: Callable[..., Any], *args: Any, nout: int | None = None) -> Task:
        """`function(*args)` as a task: its result in process, a `Delayed` on Dask (with `nout`,
        a tuple of that many). Arguments may be earlier tasks' results."""
        if self.client is None:
            return function(*args)
        return dask.delayed(function, pure=False, nout=nout)(*args)

    def persist(self, values: Sequence[Task]) -> list[Task]:
        """Run `values` (tasks), keeping each result where it was computed."""
        if self.client is None or not values:
            return list(values)
        return list(self.client.persist(list(values)))

    def compute(self, values: Sequence[Task]) -> list[Any]:
        """Run `values` (tasks) and bring their (small) results here."""
        if self.client is None or not values:
            return list(values)
        return self.gather(self.client.compute(list(values)))

    def gather(self, futures: list[Any]) -> list[Any]:
        """The results of Dask futures; a worker that died is the job's error, not a trace."""
        from distributed import KilledWorker

        assert self.client is not None
        try:
            return list(self.client.gather(futures))
        except KilledWorker as error:
            raise TrainingError(
                f"a Dask worker died running {error.task!r} (killed twice, most often for "
                "going over its memory limit); give training.memory more, or more workers"
            ) from error

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self._owned is not None:
            self._owned.close()


@contextmanager
def training_cluster(
    workers: int, scheduler_address: str = "", memory_limit: str | None = None
) -> Iterator[TrainingCluster]:
    """The cluster a run uses: joined, started locally, or this process (module docstring)."""
    if scheduler_address:
        cluster = TrainingCluster.join(scheduler_address, workers)
    elif workers > 0:
        cluster = TrainingCluster.local(workers, memory_limit)
    else:
        cluster = TrainingCluster.in_process()
    try:
        yield cluster
    finally:
        cluster.close()

"""The brand's Dask scheduler asks for its workers only while a training run is connected.

On AKS the brand's DaskCluster has no workers between runs. The Dask operator's
`DaskAutoscaler` scales its workers to what the scheduler's `adaptive_target` says (read over
the scheduler's HTTP API, else its RPC), clamped to [minimum, maximum]. Dask's own target
follows queued work, which says little about a job that wants all its workers at once, for its
whole run. This preload (`dask scheduler --preload ranking_training.dask_scheduler`) makes the
target `RECPLAT_TRAINING_WORKERS` (`training.workers`) while any client is connected, the
training job's driver, and Dask's own target otherwise, which falls to zero once the run has
disconnected and its data is gone. So the cluster scales to the run's size when the CronJob's
driver joins, and back to zero after it, even when the driver dies without cleaning up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ranking_features.workload_env import DaskSchedulerEnv

if TYPE_CHECKING:
    from distributed import Scheduler

# Dask keeps a pseudo-client of this name for fire-and-forget futures; it is nobody's run.
_NOT_A_RUN = "fire-and-forget"


def training_target(scheduler: Scheduler, workers: int) -> Any:
    """A replacement for `scheduler.adaptive_target`: `workers` while a run is connected."""
    own_target = scheduler.adaptive_target

    def adaptive_target(target_duration: Any = None) -> int:
        if any(client != _NOT_A_RUN for client in scheduler.clients):
            return workers
        return int(own_target(target_duration))

    return adaptive_target


def dask_setup(scheduler: Scheduler) -> None:
    """The preload's hook: replace the target the HTTP API and the RPC handler answer with."""
    workers = DaskSchedulerEnv.read().training_workers
    target = training_target(scheduler, workers)
    scheduler.adaptive_target = target  # type: ignore[method-assign]
    # The RPC handler was bound to the original method when the scheduler was built.
    scheduler.handlers["adaptive_target"] = target

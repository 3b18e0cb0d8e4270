"""The command-line flags of the training jobs that a brand file decides.

The AKS CronJobs (``infra.brand_training``) and the local platform
(``recplat.local.workloads``) both start from these lists, so neither can run a job with
its defaults instead of the brand's.
"""

from __future__ import annotations

from ranking_features.brand.model import Monitoring, Training


def ranking_drift_flags(monitoring: Monitoring) -> list[str]:
    """The ``ranking-experiments drift`` flags the brand file decides, for the AKS CronJob
    (infra/brand_training.py) and the local platform (recplat/local/workloads.py) alike."""
    return [
        "--psi-threshold", str(monitoring.drift_psi_threshold),
        "--window-hours", str(monitoring.drift_window_hours),
        "--min-rows", str(monitoring.drift_min_rows),
    ]  # fmt: skip


def ranking_train_flags(training: Training) -> list[str]:
    """The ``ranking-train`` flags the brand file decides: window, label delay, gate, LightGBM.

    ``ranking-train`` takes its settings as flags only; the AKS CronJob
    (infra/brand_training.py) and the local platform (recplat/local/workloads.py) both start
    from this list, so neither can train with the job's defaults. How the job runs (workers,
    threads, Dask scheduler, window end) is theirs to add. Pass the brand merged for its
    environment, so overrides apply.
    """
    promotion = training.promotion
    flags = [
        "--lookback-days", str(training.lookback_days),
        "--label-delay-hours", str(training.label_delay_hours),
        "--promotion-metric", promotion.metric.value,
        "--min-gain", str(promotion.min_gain),
        "--conversion-weight", str(promotion.conversion_weight),
        "--margin", str(promotion.margin),
        "--min-exploration-requests", str(promotion.min_exploration_requests),
    ]  # fmt: skip
    for name, value in training.lightgbm.model_dump().items():
        flags += ["--" + name.replace("_", "-"), str(value)]
    return flags

"""The scale table of `bench_training`: the job's cluster stages at 1M, 5M and 20M impressions,
in process and on a 2-worker LocalCluster with a per-worker memory limit, each run in a fresh
process (`python -m benchmarks.training_scale LAKE FIRST WORKERS MEMORY` prints one JSON line).

The lakes are 1M-impression shards, each its own world with its own users and items.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from ranking_features.events import CATALOG_DIR, CATALOG_PATH, EVENTS_DIR
from ranking_training.cluster import TrainingCluster
from ranking_training.config import LightGBMSettings
from ranking_training.day_features import build_features
from ranking_training.lake_window import read_window
from ranking_training.train import fit_on_cluster
from ranking_training.window_parts import split_days

from recplat.synthetic import SyntheticData, SynthParams, generate, write_lake

END = date(2025, 1, 31)


def scale_table(args: argparse.Namespace, scales: list[int]) -> list[dict[str, Any]]:
    """Every scale in process and on two workers, each run in a fresh process."""
    rows = []
    first = END - timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory() as scratch:
        shards = Path(scratch) / "shards"
        for scale in scales:
            lake = _sharded_lake(args, shards, Path(scratch) / f"lake-{scale}m", scale)
            for workers in (0, 2):
                command = [
                    sys.executable, "-m", "benchmarks.training_scale",
                    lake.as_uri(), str(first), str(workers), args.worker_memory,
                ]  # fmt: skip
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"scale run {scale}M, {workers} workers:\n{done.stderr}")
                row = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append({"millions": scale, **row})
                print(_scale_line(rows[-1]), flush=True)
    return rows


def _sharded_lake(args: argparse.Namespace, pool: Path, lake: Path, scale: int) -> Path:
    """A lake of `scale` 1M-impression shards, each a world of its own (seed), its users and
    items renamed apart, so the features mean per shard what they mean in the 1M lake."""
    catalogs = []
    for shard in range(scale):
        if not (pool / f"shard-{shard}").exists():
            params = SynthParams(
                "bench", args.users, args.items, args.days, seed=3 + shard, end_date=str(END)
            )
            data = generate(params)
            write_lake(_renamed(data, shard), (pool / f"shard-{shard}").as_uri())
            del data
        for path in (pool / f"shard-{shard}" / EVENTS_DIR).rglob("*.parquet"):
            target = lake / path.relative_to(pool / f"shard-{shard}")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
        catalogs.append(pq.read_table(pool / f"shard-{shard}" / CATALOG_PATH))
    (lake / CATALOG_DIR).mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables(catalogs), lake / CATALOG_PATH)
    return lake


def _renamed(data: SyntheticData, shard: int) -> SyntheticData:
    def renamed(table: pa.Table, columns: tuple[str, ...]) -> pa.Table:
        for name in columns:
            index = table.schema.get_field_index(name)
            values = pc.binary_join_element_wise(f"s{shard}", table[name], "-")
            table = table.set_column(index, table.schema.field(index), values)
        return table

    return replace(
        data,
        impressions=renamed(data.impressions, ("user_id", "item_id")),
        feedback=renamed(data.feedback, ("user_id", "item_id")),
        catalog=renamed(data.catalog, ("item_id",)),
    )


def _scale_run(lake_uri: str, first: str, workers: str, memory: str) -> None:
    """One run of the job's cluster stages in this fresh process; prints one JSON line."""
    n = int(workers)
    cluster = TrainingCluster.local(n, memory) if n else TrainingCluster.in_process()
    settings = LightGBMSettings()
    stages: dict[str, float] = {}
    started = time.perf_counter()
    window = read_window(cluster, lake_uri, date.fromisoformat(first), END, None, dismiss_label=0)
    window.fingerprint()
    stages["load"] = time.perf_counter() - started
    parts = split_days(build_features(window, validation_days=1), validation_days=1)
    stages["features"] = time.perf_counter() - started - sum(stages.values())
    booster = fit_on_cluster(cluster, parts.train, parts.early_stopping, settings)
    stages["fit"] = time.perf_counter() - started - sum(stages.values())
    evaluation = parts.evaluate(booster, None).evaluation
    parts.exploration()
    stages["evaluate"] = time.perf_counter() - started - sum(stages.values())
    wall = time.perf_counter() - started
    worker_peaks = []
    if cluster.client is not None:
        worker_peaks = sorted(cluster.client.run(_peak_rss).values())
    cluster.close()
    print(
        json.dumps(
            {
                "workers": n,
                "impressions": window.counts["impressions"],
                "seconds": wall,
                "stage_seconds": stages,
                "driver_peak_rss_gib": _peak_rss() / 2**30,
                "worker_peak_rss_gib": [p / 2**30 for p in worker_peaks],
                "best_iteration": booster.best_iteration,
                "ndcg@10": evaluation.model["ndcg@10"],
            }
        )
    )


def _peak_rss() -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) * 1024 if match else 0


def _scale_line(row: dict[str, Any]) -> str:
    where = "in process" if row["workers"] == 0 else f"{row['workers']} workers"
    workers = ", ".join(f"{p:.2f}" for p in row["worker_peak_rss_gib"]) or "-"
    stages = "/".join(f"{row['stage_seconds'][k]:.0f}" for k in ("load", "features", "fit"))
    return (
        f"{row['millions']:>3}M {where:<11} {row['seconds']:>8.1f} s ({stages})   driver "
        f"{row['driver_peak_rss_gib']:5.2f} GiB   workers {workers:<12} GiB   "
        f"ndcg@10 {row['ndcg@10']:.4f} (best iteration {row['best_iteration']})"
    )


def print_scale(rows: list[dict[str, Any]], memory: str) -> None:
    print(
        f"\nscale: the job's stages (no MLflow), fresh process per run; workers limited to {memory}"
    )
    print(
        f"{'':>4} {'where':<11} {'wall (load/features/fit)':>24}   {'driver peak RSS':<21}"
        "worker peak RSS"
    )
    for row in rows:
        print(_scale_line(row))


if __name__ == "__main__":
    _scale_run(*sys.argv[1:5])

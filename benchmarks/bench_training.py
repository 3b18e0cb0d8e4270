"""Benchmark of the training job: its overhead over plain LightGBM, and how it scales on Dask.

1. On 1M synthetic impressions, the job's stages in process (load, features, fit, evaluate:
   the tasks `ranking-train` runs, without the MLflow upload) next to the peer: reading the
   same parquet files with pyarrow plus a plain `lgb.train` on the same matrix with the same
   parameters and early stopping, alternated over rounds (medians count). NDCG@10 of the model,
   the popularity baseline and the ground-truth oracle on the gate day. The ratio depends on
   how long the fit runs (it stops early when the gate day stops improving: on this world at
   iteration 3), so each round also fits both sides for a fixed `--fit-rounds` (79 by default:
   the length of the fit behind the earlier 1.28x, best iteration 49 plus 30 of patience),
   with the job's load and features as measured. Then one whole `ranking-train` run against a
   real MLflow server on loopback.
2. The scale table: 1M, 5M and 20M impressions (1M-impression shards, each its own world with
   its own users and items), each in process and on a 2-worker LocalCluster with a per-worker
   memory limit, every run in a fresh process: wall time of the job's stages, the driver's
   peak RSS and each worker's peak RSS, NDCG@10 of the model on the gate day.

    uv run python benchmarks/bench_training.py [--scales 1,5,20 --worker-memory 8GiB]

Prints tables and writes benchmarks/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pyarrow.parquet as pq
from ranking_features import FEATURE_NAMES
from ranking_features.events import (
    CATALOG_DIR,
    FEEDBACK_DIR,
    IMPRESSIONS_DIR,
)
from ranking_training.cluster import TrainingCluster
from ranking_training.config import LightGBMSettings
from ranking_training.data import day_start
from ranking_training.day_features import build_features, concat_matrices
from ranking_training.evaluate import Evaluation
from ranking_training.features import RankingMatrix
from ranking_training.lake_window import read_window
from ranking_training.metrics import ranking_metrics
from ranking_training.train import fit_on_cluster
from ranking_training.window_parts import split_days

from benchmarks.training_scale import END, print_scale, scale_table
from recplat.synthetic import SyntheticData, SynthParams, generate, write_lake

RESULTS = Path(__file__).parent / "results" / "training.json"
SHARD_USERS = 10_000
"""One shard is the 1M world: 10k users x 0.5 requests a day x 20 days x 10 items."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=SHARD_USERS)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="job and peer runs; medians count")
    parser.add_argument("--fit-rounds", type=int, default=79, help="the fixed-length fit's rounds")
    parser.add_argument("--scales", default="1,5,20", help="millions of impressions ('' skips)")
    parser.add_argument("--worker-memory", default="8GiB", help="per Dask worker")
    args = parser.parse_args()
    first = END - timedelta(days=args.days - 1)
    params = SynthParams("bench", args.users, args.items, args.days, seed=3, end_date=str(END))

    started = time.perf_counter()
    data = generate(params)
    generate_s = time.perf_counter() - started
    settings = LightGBMSettings()
    with tempfile.TemporaryDirectory() as scratch:
        lake = Path(scratch) / "lake"
        write_lake(data, lake.as_uri())
        # Rounds alternate job and peer; each stage reports its median, so a noisy fit in one
        # round (two cores, OpenMP) does not decide the ratio.
        rounds: list[dict[str, dict[str, float]]] = []
        # Patience as long as the fit: both sides run exactly `fit_rounds`.
        fixed = replace(
            settings, num_boost_round=args.fit_rounds, early_stopping_rounds=args.fit_rounds
        )
        for _ in range(args.rounds):
            job, (booster, train, valid, gate, evaluation) = _job_round(
                lake, first, settings, fixed
            )
            peer, plain = _peer_round(lake, train, valid, settings, fixed)
            rounds.append({"job": job, "peer": peer})
        whole = _whole_job(lake, first, END, Path(scratch))
    job = {k: statistics.median(r["job"][k] for r in rounds) for k in rounds[0]["job"]}
    peer = {k: statistics.median(r["peer"][k] for r in rounds) for k in rounds[0]["peer"]}

    oracle = _oracle_on_last_day(data, day_start(END + timedelta(days=1)))
    result: dict[str, Any] = {
        "impressions": data.impressions.num_rows,
        "feedback_events": data.feedback.num_rows,
        "train_rows": len(train.labels),
        "gate_rows": len(gate.labels),
        "features": list(FEATURE_NAMES),
        "generate_seconds": generate_s,
        "job_seconds": job,
        "peer_seconds": peer,
        "job_over_peer": job["total"] / peer["total"],
        "fixed_fit_rounds": args.fit_rounds,
        "job_over_peer_fixed_fit": job["total_fixed_fit"] / peer["total_fixed_fit"],
        "rounds": rounds,
        "whole_job_with_mlflow": whole,
        "best_iteration": {"job": booster.best_iteration, "plain": plain.best_iteration},
        "ndcg@10": {
            "model": evaluation.model["ndcg@10"],
            "popularity": evaluation.popularity["ndcg@10"],
            "oracle": oracle,
        },
        "lightgbm": settings.booster_params() | {"num_boost_round": settings.num_boost_round},
    }
    del data
    _print(result)
    scales = [int(s) for s in args.scales.split(",") if s]
    if scales:
        result["scale"] = scale_table(args, scales)
        result["worker_memory_limit"] = args.worker_memory
        print_scale(result["scale"], args.worker_memory)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS}")


def _job_round(
    lake: Path, first: date, settings: LightGBMSettings, fixed: LightGBMSettings
) -> tuple[dict[str, float], tuple[Any, RankingMatrix, RankingMatrix, RankingMatrix, Evaluation]]:
    """The job's stages as `ranking-train` runs them in process (without MLflow), timed; and
    its fit with the `fixed` settings, in the total with the same load and features."""
    cluster = TrainingCluster.in_process()
    job: dict[str, float] = {}
    started = time.perf_counter()
    window = read_window(cluster, lake.as_uri(), first, END, None, dismiss_label=0)
    job["load"] = time.perf_counter() - started
    started = time.perf_counter()
    parts = split_days(build_features(window, validation_days=1), validation_days=1)
    job["features"] = time.perf_counter() - started
    started = time.perf_counter()
    booster = fit_on_cluster(cluster, parts.train, parts.early_stopping, settings)
    job["fit"] = time.perf_counter() - started
    started = time.perf_counter()
    evaluation = parts.evaluate(booster, None).evaluation
    job["evaluate"] = time.perf_counter() - started
    job["total"] = sum(job.values())
    started = time.perf_counter()
    fit_on_cluster(cluster, parts.train, parts.early_stopping, fixed)
    job["fit_fixed"] = time.perf_counter() - started
    job["total_fixed_fit"] = job["total"] - job["fit"] + job["fit_fixed"]
    train, valid, gate = (
        concat_matrices(p) for p in (parts.train, parts.early_stopping, parts.gate)
    )
    return job, (booster, train, valid, gate, evaluation)


def _whole_job(lake: Path, first: date, end: date, scratch: Path) -> dict[str, float]:
    """`ranking-train` as a CronJob runs it, against a real MLflow server on loopback: the
    stages plus fingerprint, MLflow logging, registration and the gate (informational; the
    ratio above compares the stages the peer also does)."""
    from ranking_training.config import TrainingConfig
    from ranking_training.job import run_training

    from recplat.testing.servers import start_mlflow_server

    process, server = start_mlflow_server(scratch / "mlflow")
    try:
        config = TrainingConfig(
            brand="bench",
            lake_uri=lake.as_uri(),
            tracking_uri=server.tracking_uri,
            data_from=first,
            data_to=end,
        )
        started = time.perf_counter()
        result = run_training(config, say=lambda _: None)
        total = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(30)
    stages = sum(result.timings.values())
    return {"total": total, "stages": stages, "fingerprint_mlflow_and_gate": total - stages}


def _peer_round(
    lake: Path,
    train: RankingMatrix,
    valid: RankingMatrix,
    settings: LightGBMSettings,
    fixed: LightGBMSettings,
) -> tuple[dict[str, float], Any]:
    """The peer: read the same parquet with pyarrow, then a plain `lgb.train` on the matrix;
    and the same `lgb.train` with the `fixed` settings."""
    peer: dict[str, float] = {}
    started = time.perf_counter()
    for folder in (IMPRESSIONS_DIR, FEEDBACK_DIR, CATALOG_DIR):
        pq.read_table(lake / folder)
    peer["read_parquet"] = time.perf_counter() - started
    started = time.perf_counter()
    plain = _plain_train(train, valid, settings)
    peer["lgb_train"] = time.perf_counter() - started
    peer["total"] = peer["read_parquet"] + peer["lgb_train"]
    started = time.perf_counter()
    _plain_train(train, valid, fixed)
    peer["lgb_train_fixed"] = time.perf_counter() - started
    peer["total_fixed_fit"] = peer["read_parquet"] + peer["lgb_train_fixed"]
    return peer, plain


def _plain_train(train: RankingMatrix, valid: RankingMatrix, settings: LightGBMSettings) -> Any:
    # The Dataset the job builds (positions for unbiased LambdaMART), with LightGBM's own bins.
    train_set = lgb.Dataset(
        train.features, train.labels, group=train.group_sizes, position=train.positions - 1
    )
    valid_set = lgb.Dataset(valid.features, valid.labels, group=valid.group_sizes)
    return lgb.train(
        settings.booster_params(),
        train_set,
        settings.num_boost_round,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )


def _oracle_on_last_day(data: SyntheticData, window_end: float) -> float:
    """NDCG@10 of ranking the gate day by the hidden true relevance."""
    impressions = data.impressions.to_pandas()
    feedback = data.feedback.to_pandas()
    truth = data.truth
    ts = impressions["ts"].astype("int64").to_numpy() / 1e6
    last = impressions[ts >= window_end - 86_400].copy()
    last_ts = ts[ts >= window_end - 86_400]
    gains = feedback.assign(gain=feedback["type"].map({"conversion": 2, "click": 1, "dismiss": 0}))
    best = gains.groupby(["request_id", "item_id"])["gain"].max()
    last["label"] = (
        best.reindex(list(zip(last["request_id"], last["item_id"], strict=True)))
        .fillna(0)
        .to_numpy()
    )
    users = truth.user_rows(last["user_id"].tolist())
    items = last["item_id"].str[1:].astype(int).to_numpy()
    last["relevance"] = truth._relevance(users, items, last_ts)
    last = last.sort_values(["request_id", "item_id"])
    sizes = last.groupby("request_id", sort=False).size().to_numpy()
    metrics = ranking_metrics(last["label"].to_numpy(), last["relevance"].to_numpy(), sizes)
    return metrics["ndcg@10"]


def _print(result: dict[str, Any]) -> None:
    job, peer = result["job_seconds"], result["peer_seconds"]
    print(f"\n{result['impressions']:,} impressions, {result['train_rows']:,} train rows")
    print(f"{'stage':<14}{'job (s)':>10}   {'peer':<14}{'(s)':>8}")
    print(f"{'load':<14}{job['load']:>10.2f}   {'read_parquet':<14}{peer['read_parquet']:>8.2f}")
    print(f"{'features':<14}{job['features']:>10.2f}")
    print(f"{'fit':<14}{job['fit']:>10.2f}   {'lgb.train':<14}{peer['lgb_train']:>8.2f}")
    print(f"{'evaluate':<14}{job['evaluate']:>10.2f}")
    print(f"{'total':<14}{job['total']:>10.2f}   {'total':<14}{peer['total']:>8.2f}")
    ratio, rounds = result["job_over_peer"], len(result["rounds"])
    print(f"job / peer: {ratio:.2f}x (target <= 1.5x), medians of {rounds} rounds")
    for n, r in enumerate(result["rounds"], start=1):
        print(f"  round {n}: job {r['job']['total']:.2f} s, peer {r['peer']['total']:.2f} s")
    fixed, n_fixed = result["job_over_peer_fixed_fit"], result["fixed_fit_rounds"]
    print(
        f"with a fixed {n_fixed}-round fit: job {job['total_fixed_fit']:.2f} s (fit "
        f"{job['fit_fixed']:.2f}), peer {peer['total_fixed_fit']:.2f} s (lgb.train "
        f"{peer['lgb_train_fixed']:.2f}): {fixed:.2f}x"
    )
    whole = result["whole_job_with_mlflow"]
    print(
        f"whole ranking-train run against a local MLflow server: {whole['total']:.2f} s "
        f"(stages {whole['stages']:.2f} s + fingerprint, MLflow logging, registration and "
        f"gate {whole['fingerprint_mlflow_and_gate']:.2f} s)"
    )
    ndcg = result["ndcg@10"]
    print("NDCG@10 on the gate day: " + ", ".join(f"{k} {v:.4f}" for k, v in ndcg.items()))


if __name__ == "__main__":
    main()

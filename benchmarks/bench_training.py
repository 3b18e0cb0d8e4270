"""Benchmark of the training job on 1M synthetic impressions.

Times the job's stages (load, features, fit, evaluate: the functions `ranking-train` runs,
without the MLflow upload) next to the peer: reading the same parquet files with pyarrow plus a
plain `lgb.train` on the same matrix with the same parameters and early stopping. Reports
NDCG@10 of the model, the popularity baseline and the ground-truth oracle on the validation day.
Last, one whole `ranking-train` run against a real MLflow server on loopback shows what
fingerprinting, MLflow logging, registration and the gate add.

    uv run python benchmarks/bench_training.py [--users 10000 --items 2000 --days 20]

Prints a table and writes benchmarks/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pyarrow.parquet as pq
from ranking_features import FEATURE_NAMES
from ranking_training.config import LightGBMSettings
from ranking_training.data import day_start, load_lake
from ranking_training.evaluate import Evaluation, evaluate
from ranking_training.features import RankingMatrix, build_training_matrix
from ranking_training.metrics import ranking_metrics
from ranking_training.split import split_by_time
from ranking_training.train import train_in_process

from recplat.synthetic import SyntheticData, SynthParams, generate, write_lake

RESULTS = Path(__file__).parent / "results" / "training.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="job and peer runs; medians count")
    args = parser.parse_args()
    end = date(2025, 1, 31)
    first = end - timedelta(days=args.days - 1)
    params = SynthParams("bench", args.users, args.items, args.days, seed=3, end_date=str(end))

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
        for _ in range(args.rounds):
            job, (booster, train, valid, evaluation) = _job_round(lake, first, end, settings)
            peer, plain = _peer_round(lake, train, valid, settings)
            rounds.append({"job": job, "peer": peer})
        whole = _whole_job(lake, first, end, Path(scratch))
    job = {k: statistics.median(r["job"][k] for r in rounds) for k in rounds[0]["job"]}
    peer = {k: statistics.median(r["peer"][k] for r in rounds) for k in rounds[0]["peer"]}

    oracle = _oracle_on_last_day(data, day_start(end + timedelta(days=1)))
    result = {
        "impressions": data.impressions.num_rows,
        "feedback_events": data.feedback.num_rows,
        "train_rows": len(train.labels),
        "valid_rows": len(valid.labels),
        "features": list(FEATURE_NAMES),
        "generate_seconds": generate_s,
        "job_seconds": job,
        "peer_seconds": peer,
        "job_over_peer": job["total"] / peer["total"],
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
    _print(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS}")


def _job_round(
    lake: Path, first: date, end: date, settings: LightGBMSettings
) -> tuple[dict[str, float], tuple[Any, RankingMatrix, RankingMatrix, Evaluation]]:
    """The job's stages as `ranking-train` runs them (without the MLflow upload), timed."""
    job: dict[str, float] = {}
    started = time.perf_counter()
    lake_data = load_lake(lake.as_uri(), first, end)
    job["load"] = time.perf_counter() - started
    started = time.perf_counter()
    matrix, _ = build_training_matrix(lake_data)
    windows = split_by_time(matrix, lake_data.window_start, lake_data.window_end, 1)
    train, valid = windows.train, windows.early_stopping
    job["features"] = time.perf_counter() - started
    started = time.perf_counter()
    booster = train_in_process(train, valid, settings)
    job["fit"] = time.perf_counter() - started
    started = time.perf_counter()
    evaluation = evaluate(booster, valid)
    job["evaluate"] = time.perf_counter() - started
    job["total"] = sum(job.values())
    return job, (booster, train, valid, evaluation)


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
    lake: Path, train: RankingMatrix, valid: RankingMatrix, settings: LightGBMSettings
) -> tuple[dict[str, float], Any]:
    """The peer: read the same parquet with pyarrow, then a plain `lgb.train` on the matrix."""
    peer: dict[str, float] = {}
    started = time.perf_counter()
    for folder in ("events/impressions", "events/feedback", "catalog"):
        pq.read_table(lake / folder)
    peer["read_parquet"] = time.perf_counter() - started
    started = time.perf_counter()
    # The same Dataset the job builds (positions for unbiased LambdaMART included).
    train_set = lgb.Dataset(
        train.features, train.labels, group=train.group_sizes, position=train.positions - 1
    )
    valid_set = lgb.Dataset(valid.features, valid.labels, group=valid.group_sizes)
    plain = lgb.train(
        settings.booster_params(),
        train_set,
        settings.num_boost_round,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )
    peer["lgb_train"] = time.perf_counter() - started
    peer["total"] = peer["read_parquet"] + peer["lgb_train"]
    return peer, plain


def _oracle_on_last_day(data: SyntheticData, window_end: float) -> float:
    """NDCG@10 of ranking the validation day by the hidden true relevance."""
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


def _print(result: dict) -> None:
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
    whole = result["whole_job_with_mlflow"]
    print(
        f"whole ranking-train run against a local MLflow server: {whole['total']:.2f} s "
        f"(stages {whole['stages']:.2f} s + fingerprint, MLflow logging, registration and "
        f"gate {whole['fingerprint_mlflow_and_gate']:.2f} s)"
    )
    ndcg = result["ndcg@10"]
    print("NDCG@10 on the validation day: " + ", ".join(f"{k} {v:.4f}" for k, v in ndcg.items()))


if __name__ == "__main__":
    main()

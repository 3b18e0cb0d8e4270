"""Benchmark of the counterfactual estimators (IPS, SNIPS, PBM) against the simulator's known truth.

For each seed, a fresh `recplat.simulation.truth.World`; its champion (a model with logit noise
1.0) logs exploration traffic: each request shows a uniformly random 10-permutation of the
champion's top 20 (propensity 1/20). The targets are the champion itself, a better model (noise
0.5) re-ranking the champion's top 20 (inside the exploration's support), and the same model
ranking every candidate (its top 10 partly outside the support). For each target and log size
(10k, 50k, 200k impressions) the estimates of its online CTR (expected clicks per request in
the top 10) are compared with the exact truth: bias, relative error (mean |est - truth| /
truth), RMSE, and how often the user-clustered 95% bootstrap interval covers the truth. The
paired new-minus-champion interval is reported as the gate would use it: how often its lower
bound is above 0 (the truth: the new model is better).

Two worlds side by side: the default cascade (a click stops the scan half the time, so clicks
at a position depend on the items above it, which all three estimators ignore), and its
position-based control (stop_after_click = 1 - patience), where the estimators are unbiased.
PBM, the examination-corrected estimator the gate decides on, uses every explore impression of
an item; IPS and SNIPS only those at the position the target gives it.

    uv run --locked python benchmarks/bench_ope.py [--seeds 20 --replicates 200]

Prints a table and writes benchmarks/results/ope.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from ranking_training.counterfactual import (
    Estimator,
    bootstrap_interval,
    estimate_policy_value,
    paired_bootstrap_interval,
)

from recplat.simulation.truth import SimulatedExploration, World, WorldParams

RESULTS = Path(__file__).parent / "results" / "ope.json"
IMPRESSIONS = (10_000, 50_000, 200_000)
K, TOP_M = 10, 20
CHAMPION_NOISE, NEW_NOISE = 1.0, 0.5
WORLD_KNOBS = ("attraction_bias", "stop_after_click", "patience", "initial_item_share")
# Everything but the sizes and the seed, which come from the command line.
WORLDS = {
    "cascade": WorldParams(),
    "position-based": WorldParams(stop_after_click=0.1, patience=0.9),
}
TARGETS = ("champion", "new, re-ranks champion top 20", "new, own top 10")
ESTIMATORS: tuple[Estimator, ...] = ("ips", "snips", "pbm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--replicates", type=int, default=200, help="bootstrap replicates")
    args = parser.parse_args()

    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    for world_name, base in WORLDS.items():
        for seed in range(args.seeds):
            sizes = {"users": args.users, "items": args.items, "days": args.days}
            params = dataclasses.replace(base, seed=seed, **sizes)
            runs.extend(_one_world(world_name, World.build(params), seed, args.replicates))
    seconds = time.perf_counter() - started

    result = {
        "config": {
            "seeds": args.seeds,
            "users": args.users,
            "items": args.items,
            "days": args.days,
            "k": K,
            "exploration": f"uniform {K}-permutation of the champion's top {TOP_M}",
            "propensity": 1.0 / TOP_M,
            "champion_noise": CHAMPION_NOISE,
            "new_noise": NEW_NOISE,
            "bootstrap": f"{args.replicates} multinomial replicates over users, percentile, 95%",
            "worlds": {
                name: {k: v for k, v in dataclasses.asdict(params).items() if k in WORLD_KNOBS}
                for name, params in WORLDS.items()
            },
            "impressions": list(IMPRESSIONS),
        },
        "estimates": _summarise(runs),
        "paired_new_minus_champion": _summarise_paired(runs),
        "truth": _truths(runs),
        "seconds": seconds,
    }
    _print(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS}")


def _one_world(name: str, world: World, seed: int, replicates: int) -> list[dict[str, Any]]:
    champion = world.rankings(world.noisy_scores(CHAMPION_NOISE, seed=10_000 + seed), TOP_M)
    new_scores = world.noisy_scores(NEW_NOISE, seed=20_000 + seed)
    rankings = {
        "champion": champion,
        "new, re-ranks champion top 20": world.rerank(new_scores, champion, K),
        "new, own top 10": world.rankings(new_scores, K),
    }
    truth = {target: world.true_ctr(r, K) for target, r in rankings.items()}
    runs = []
    for size, impressions in enumerate(IMPRESSIONS):
        log_seed = 100 * seed + size
        explored = world.exploration_log(champion, impressions // K, K, TOP_M, seed=log_seed)
        positions = {target: explored.target_positions(r) for target, r in rankings.items()}
        for target in TARGETS:
            runs.append(
                _estimate(
                    name,
                    seed,
                    impressions,
                    target,
                    truth[target],
                    explored,
                    positions[target],
                    replicates,
                )
            )
        for estimator in ESTIMATORS:
            interval = paired_bootstrap_interval(
                explored.log,
                positions["new, re-ranks champion top 20"],
                positions["champion"],
                K,
                estimator=estimator,
                replicates=replicates,
                seed=seed,
            )
            runs.append(
                {
                    "world": name,
                    "seed": seed,
                    "impressions": impressions,
                    "target": "paired: new (re-rank) - champion",
                    "estimator": estimator,
                    "truth": truth["new, re-ranks champion top 20"] - truth["champion"],
                    "estimate": interval.estimate,
                    "low": interval.low,
                    "high": interval.high,
                }
            )
    return runs


def _estimate(
    world: str,
    seed: int,
    impressions: int,
    target: str,
    truth: float,
    explored: SimulatedExploration,
    positions: np.ndarray,
    replicates: int,
) -> dict[str, Any]:
    value = estimate_policy_value(explored.log, positions, K)
    row: dict[str, Any] = {
        "world": world,
        "seed": seed,
        "impressions": impressions,
        "target": target,
        "truth": truth,
        "weight_per_request": float(value.weight_per_request.mean()),
    }
    for estimator in ESTIMATORS:
        interval = bootstrap_interval(
            explored.log, positions, K, estimator=estimator, replicates=replicates, seed=seed
        )
        row[estimator] = {"estimate": interval.estimate, "low": interval.low, "high": interval.high}
    return row


def _summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for world in WORLDS:
        for target in TARGETS:
            for impressions in IMPRESSIONS:
                chosen = [
                    r
                    for r in runs
                    if (r["world"], r["target"], r["impressions"]) == (world, target, impressions)
                ]
                truth = np.array([r["truth"] for r in chosen])
                for estimator in ESTIMATORS:
                    estimate = np.array([r[estimator]["estimate"] for r in chosen])
                    error = estimate - truth
                    covered = [
                        r[estimator]["low"] <= r["truth"] <= r[estimator]["high"] for r in chosen
                    ]
                    rows.append(
                        {
                            "world": world,
                            "target": target,
                            "impressions": impressions,
                            "estimator": estimator,
                            "seeds": len(chosen),
                            "mean_truth": float(truth.mean()),
                            "bias": float(error.mean()),
                            "relative_bias": float((error / truth).mean()),
                            "relative_error": float((np.abs(error) / truth).mean()),
                            "rmse": float(np.sqrt((error**2).mean())),
                            "coverage_95": float(np.mean(covered)),
                            "weight_per_request": float(
                                np.mean([r["weight_per_request"] for r in chosen])
                            ),
                        }
                    )
    return rows


def _summarise_paired(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for world in WORLDS:
        for impressions in IMPRESSIONS:
            for estimator in ESTIMATORS:
                chosen = [
                    r
                    for r in runs
                    if r["target"].startswith("paired")
                    and (r["world"], r["impressions"], r["estimator"])
                    == (world, impressions, estimator)
                ]
                truth = np.array([r["truth"] for r in chosen])
                estimate = np.array([r["estimate"] for r in chosen])
                rows.append(
                    {
                        "world": world,
                        "impressions": impressions,
                        "estimator": estimator,
                        "mean_true_difference": float(truth.mean()),
                        "mean_estimated_difference": float(estimate.mean()),
                        "low_above_0": float(np.mean([r["low"] > 0 for r in chosen])),
                        "high_below_0": float(np.mean([r["high"] < 0 for r in chosen])),
                        "covers_truth": float(
                            np.mean([r["low"] <= r["truth"] <= r["high"] for r in chosen])
                        ),
                    }
                )
    return rows


def _truths(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for world in WORLDS:
        out[world] = {}
        for target in TARGETS:
            values = [
                r["truth"]
                for r in runs
                if (r["world"], r["target"], r["impressions"]) == (world, target, IMPRESSIONS[0])
            ]
            out[world][target] = float(np.mean(values))
    return out


def _print(result: dict[str, Any]) -> None:
    config = result["config"]
    print(
        f"\nOPE on the simulator: {config['seeds']} seeds per world, {config['users']} users, "
        f"{config['items']} items, k={config['k']}, exploration: {config['exploration']}"
    )
    for world, truths in result["truth"].items():
        print(
            f"true clicks/request ({world}): "
            + ", ".join(f"{t} {v:.3f}" for t, v in truths.items())
        )
    header = (
        f"{'world':<15}{'target':<31}{'impr.':>8} {'est.':<6}{'bias':>8}{'rel.bias':>10}"
        f"{'rel.err':>9}{'RMSE':>8}{'cover95':>9}{'w/req':>7}"
    )
    print("\n" + header)
    print("-" * len(header))
    for row in result["estimates"]:
        print(
            f"{row['world']:<15}{row['target']:<31}{row['impressions']:>8,} {row['estimator']:<6}"
            f"{row['bias']:>+8.3f}{row['relative_bias']:>+10.1%}{row['relative_error']:>9.1%}"
            f"{row['rmse']:>8.3f}{row['coverage_95']:>9.0%}{row['weight_per_request']:>7.2f}"
        )
    header = (
        f"{'world':<15}{'impr.':>8} {'est.':<6}{'true diff':>10}{'est. diff':>10}"
        f"{'low>0':>7}{'high<0':>7}{'covers':>8}"
    )
    print("\npaired new (re-rank) - champion, 95% interval\n" + header)
    print("-" * len(header))
    for row in result["paired_new_minus_champion"]:
        print(
            f"{row['world']:<15}{row['impressions']:>8,} {row['estimator']:<6}"
            f"{row['mean_true_difference']:>+10.3f}{row['mean_estimated_difference']:>+10.3f}"
            f"{row['low_above_0']:>7.0%}{row['high_below_0']:>7.0%}{row['covers_truth']:>8.0%}"
        )
    print(f"\n{result['seconds']:.0f} s")


if __name__ == "__main__":
    main()

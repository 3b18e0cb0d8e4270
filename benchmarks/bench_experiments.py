"""Benchmark of the online experiment's sequential test: A/A false promotions and traffic to detect.

Each simulated experiment runs the evaluator's real decision path (`ranking_features.assignment`
splits users by the salted bucket of a fresh experiment id, `ranking_features.statistics`
computes the user-clustered CTRs, `ranking_training.experiments.decide` applies the mSPRT and
the contract's table) at every evaluation, i.e. it peeks every time, as the CronJob does.

Users have realistic between-user variance: a population of `--users` users, each with a CTR
per request p_u ~ Beta(mean * kappa, (1 - mean) * kappa) (mean 0.3, kappa 4: a between-user
standard deviation of 0.2) and an activity rate ~ log-normal (sigma 1), scaled so that
`--requests-per-look` requests arrive between two evaluations. The challenger's users click
with p_u * (1 + lift). The platform's defaults: challenger_traffic 0.1 (serving's default),
alpha 0.05, the default guardrails (a verdict needs 100 users per arm).

Reported, side by side for several mixing standard deviations tau (as a share of the
champion's CTR; the platform's default is marked):
- the A/A false-promotion rate (any promote within `--looks` evaluations) and false stops;
- per lift (5 % and 10 %), the share of experiments promoted within the horizon and the median
  users and requests (both arms, and the challenger arm's) at the first promote; experiments
  never promoted count as infinite, so the median is that of all runs.

    uv run --locked python benchmarks/bench_experiments.py [--aa-runs 400 --power-runs 200]

Prints a table and writes benchmarks/results/experiments.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from ranking_features.assignment import CHALLENGER_ARM, CHAMPION_ARM
from ranking_features.statistics import clustered_ratio_from_sums
from ranking_training.experiment_arms import ArmStats
from ranking_training.experiment_spec import ExperimentSpec, Guardrails
from ranking_training.experiments import decide
from ranking_training.sequential_test import DEFAULT_MIXING_RELATIVE_SD

RESULTS = Path(__file__).parent / "results" / "experiments.json"
START = datetime(2026, 1, 1, tzinfo=UTC)
LIFTS = (0.05, 0.10)
MIXING_SDS = (0.05, DEFAULT_MIXING_RELATIVE_SD, 0.3)


@dataclass(frozen=True)
class Traffic:
    users: int
    requests_per_look: int
    mean_ctr: float
    kappa: float
    activity_sigma: float
    challenger_traffic: float
    looks: int


@dataclass
class Run:
    """One simulated experiment: the look of its first verdict and the traffic by then."""

    decision: str  # promote, stop or continue (no verdict within the horizon)
    look: int
    users: int
    requests: int
    challenger_users: int
    challenger_requests: int


class _ArmSums:
    """Running per-user sums of one arm (x = requests, y = requests with a click)."""

    def __init__(self) -> None:
        self.users = 0
        self.sums = np.zeros(5)  # x, y, x^2, y^2, x*y

    def update(
        self, old_x: np.ndarray, old_y: np.ndarray, new_x: np.ndarray, new_y: np.ndarray
    ) -> None:
        self.users += int((old_x == 0).sum())
        for sign, x, y in ((-1.0, old_x, old_y), (1.0, new_x, new_y)):
            x, y = x.astype(np.float64), y.astype(np.float64)
            self.sums += sign * np.array([x.sum(), y.sum(), x @ x, y @ y, x @ y])

    def stats(self, arm: str, version: str) -> ArmStats:
        sum_x, sum_y, sum_xx, sum_yy, sum_xy = (float(v) for v in self.sums)
        ctr = clustered_ratio_from_sums(self.users, sum_x, sum_y, sum_xx, sum_yy, sum_xy)
        return ArmStats(
            arm=arm,
            model_version=version,
            users=self.users,
            requests=round(sum_x),
            clicked_requests=round(sum_y),
            converted_requests=0,
            fallback_requests=0,
            other_version_requests=0,
            ctr=ctr,
            conversion_rate=clustered_ratio_from_sums(self.users, sum_x, 0.0, sum_xx, 0.0, 0.0),
        )


@dataclass(frozen=True)
class Population:
    """A brand's users: each one's CTR per request and the cumulative share of requests (the
    same brand runs every simulated experiment; each gets a fresh split and fresh clicks)."""

    ctr: np.ndarray
    activity_cdf: np.ndarray

    @classmethod
    def draw(cls, traffic: Traffic, rng: np.random.Generator) -> Population:
        shape = (traffic.mean_ctr * traffic.kappa, (1 - traffic.mean_ctr) * traffic.kappa)
        cdf = np.cumsum(rng.lognormal(0.0, traffic.activity_sigma, traffic.users))
        return cls(ctr=rng.beta(*shape, traffic.users), activity_cdf=cdf / cdf[-1])


def simulate(
    traffic: Traffic,
    users: Population,
    lift: float,
    relative_sd: float,
    rng: np.random.Generator,
) -> Run:
    """Run one experiment to its first verdict (or the horizon), deciding at every look.

    Only the users who make requests between two looks are touched, so a look costs
    O(requests_per_look) whatever the population. Arms are drawn uniformly at random, which is
    what the salted bucket is (its independence across ids is a unit test), because hashing a
    million user ids per run would dominate the benchmark's time."""
    population = traffic.users
    activity = users.activity_cdf
    challenger = rng.random(population) < traffic.challenger_traffic
    click_p = np.where(challenger, np.minimum(users.ctr * (1 + lift), 1.0), users.ctr)
    spec = ExperimentSpec(
        experiment_id=f"exp-bench-{rng.integers(2**63)}",
        started_at=START,
        champion_version="1",
        challenger_version="2",
        challenger_traffic=traffic.challenger_traffic,
        max_experiment_days=10_000,  # the horizon is --looks, not expiry
        mixing_relative_sd=relative_sd,
    )
    guardrails = Guardrails()
    requests = np.zeros(population, dtype=np.int64)
    clicks = np.zeros(population, dtype=np.int64)
    arms = {CHAMPION_ARM: _ArmSums(), CHALLENGER_ARM: _ArmSums()}
    for look in range(1, traffic.looks + 1):
        _serve_look(traffic, activity, click_p, challenger, (requests, clicks), arms, rng)
        stats = {
            CHAMPION_ARM: arms[CHAMPION_ARM].stats(CHAMPION_ARM, "1"),
            CHALLENGER_ARM: arms[CHALLENGER_ARM].stats(CHALLENGER_ARM, "2"),
        }
        decision = decide(stats, spec, START + timedelta(hours=look), guardrails)
        if decision.kind != "continue" or look == traffic.looks:
            return Run(
                decision=decision.kind,
                look=look,
                users=stats[CHAMPION_ARM].users + stats[CHALLENGER_ARM].users,
                requests=int(requests.sum()),
                challenger_users=stats[CHALLENGER_ARM].users,
                challenger_requests=stats[CHALLENGER_ARM].requests,
            )
    raise AssertionError("unreachable: the last look returns")


def _serve_look(
    traffic: Traffic,
    activity: np.ndarray,
    click_p: np.ndarray,
    challenger: np.ndarray,
    totals: tuple[np.ndarray, np.ndarray],
    arms: dict[str, _ArmSums],
    rng: np.random.Generator,
) -> None:
    """One look's requests: which users come (by `activity`) and click (by `click_p`); their
    request and click `totals` and their arm's sums are updated in place."""
    requests, clicks = totals
    shown = np.minimum(
        # Sorted draws: searchsorted walks the table in order (several times faster).
        np.searchsorted(activity, np.sort(rng.random(traffic.requests_per_look))),
        traffic.users - 1,
    )
    clicked = rng.random(len(shown)) < click_p[shown]
    touched, new_requests = np.unique(shown, return_counts=True)
    new_clicks = np.bincount(np.searchsorted(touched, shown[clicked]), minlength=len(touched))
    old_x, old_y = requests[touched], clicks[touched]
    requests[touched] += new_requests
    clicks[touched] += new_clicks
    for arm, members in (
        (CHALLENGER_ARM, challenger[touched]),
        (CHAMPION_ARM, ~challenger[touched]),
    ):
        arms[arm].update(
            old_x[members], old_y[members], requests[touched][members], clicks[touched][members]
        )


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.inf


def summarise(runs: list[Run]) -> dict[str, float]:
    promoted = [r for r in runs if r.decision == "promote"]

    def at_promotion(field: str) -> float:
        # Runs never promoted count as infinite: the median of all runs.
        values = [float(getattr(r, field)) for r in promoted]
        values += [math.inf] * (len(runs) - len(promoted))
        return _median(values)

    return {
        "runs": len(runs),
        "promote_rate": len(promoted) / len(runs),
        "stop_rate": sum(r.decision == "stop" for r in runs) / len(runs),
        "median_users": at_promotion("users"),
        "median_requests": at_promotion("requests"),
        "median_challenger_users": at_promotion("challenger_users"),
        "median_challenger_requests": at_promotion("challenger_requests"),
        "median_looks": at_promotion("look"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aa-runs", type=int, default=400)
    parser.add_argument(
        "--alternative-share",
        type=float,
        default=0.25,
        help="Runs for the non-default mixing sds, as a share of --aa-runs/--power-runs.",
    )
    parser.add_argument("--power-runs", type=int, default=200)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--requests-per-look", type=int, default=5_000)
    parser.add_argument("--looks", type=int, default=120)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    traffic = Traffic(
        users=args.users,
        requests_per_look=args.requests_per_look,
        mean_ctr=0.3,
        kappa=4.0,
        activity_sigma=1.0,
        challenger_traffic=0.1,
        looks=args.looks,
    )
    began = time.perf_counter()
    users = Population.draw(traffic, np.random.default_rng(args.seed))
    rows: list[dict[str, Any]] = []
    for relative_sd in MIXING_SDS:
        # The default tau gets the full run counts; the alternatives a share, for the contrast.
        share = 1.0 if relative_sd == DEFAULT_MIXING_RELATIVE_SD else args.alternative_share
        plan = ((0.0, args.aa_runs), *((lift, args.power_runs) for lift in LIFTS))
        for lift, runs_wanted in plan:
            rng = np.random.default_rng([args.seed, int(lift * 1000), int(relative_sd * 1000)])
            count = max(1, round(runs_wanted * share))
            runs = [simulate(traffic, users, lift, relative_sd, rng) for _ in range(count)]
            rows.append({"mixing_relative_sd": relative_sd, "lift": lift, **summarise(runs)})
            _print_row(rows[-1])
    seconds = time.perf_counter() - began
    document = {
        "traffic": asdict(traffic),
        "alpha": 0.05,
        "guardrails": asdict(Guardrails()),
        "default_mixing_relative_sd": DEFAULT_MIXING_RELATIVE_SD,
        "seed": args.seed,
        "rows": rows,
        "seconds": round(seconds, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\n{seconds:.0f} s; wrote {RESULTS}")


HEADER = (
    f"{'tau/CTR':>8} {'lift':>5} {'runs':>5} {'promote':>8} {'stop':>6} {'users':>8} "
    f"{'requests':>9} {'chal.users':>10} {'chal.req':>9} {'looks':>6}"
)


def _print_row(row: dict[str, Any]) -> None:
    if row["mixing_relative_sd"] == MIXING_SDS[0] and row["lift"] == 0.0:
        print(HEADER)
    default = "*" if row["mixing_relative_sd"] == DEFAULT_MIXING_RELATIVE_SD else " "
    kind = "A/A" if row["lift"] == 0.0 else f"{row['lift']:.0%}"
    print(
        f"{row['mixing_relative_sd']:>7.2f}{default} {kind:>5} {row['runs']:>5} "
        f"{row['promote_rate']:>8.3f} {row['stop_rate']:>6.3f} {row['median_users']:>8.0f} "
        f"{row['median_requests']:>9.0f} {row['median_challenger_users']:>10.0f} "
        f"{row['median_challenger_requests']:>9.0f} {row['median_looks']:>6.0f}",
        flush=True,
    )


if __name__ == "__main__":
    main()

"""Benchmark: the offline plan of a stack with 1, 10 and 50 generated brands.

Each point is a full ``recplat.plan.plan_stack`` run (fresh child process, the real
program under mocks, environment included), so the time is what ``recplat plan``
costs a user. The per-brand cost is the slope between points; growth is linear when
the slope between 10 and 50 brands matches the one between 1 and 10.

    uv run python benchmarks/bench_plan.py [--stack dev] [--repeat 1]

Prints a table and writes ``benchmarks/results/plan.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from recplat.plan import plan_stack

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "plan.json"
BRAND_COUNTS = (1, 10, 50)


def generated_brand(index: int, stack: str) -> dict[str, object]:
    """A valid brand file; every fifth brand trains on Dask so both shapes are planned."""
    return {
        "name": f"bench-brand-{index:03d}",
        "display_name": f"Benchmark brand {index}",
        "owner": f"brand-{index}@recplat.dev",
        "cost_center": f"CC-BENCH-{index:03d}",
        "environments": [stack],
        "serving": {"replicas": {"min": 2, "max": 4}, "cpu": "250m", "memory": "512Mi"},
        "training": {
            "schedule": f"{index % 60} {index % 24} * * *",
            "workers": 2 * (index % 5 == 0),
        },
    }


def write_brands(directory: Path, count: int, stack: str) -> None:
    directory.mkdir(parents=True)
    for index in range(count):
        brand = generated_brand(index, stack)
        (directory / f"{brand['name']}.yaml").write_text(yaml.safe_dump(brand))


def measure(stack: str, count: int, repeat: int, scratch: Path) -> dict[str, float | int]:
    directory = scratch / f"brands-{count}"
    write_brands(directory, count, stack)
    seconds = []
    resources = brand_resources = 0
    for _ in range(repeat):
        started = time.perf_counter()
        plan = plan_stack(stack, brands_dir=directory, repo_root=REPO)
        seconds.append(time.perf_counter() - started)
        resources = len(plan.resources)
        brand_resources = sum(1 for r in plan.resources if plan.brand_of(r["urn"]) is not None)
    return {
        "brands": count,
        "seconds": round(statistics.median(seconds), 2),
        "resources": resources,
        "brand_resources": brand_resources,
        "resources_per_brand": round(brand_resources / count, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--repeat", type=int, default=1, help="runs per point (median kept)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-plan-") as scratch:
        # One unmeasured run warms the bytecode cache, as any second `recplat plan` would be.
        measure(args.stack, 1, 1, Path(scratch) / "warm-up")
        rows = [measure(args.stack, count, args.repeat, Path(scratch)) for count in BRAND_COUNTS]

    def slope(key: str, low: dict[str, float | int], high: dict[str, float | int]) -> float:
        return (float(high[key]) - float(low[key])) / (int(high["brands"]) - int(low["brands"]))

    first, middle, last = rows
    growth = {
        "seconds_per_brand_1_to_10": round(slope("seconds", first, middle), 3),
        "seconds_per_brand_10_to_50": round(slope("seconds", middle, last), 3),
        "resources_per_brand_1_to_10": slope("resources", first, middle),
        "resources_per_brand_10_to_50": slope("resources", middle, last),
    }
    print(f"recplat plan --stack {args.stack}: generated brands (median of {args.repeat})")
    print(f"{'brands':>7} {'seconds':>9} {'resources':>10} {'in brands':>10} {'per brand':>10}")
    for row in rows:
        print(
            f"{row['brands']:>7} {row['seconds']:>9.2f} {row['resources']:>10} "
            f"{row['brand_resources']:>10} {row['resources_per_brand']:>10}"
        )
    print(
        "marginal cost per brand: "
        f"{growth['seconds_per_brand_1_to_10']:.3f} s (1->10), "
        f"{growth['seconds_per_brand_10_to_50']:.3f} s (10->50); "
        f"{growth['resources_per_brand_1_to_10']:.1f} / "
        f"{growth['resources_per_brand_10_to_50']:.1f} resources"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "plan",
                "stack": args.stack,
                "repeat": args.repeat,
                "machine": {"python": platform.python_version(), "cpus": _cpus()},
                "rows": rows,
                "growth": growth,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(REPO)}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()

"""Benchmark: the ranking service vs `mlflow models serve`, and the in-process scoring floor.

One run, side by side, same model (LightGBM lambdarank, 31 leaves, 200 trees) registered in a
real MLflow server on loopback:
- `ranking-serve` (one uvicorn worker): POST /rank with 100 candidates and k = 20 (features
  computed in the service from the snapshot, impressions logged), at the brand defaults
  (exploration 0.05) and at the most exploration a brand may set (0.2);
- with `--before-dir`, the same service from an older checkout (e.g. before exploration:
  `git worktree add ../bench-before 82d72e3`), run from that checkout's `reference-service`
  in this venv, with the same requests; every phase runs on each service in turn, so a change
  of machine load over the run hits all of them alike;
- `mlflow models serve --env-manager local` (one worker): POST /invocations with the
  equivalent 100 precomputed feature rows (it cannot compute features itself);
- the floor: `build_features` + `Booster.predict` for the same 100 candidates, in process
  (and `build_features` + the compiled trees the service scores with).

Load comes from `wrk` (C, one thread, 8 keep-alive connections), a separate process: at fixed
rates (50, 200, 500 rps; each connection waits an exponential gap before each request, so
arrivals are Poisson, through wrk's `delay()` hook) and at the max (no pacing). A Python
client would cost more per request than the service does and inflate every latency. Every
phase has a fixed duration. Needs `wrk` (Debian package `wrk`, installed by
scripts/bootstrap.sh). Prints a table, writes benchmarks/results/service.json.

    uv run python benchmarks/bench_service.py [--seconds 10] [--before-dir ../bench-before]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ranking_features.metric_names import RANK_EXPLORED, RANK_LATENCY
from ranking_features.mlflow_names import CHAMPION, registered_model_name

REPO = Path(__file__).resolve().parent.parent

RATES = (50, 200, 500)
CANDIDATES = 100
K = 20  # the brand default `serving.default_k`, sent explicitly: older services returned all
EXPLORATION_MAX = 0.2
CONNECTIONS = 8
MODEL = registered_model_name("bench")
RESULTS = REPO / "benchmarks" / "results" / "service.json"


# ------------------------------------------------------------------------- load with wrk
def wrk_phase(
    url: str,
    bodies: list[str],
    headers: dict[str, str],
    seconds: float,
    rate: float | None,
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    """One wrk run: paced to `rate` requests/s over all connections, or as fast as it goes."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("bench_service: wrk not found; install it (apt-get install wrk)")
    lines = [
        'wrk.method = "POST"',
        "local bodies = {" + ", ".join(json.dumps(b) for b in bodies) + "}",
        "local n = 0",
        "function request()",
        "  n = n + 1",
        "  return wrk.format(nil, nil, nil, bodies[n % #bodies + 1])",
        "end",
    ]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    if rate is not None:
        # Exponential gaps (Poisson arrivals) with the rate's mean per connection: a fixed
        # gap keeps the connections in step, so "50 rps" would arrive as bursts of 8.
        mean_ms = connections * 1000.0 / rate
        lines += [
            "math.randomseed(7)",
            "function delay()",
            f"  return -{mean_ms} * math.log(1 - math.random())",
            "end",
        ]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(int(seconds), 1)}s", "--latency"]
    command += ["--timeout", "5s", "-s", script.name, url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    Path(script.name).unlink()
    result: dict[str, Any] = {"errors": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(parts[1])
        elif line.strip().startswith("Non-2xx"):
            result["errors"] += int(parts[-1])
        elif line.strip().startswith("Socket errors:"):
            result["errors"] += sum(int(p.rstrip(",")) for p in parts[3::2])
        elif len(parts) == 2 and parts[0] in ("50%", "75%", "90%", "99%"):
            result[f"p{parts[0][:-1]}_ms"] = _wrk_ms(parts[1])
        elif "requests in" in line:
            result["requests"] = int(parts[0])
    if "rps" not in result:
        raise RuntimeError(f"wrk printed no result for {url}:\n{out}")
    return result


# One connection, back to back: the service's own per-request latency, warm, as the
# in-process floor is measured (paced phases add the machine's idle wake-ups on both ends).
PHASES: list[tuple[str, float | None, int]] = [
    ("sequential", None, 1),
    *((str(rate), float(rate), CONNECTIONS) for rate in RATES),
    ("max", None, CONNECTIONS),
]


def run_load(url: str, bodies: list[str], headers: dict[str, str], seconds: float) -> Any:
    return run_side_by_side({"one": (url, bodies, headers)}, seconds)["one"]


def run_side_by_side(
    targets: dict[str, tuple[str, list[str], dict[str, str]]], seconds: float
) -> dict[str, dict[str, Any]]:
    """Every phase on every target in turn (not target after target), so that a change in the
    machine's load during the run falls on all targets alike."""
    results: dict[str, dict[str, Any]] = {name: {} for name in targets}
    for key, rate, connections in PHASES:
        for name, (url, bodies, headers) in targets.items():
            results[name][key] = wrk_phase(url, bodies, headers, seconds, rate, connections)
    return results


def _wrk_ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * factor, 3)
    return float("nan")


# ------------------------------------------------------------------------------ the setup
def bench_model(seed: int = 0) -> tuple[Any, Any]:
    """A brand-sized snapshot (5,000 items, 2,000 users) and a 200-tree lambdarank model."""
    import lightgbm as lgb
    from ranking_features import FEATURE_NAMES, FeatureSnapshot, build_feature_matrix

    rng = np.random.default_rng(seed)
    as_of, day = 1_767_225_600.0, 86_400.0
    items = [f"i-{n}" for n in range(5_000)]
    snapshot = FeatureSnapshot.from_events(
        as_of=as_of,
        window_start=as_of - 14 * day,
        catalog_item_ids=items,
        catalog_categories=[f"c{n % 12}" for n in range(5_000)],
        catalog_published_at=as_of - rng.uniform(0, 60, 5_000) * day,
        impression_item_ids=list(rng.choice(items, 200_000)),
        impression_ts=as_of - rng.uniform(0, 13, 200_000) * day,
        click_user_ids=[f"u-{n}" for n in rng.integers(0, 2_000, 20_000)],
        click_item_ids=list(rng.choice(items, 20_000)),
        click_ts=as_of - rng.uniform(0, 13, 20_000) * day,
    )
    groups, size = 2_000, 20
    row_items = list(rng.choice(items, groups * size))
    x = build_feature_matrix(
        snapshot,
        user_ids=[f"u-{n}" for n in rng.integers(0, 2_000, groups)],
        request_times=np.full(groups, as_of),
        row_request=np.repeat(np.arange(groups), size),
        row_items=row_items,
        recent_items=[[] for _ in range(groups)],
    )
    relevance = x[:, 2] * 5 + x[:, 4] - x[:, 0] * 0.01 + rng.normal(0, 0.2, len(x))
    labels = np.clip((relevance - relevance.mean()) / relevance.std() + 1, 0, 3).astype(int)
    data = lgb.Dataset(x, labels, group=[size] * groups, feature_name=list(FEATURE_NAMES))
    params = {"objective": "lambdarank", "num_leaves": 31, "verbose": -1, "seed": seed}
    return snapshot, lgb.train(params, data, num_boost_round=200)


def scoring_floor(
    snapshot: Any, predict: Callable[[np.ndarray], Any], requests: list[tuple[str, list[str]]]
) -> dict:
    from ranking_features import build_features

    timings = []
    for i in range(2_000):
        user, candidates = requests[i % len(requests)]
        started = time.perf_counter()
        predict(build_features(snapshot, user, candidates))
        timings.append(time.perf_counter() - started)
    ms = np.array(timings[200:]) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def wait_http(url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument(
        "--before-dir",
        type=Path,
        help="a checkout of an older commit whose ranking service runs alongside as 'before'",
    )
    args = parser.parse_args()
    before_dir: Path | None = args.before_dir.resolve() if args.before_dir else None
    if before_dir is not None and not (before_dir / "reference-service").is_dir():
        raise SystemExit(f"bench_service: --before-dir {before_dir}: no reference-service in it")

    import httpx
    from ranking_features import build_features

    from recplat.testing.rankers import register_ranker
    from recplat.testing.servers import free_port, start_mlflow_server
    from recplat.testing.service_process import RankingService

    workdir = Path(tempfile.mkdtemp(prefix="bench-service-", dir=REPO / ".scratch"))
    print(f"workdir {workdir}: training the model ...", flush=True)
    snapshot, booster = bench_model()
    rng = np.random.default_rng(1)
    requests = [
        (f"u-{rng.integers(0, 2_500)}", list(rng.choice(snapshot.item_ids, CANDIDATES, False)))
        for _ in range(200)
    ]
    from ranking_service.compiled_trees import compile_trees

    floor = scoring_floor(snapshot, lambda x: booster.predict(x, num_threads=1), requests)
    compiled_floor = scoring_floor(snapshot, compile_trees(booster).predict, requests)
    print(f"in-process floor: {floor}; with compiled trees: {compiled_floor}", flush=True)

    registry_process, registry = start_mlflow_server(workdir / "mlflow")
    processes: list[subprocess.Popen[bytes]] = [registry_process]
    services: dict[str, RankingService] = {}
    try:
        version = register_ranker(registry.tracking_uri, MODEL, booster, snapshot, (CHAMPION,))

        def start_service(name: str, env: dict[str, str], **kwargs: Any) -> None:
            services[name] = RankingService(
                workdir / name,
                brand="bench",
                tracking_uri=registry.tracking_uri,
                lake_uri=f"file://{workdir / name / 'lake'}",
                env={"RECPLAT_RELOAD_INTERVAL_S": "30", "RECPLAT_SHIP_INTERVAL_S": "10", **env},
                **kwargs,
            ).start()

        if before_dir is not None:
            # Its own code first on the path: the venv's .pth entries come after PYTHONPATH.
            start_service(
                "before",
                {"PYTHONPATH": str(before_dir / "reference-service")},
                command=[sys.executable, "-m", "ranking_service"],
            )
            if "exploration" in httpx.get(f"{services['before'].url}/model").json():
                raise SystemExit(f"bench_service: {before_dir} already serves with exploration")
        start_service("after", {"RECPLAT_EXPLORATION": "0.05"})
        start_service("after_exploration_max", {"RECPLAT_EXPLORATION": str(EXPLORATION_MAX)})

        mlflow_port = free_port()
        with (workdir / "mlflow-serve.log").open("wb") as log:
            serve = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "models",
                    "serve",
                    "-m",
                    f"models:/{MODEL}/{version}",
                    "--env-manager",
                    "local",
                    "-w",
                    "1",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(mlflow_port),
                ],
                env={**os.environ, "MLFLOW_TRACKING_URI": registry.tracking_uri},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(serve)
        wait_http(f"http://127.0.0.1:{mlflow_port}/ping", 180)

        rank_bodies = [json.dumps({"user_id": u, "candidates": c, "k": K}) for u, c in requests]
        now = time.time()
        invocation_bodies = [
            json.dumps(
                {
                    "dataframe_split": {
                        "columns": list(snapshot_feature_names()),
                        "data": build_features(snapshot, u, c, now=now).astype(float).tolist(),
                    }
                }
            )
            for u, c in requests[:50]
        ]
        print(f"loading ranking-serve: {', '.join(services)}, phase by phase ...", flush=True)
        served = run_side_by_side(
            {
                name: (
                    f"{service.url}/rank",
                    rank_bodies,
                    {**service.auth, "Content-Type": "application/json"},
                )
                for name, service in services.items()
            },
            args.seconds,
        )
        print("loading mlflow models serve ...", flush=True)
        json_header = {"Content-Type": "application/json"}
        peer = run_load(
            f"http://127.0.0.1:{mlflow_port}/invocations",
            invocation_bodies,
            json_header,
            args.seconds,
        )
        for name, service in services.items():
            handled = service.metric(RANK_LATENCY.count)
            handler_s = service.metric(RANK_LATENCY.sum)
            # Time inside the /rank handler (features, scoring, logging), apart from HTTP,
            # request validation and the load generator.
            served[name]["handler_mean_ms"] = round(handler_s / max(handled, 1) * 1000, 3)
            explored = service.metric(RANK_EXPLORED.total)
            served[name]["explored_share"] = round(explored / max(handled, 1), 4)
    finally:
        for service in services.values():
            service.stop()
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)

    before_ref = None
    if before_dir is not None:
        before_ref = subprocess.run(
            ["git", "-C", str(before_dir), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip() or str(before_dir)
    report(floor, compiled_floor, served, peer, before_ref)


def snapshot_feature_names() -> tuple[str, ...]:
    from ranking_features import FEATURE_NAMES

    return FEATURE_NAMES


def report(
    floor: dict, compiled_floor: dict, served: dict, peer: dict, before_ref: str | None
) -> None:
    ours = served["after"]
    print(
        f"\n{'load':>10} | {'ranking-serve p50/p90/p99 ms':>30} {'rps':>8} {'err':>4} | "
        f"{'mlflow serve p50/p90/p99 ms':>30} {'rps':>8} {'err':>4}"
    )
    labels = {"sequential": "1c serial", "max": f"max ({CONNECTIONS}c)"}
    keys = [key for key, _, _ in PHASES]
    for key in keys:
        a, b = ours[key], peer[key]
        label = labels.get(key, f"{key} rps")
        print(
            f"{label:>10} | {a['p50_ms']:>10} {a['p90_ms']:>9} {a['p99_ms']:>9} "
            f"{a['rps']:>8} {a['errors']:>4} | "
            f"{b['p50_ms']:>10} {b['p90_ms']:>9} {b['p99_ms']:>9} {b['rps']:>8} {b['errors']:>4}"
        )
    ratio = ours["max"]["rps"] / max(peer["max"]["rps"], 1e-9)
    floor_target = 2 * floor["p50_ms"] + 1
    compiled_target = 2 * compiled_floor["p50_ms"] + 1
    print(
        f"\nin-process floor (features + LightGBM predict, 100 candidates): p50 "
        f"{floor['p50_ms']} ms, p99 {floor['p99_ms']} ms; features + compiled trees (as the "
        f"service scores): p50 {compiled_floor['p50_ms']} ms, p99 {compiled_floor['p99_ms']} ms"
    )
    print(
        f"max throughput ratio ranking-serve / mlflow serve: {ratio:.2f}x (target >= 5x); "
        f"p99 at max {ours['max']['p99_ms']} vs {peer['max']['p99_ms']} ms"
    )
    print(
        f"service p50, one connection back to back: {ours['sequential']['p50_ms']} ms "
        f"(at 50 rps paced: {ours['50']['p50_ms']} ms) vs 2 x floor + 1 ms = "
        f"{floor_target:.2f} ms ({compiled_target:.2f} ms from the compiled-trees floor); "
        f"mean time in the /rank handler, its batch included: {ours['handler_mean_ms']} ms"
    )
    before_after = before_after_summary(served, before_ref) if "before" in served else None
    result = {
        "candidates": CANDIDATES,
        "k": K,
        "model": "lambdarank, 31 leaves, 200 trees",
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "in_process_floor": floor,
        "in_process_floor_compiled_trees": compiled_floor,
        # At the brand defaults: exploration 0.05.
        "ranking_serve": ours,
        f"ranking_serve_exploration_{EXPLORATION_MAX}": served["after_exploration_max"],
        "mlflow_models_serve": peer,
        "load_generator": f"wrk -t1 -c{CONNECTIONS}",
        "throughput_ratio": round(ratio, 2),
        "p50_target_ms": round(floor_target, 3),
        "p50_target_ms_from_compiled_floor": round(compiled_target, 3),
    }
    if before_after is not None:
        result["ranking_serve_before"] = served["before"]
        result["before_after"] = before_after
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")


def before_after_summary(served: dict, before_ref: str | None) -> dict[str, Any]:
    """The before/after table (issue 14: exploration and the richer impression records may
    cost at most 10 % of max throughput and must not raise p99 at 200 rps), printed."""
    names = {
        "before": f"before ({before_ref})",
        "after": "after, exploration 0.05",
        "after_exploration_max": f"after, exploration {EXPLORATION_MAX}",
    }
    print(
        f"\nbefore/after, same requests (100 candidates, k {K}), phases interleaved:\n"
        f"{'service':>26} | {'p99 @200 rps':>12} {'p50 @200':>9} | {'max rps':>8} "
        f"{'p99 @max':>9} | {'1c p50':>7} | {'handler ms':>10} | {'explored':>8}"
    )
    for name, label in names.items():
        r = served[name]
        print(
            f"{label:>26} | {r['200']['p99_ms']:>12} {r['200']['p50_ms']:>9} | "
            f"{r['max']['rps']:>8} {r['max']['p99_ms']:>9} | {r['sequential']['p50_ms']:>7} | "
            f"{r['handler_mean_ms']:>10} | {r.get('explored_share', 0.0):>8}"
        )
    before = served["before"]
    summary: dict[str, Any] = {"before": before_ref, "k": K, "services": {}}
    for name in ("after", "after_exploration_max"):
        after = served[name]
        cost = 1 - after["max"]["rps"] / before["max"]["rps"]
        p99_change = after["200"]["p99_ms"] - before["200"]["p99_ms"]
        summary["services"][name] = {
            "max_rps_before": before["max"]["rps"],
            "max_rps_after": after["max"]["rps"],
            "max_throughput_cost": round(cost, 4),
            "p99_ms_at_200_before": before["200"]["p99_ms"],
            "p99_ms_at_200_after": after["200"]["p99_ms"],
            "p99_ms_at_200_change": round(p99_change, 3),
            "within_10_percent": cost <= 0.10,
        }
        print(
            f"{names[name]} vs before: max throughput {-cost:+.1%} (limit -10 %), "
            f"p99 at 200 rps {p99_change:+.2f} ms"
        )
    return summary


if __name__ == "__main__":
    main()

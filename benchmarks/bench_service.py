"""Benchmark: the ranking service vs `mlflow models serve`, and the in-process scoring floor.

One run, side by side, same model (LightGBM lambdarank, 31 leaves, 200 trees) registered in a
real MLflow server on loopback:
- `ranking-serve` (one uvicorn worker): POST /rank with 100 candidates (features computed
  in the service from the snapshot, impressions logged);
- `mlflow models serve --env-manager local` (one worker): POST /invocations with the
  equivalent 100 precomputed feature rows (it cannot compute features itself);
- the floor: `build_features` + `Booster.predict` for the same 100 candidates, in process.

Load comes from a separate process (asyncio + httpx, open loop): at fixed rates (50, 200,
500 rps) latency is measured from each request's scheduled send time, so a server that falls
behind is charged for the queueing it causes. Max throughput is closed loop with 8 connections.
Every phase has a fixed duration and a deadline. Prints a table, writes
benchmarks/results/service.json.

    uv run python benchmarks/bench_service.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RATES = (50, 200, 500)
CANDIDATES = 100
MAX_IN_FLIGHT = 256
CLOSED_LOOP_CONNECTIONS = 8
RESULTS = REPO / "benchmarks" / "results" / "service.json"


# ---------------------------------------------------------------- load generator (subprocess)
async def _open_loop(
    url: str, bodies: list[bytes], headers: dict[str, str], rate: float, seconds: float
) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    latencies: list[float] = []
    errors = dropped = 0
    in_flight = 0
    async with httpx.AsyncClient(limits=limits, timeout=10.0, headers=headers) as client:

        async def one(body: bytes, scheduled: float) -> None:
            nonlocal errors, in_flight
            try:
                response = await client.post(url, content=body)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - scheduled)
                else:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            finally:
                in_flight -= 1

        tasks = []
        start = time.perf_counter() + 0.05
        total = int(rate * seconds)
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight >= MAX_IN_FLIGHT:
                dropped += 1
                continue
            in_flight += 1
            tasks.append(asyncio.create_task(one(bodies[i % len(bodies)], scheduled)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
        elapsed = time.perf_counter() - start
    return _summary(latencies, errors, dropped, elapsed, total)


async def _closed_loop(
    url: str, bodies: list[bytes], headers: dict[str, str], seconds: float
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=10.0, headers=headers) as client:

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    response = await client.post(url, content=bodies[i % len(bodies)])
                    if response.status_code == 200:
                        latencies.append(time.perf_counter() - sent)
                    else:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                i += CLOSED_LOOP_CONNECTIONS

        start = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(CLOSED_LOOP_CONNECTIONS)))
        elapsed = time.perf_counter() - start
    return _summary(latencies, errors, 0, elapsed, len(latencies) + errors)


def _summary(
    latencies: list[float], errors: int, dropped: int, elapsed: float, sent: int
) -> dict[str, Any]:
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "sent": sent,
        "ok": len(latencies),
        "errors": errors,
        "dropped": dropped,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def load_worker(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    bodies = [b.encode() for b in spec["bodies"]]
    results = {}
    for rate in spec["rates"]:
        results[str(rate)] = asyncio.run(
            _open_loop(spec["url"], bodies, spec["headers"], rate, spec["seconds"])
        )
    results["max"] = asyncio.run(
        _closed_loop(spec["url"], bodies, spec["headers"], spec["seconds"])
    )
    print(json.dumps(results))


def run_load(url: str, bodies: list[str], headers: dict[str, str], seconds: float) -> Any:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as spec:
        json.dump(
            {"url": url, "bodies": bodies, "headers": headers, "rates": RATES, "seconds": seconds},
            spec,
        )
    budget = (len(RATES) + 1) * (seconds + 40) + 60
    out = subprocess.run(
        [sys.executable, __file__, "--load-worker", spec.name],
        capture_output=True,
        text=True,
        timeout=budget,
        check=True,
    )
    Path(spec.name).unlink()
    return json.loads(out.stdout.strip().splitlines()[-1])


def wrk_max(url: str, body: str, headers: dict[str, str], seconds: float) -> dict | None:
    """Max throughput with `wrk` (C, 1 thread, 8 connections) if installed, else None."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    command = [wrk, "-t1", f"-c{CLOSED_LOOP_CONNECTIONS}", f"-d{max(int(seconds), 1)}s"]
    command += ["--latency", "-s", script.name, url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    Path(script.name).unlink()
    result: dict[str, Any] = {"tool": "wrk"}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(parts[1])
        elif line.startswith("Non-2xx"):
            result["errors"] = int(parts[-1])
        elif len(parts) == 2 and parts[0] in ("50%", "90%", "99%"):
            result[f"p{parts[0][:-1]}_ms"] = _wrk_ms(parts[1])
    result.setdefault("errors", 0)
    return result


def _wrk_ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * factor, 2)
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


def scoring_floor(snapshot: Any, booster: Any, requests: list[tuple[str, list[str]]]) -> dict:
    from ranking_features import build_features

    timings = []
    for i in range(2_000):
        user, candidates = requests[i % len(requests)]
        started = time.perf_counter()
        booster.predict(build_features(snapshot, user, candidates), num_threads=1)
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
    parser.add_argument("--load-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_worker:
        load_worker(args.load_worker)
        return

    from ranking_features import build_features

    from tests.conftest import free_port, start_mlflow_server
    from tests.service.ranker_models import register_ranker
    from tests.service.service_process import RankingService

    workdir = Path(tempfile.mkdtemp(prefix="bench-service-", dir=REPO / ".scratch"))
    print(f"workdir {workdir}: training the model ...", flush=True)
    snapshot, booster = bench_model()
    rng = np.random.default_rng(1)
    requests = [
        (f"u-{rng.integers(0, 2_500)}", list(rng.choice(snapshot.item_ids, CANDIDATES, False)))
        for _ in range(200)
    ]
    floor = scoring_floor(snapshot, booster, requests)
    print(f"in-process floor: {floor}", flush=True)

    registry_process, registry = start_mlflow_server(workdir / "mlflow")
    processes: list[subprocess.Popen[bytes]] = [registry_process]
    service = None
    try:
        version = register_ranker(
            registry.tracking_uri, "bench-ranker", booster, snapshot, ("champion",)
        )
        service = RankingService(
            workdir / "service",
            brand="bench",
            tracking_uri=registry.tracking_uri,
            lake_uri=f"file://{workdir / 'lake'}",
            env={"RECPLAT_RELOAD_INTERVAL_S": "30", "RECPLAT_SHIP_INTERVAL_S": "10"},
        ).start()
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
                    f"models:/bench-ranker/{version}",
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

        rank_bodies = [json.dumps({"user_id": u, "candidates": c}) for u, c in requests]
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
        print("loading ranking-serve ...", flush=True)
        ours = run_load(
            f"{service.url}/rank",
            rank_bodies,
            {**service.auth, "Content-Type": "application/json"},
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
        handled = service.metric("recplat_rank_latency_seconds_count")
        handler_s = service.metric("recplat_rank_latency_seconds_sum")
        # Time inside the /rank handler (validation, features, predict, logging): what the
        # service itself costs, apart from HTTP, the load generator and CPU contention.
        ours["handler_mean_ms"] = round(handler_s / max(handled, 1) * 1000, 3)
        ours["max_wrk"] = wrk_max(
            f"{service.url}/rank", rank_bodies[0], {**service.auth, **json_header}, args.seconds
        )
        peer["max_wrk"] = wrk_max(
            f"http://127.0.0.1:{mlflow_port}/invocations",
            invocation_bodies[0],
            json_header,
            args.seconds,
        )
    finally:
        if service is not None:
            service.stop()
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)

    report(floor, ours, peer)


def snapshot_feature_names() -> tuple[str, ...]:
    from ranking_features import FEATURE_NAMES

    return FEATURE_NAMES


def report(floor: dict, ours: dict, peer: dict) -> None:
    print(
        f"\n{'load':>10} | {'ranking-serve p50/p95/p99 ms':>30} {'rps':>7} {'err':>4} | "
        f"{'mlflow serve p50/p95/p99 ms':>30} {'rps':>7} {'err':>4}"
    )
    for key in [str(r) for r in RATES] + ["max"]:
        a, b = ours[key], peer[key]
        label = f"{key} rps" if key != "max" else "max (8c)"
        print(
            f"{label:>10} | {a['p50_ms']:>10} {a['p95_ms']:>9} {a['p99_ms']:>9} "
            f"{a['rps']:>7} {a['errors'] + a['dropped']:>4} | "
            f"{b['p50_ms']:>10} {b['p95_ms']:>9} {b['p99_ms']:>9} "
            f"{b['rps']:>7} {b['errors'] + b['dropped']:>4}"
        )
    a, b = ours.get("max_wrk"), peer.get("max_wrk")
    if a and b:
        print(
            f"{'max (wrk)':>10} | {a['p50_ms']:>10} {'':>9} {a['p99_ms']:>9} "
            f"{a['rps']:>7} {a['errors']:>4} | {b['p50_ms']:>10} {'':>9} {b['p99_ms']:>9} "
            f"{b['rps']:>7} {b['errors']:>4}"
        )
    # wrk's C client saturates the servers, not itself: its max is the fairer ratio.
    source = "max_wrk" if a and b else "max"
    ratio = ours[source]["rps"] / max(peer[source]["rps"], 1e-9)
    floor_target = 2 * floor["p50_ms"] + 1
    print(
        f"\nin-process floor (features + predict, 100 candidates): p50 {floor['p50_ms']} ms, "
        f"p99 {floor['p99_ms']} ms"
    )
    print(
        f"max throughput ratio ranking-serve / mlflow serve ({source}): {ratio:.1f}x (target >= 5x)"
    )
    print(
        f"service p50 at 50 rps {ours['50']['p50_ms']} ms vs 2 x floor + 1 ms = "
        f"{floor_target:.2f} ms; mean time inside the /rank handler "
        f"{ours['handler_mean_ms']} ms"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "candidates": CANDIDATES,
                "model": "lambdarank, 31 leaves, 200 trees",
                "cpu_count": os.cpu_count(),
                "load_average": os.getloadavg(),
                "in_process_floor": floor,
                "ranking_serve": ours,
                "mlflow_models_serve": peer,
                "throughput_ratio": round(ratio, 2),
                "throughput_ratio_from": source,
                "p50_target_ms": round(floor_target, 3),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()

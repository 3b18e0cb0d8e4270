"""The service benchmark's model and what it compares against in process: a brand-sized
snapshot with a 200-tree lambdarank model, the scoring floor (features + predict, no HTTP),
and a wait for an HTTP endpoint to answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


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

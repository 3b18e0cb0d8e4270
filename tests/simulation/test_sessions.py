"""One session definition (docs/architecture.md, "Sessions"), as the traffic actually arrives.

The simulated client drives a real `ranking-serve` (real HTTP, a model registered in a real
MLflow, events shipped to a real lake) and sends each user's latest clicks as `recent_items`;
training then rebuilds the features of the same requests from the lake
(`ranking_training.features.build_training_matrix`). The served vectors are recomputed with
`ranking_features.build_features` (what the service calls) from exactly what the client sent,
at the time the service logged; the service's own scores show it used them, since the model
scores nothing but the two session features.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from ranking_features import FEATURE_NAMES, FeatureSnapshot, build_features
from ranking_training.data import day_start, load_lake
from ranking_training.features import EncodedEvents, build_training_matrix

from recplat.local.simulator import ClientSessions, TrafficOptions, TrafficResult, simulate_brand
from recplat.synthetic import GroundTruth, SynthParams, generate, write_lake
from recplat.testing.rankers import register_ranker
from recplat.testing.servers import MlflowServer
from recplat.testing.service_process import RankingService

SESSION_FEATURES = [
    FEATURE_NAMES.index("recent_same_category"),
    FEATURE_NAMES.index("recently_seen"),
]


def _session_ranker() -> lgb.Booster:
    """A model of the two session features only (every other column is constant in training,
    so no tree splits on it): a score that moves exactly when the session does."""
    rng = np.random.default_rng(0)
    x = np.zeros((2_000, len(FEATURE_NAMES)), dtype=np.float32)
    x[:, SESSION_FEATURES[0]] = rng.random(2_000)
    x[:, SESSION_FEATURES[1]] = rng.random(2_000) < 0.3
    y = 2.0 * x[:, SESSION_FEATURES[1]] + x[:, SESSION_FEATURES[0]]
    data = lgb.Dataset(x, y, feature_name=list(FEATURE_NAMES))
    params = {"objective": "regression", "verbose": -1, "num_leaves": 7, "seed": 0}
    return lgb.train(params, data, num_boost_round=20)


def _served(
    snapshot: FeatureSnapshot, traffic: TrafficResult, impressions: pd.DataFrame, empty: bool
) -> np.ndarray:
    """What the service computed for each call (rows of the shown items, in id order), from
    what the client sent, at the time the service logged; `empty`: as if it sent no session."""
    logged_at = impressions.groupby("request_id", observed=True)["ts"].min()
    blocks = []
    for call in sorted(traffic.calls, key=lambda c: (logged_at[c.request_id], c.request_id)):
        blocks.append(
            build_features(
                snapshot,
                call.user_id,
                sorted(call.shown),
                () if empty else call.recent_items,
                now=float(logged_at[call.request_id]),
            )
        )
    return np.concatenate(blocks)


@pytest.mark.timeout(300)
def test_served_session_features_equal_what_training_rebuilds_from_the_lake(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()
    params = SynthParams(
        brand="sessions",
        users=40,
        items=60,
        days=2,
        seed=3,
        end_date=(today - timedelta(days=1)).isoformat(),
        requests_per_user_per_day=3.0,
    )
    lake = (tmp_path / "lake").as_uri()
    write_lake(generate(params), lake)
    # The model serves the snapshot training would use for today's requests: as of today 00:00.
    history = load_lake(lake, params.start.date(), today)
    snapshot = EncodedEvents.from_lake(history).snapshot(day_start(today), history.window_start)
    booster = _session_ranker()
    register_ranker(mlflow_server.tracking_uri, "sessions-ranker", booster, snapshot, ("champion",))

    service = RankingService(
        tmp_path / "service",
        brand="sessions",
        lake_uri=lake,
        tracking_uri=mlflow_server.tracking_uri,
        env={"RECPLAT_CHALLENGER_TRAFFIC": "0"},
    ).start()
    try:
        traffic = simulate_brand(
            "sessions",
            service.url,
            service.api_key,
            GroundTruth.load(lake),
            TrafficOptions(requests=150, candidates=20, shown=10, seed=5),
            ClientSessions.from_lake(lake),
        )
    finally:
        service.stop()  # graceful: the event log is shipped to the lake
    assert traffic.failed_requests == 0, traffic.failures
    with_session = sum(bool(call.recent_items) for call in traffic.calls)
    assert with_session > 100, f"only {with_session} of 150 requests carried a session"

    data = load_lake(lake, params.start.date(), today)
    matrix, _ = build_training_matrix(data)
    todays = data.impressions[data.impressions["ts"] >= day_start(today)]
    assert todays["request_id"].nunique() == len(traffic.calls) == 150
    # Training orders rows by request time, request id, item id; today's are the last.
    rebuilt = matrix.features[-len(todays) :]

    served = _served(snapshot, traffic, todays, empty=False)
    np.testing.assert_array_equal(served, rebuilt)
    seen = int(rebuilt[:, SESSION_FEATURES[1]].sum())
    assert seen > 20, f"only {seen} shown items were in the user's session: a weak test"

    # The live service scored those vectors: its scores are the model's on the rebuilt rows.
    logged = todays.sort_values(["ts", "request_id", "item_id"])
    by_call = {
        (call.request_id, item): score
        for call in traffic.calls
        for item, score in zip(call.shown, call.scores, strict=True)
    }
    service_scores = [
        by_call[(r, i)] for r, i in zip(logged["request_id"], logged["item_id"], strict=True)
    ]
    np.testing.assert_allclose(service_scores, booster.predict(rebuilt), rtol=1e-6, atol=1e-9)

    # Can fail: a client that sends no session (the old simulator) is told apart.
    without = _served(snapshot, traffic, todays, empty=True)
    differs = np.any(without != rebuilt, axis=1)
    assert differs.sum() > 20, "without recent_items the served vectors should differ"

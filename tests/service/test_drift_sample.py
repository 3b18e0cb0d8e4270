"""The service's side of drift monitoring, over HTTP: the feature sample it ships to the lake,
and the drift gauges it exports from the champion's tags."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.dataset as ds
import pytest
from mlflow import MlflowClient
from ranking_features import FEATURE_NAMES, FeatureSnapshot, build_features
from ranking_features.drift import FEATURE_SAMPLE_SCHEMA
from ranking_features.events import FEATURES_DIR

from recplat.testing.rankers import register_ranker, tiny_snapshot, train_ranker
from recplat.testing.servers import MlflowServer, wait_until
from recplat.testing.service_process import RankingService

BRAND = "svc-drift"
MODEL = f"{BRAND}-ranker"


@dataclass(frozen=True)
class Sampled:
    service: RankingService
    lake: Path
    snapshot: FeatureSnapshot
    champion: str
    tracking_uri: str


@pytest.fixture(scope="module")
def sampled(
    mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sampled]:
    """A service that logs half of the items it returns (RECPLAT_FEATURE_SAMPLE=0.5)."""
    snapshot = tiny_snapshot()
    uri = mlflow_server.tracking_uri
    champion = register_ranker(uri, MODEL, train_ranker(seed=1), snapshot, ("champion",))
    workdir = tmp_path_factory.mktemp("drift-service")
    service = RankingService(
        workdir,
        brand=BRAND,
        lake_uri=f"file://{workdir / 'lake'}",
        tracking_uri=uri,
        env={
            "RECPLAT_FEATURE_SAMPLE": "0.5",
            "RECPLAT_EXPLORATION": "0.2",
            "RECPLAT_EXPLORATION_SEED": "7",
        },
    ).start()
    try:
        yield Sampled(service, workdir / "lake", snapshot, champion, uri)
    finally:
        service.stop()


def _sample_rows(lake: Path) -> list[dict[str, Any]]:
    folder = lake / FEATURES_DIR
    if not folder.exists() or not list(folder.rglob("*.parquet")):
        return []
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table(
        columns=FEATURE_SAMPLE_SCHEMA.names
    )
    return table.to_pylist()


def test_a_share_of_returned_items_lands_in_the_lake_with_the_vector_the_model_scored(
    sampled: Sampled,
) -> None:
    items = [f"i-{n}" for n in range(40)] + ["i-new-1", "i-new-2"]
    answers = []
    with sampled.service.client() as client:
        for n in range(60):
            body = {
                "user_id": f"u-{n % 35}",  # 30 known users, 5 the snapshot never saw
                "candidates": items[n % 7 :] + items[: n % 7],
                "k": 8,
                "recent_items": [f"i-{n % 11}", "i-new-1"],
            }
            answer = client.post("/rank", json=body)
            assert answer.status_code == 200, answer.text
            answers.append((body, answer.json()))
    returned = {
        (a["request_id"], position): (body, item["item_id"])
        for body, a in answers
        for position, item in enumerate(a["items"], start=1)
    }
    # The shipper seals and ships every second: all rows are in once the count stops moving
    # for three intervals.
    seen = {"rows": -1, "since": time.monotonic()}

    def settled() -> bool:
        count = len(_sample_rows(sampled.lake))
        if count != seen["rows"]:
            seen.update(rows=count, since=time.monotonic())
        return count > 0 and time.monotonic() - seen["since"] > 3

    wait_until(settled, 60, "the feature sample in the lake")
    rows = _sample_rows(sampled.lake)
    share = len(rows) / len(returned)
    print(f"\n{len(rows)} of {len(returned)} returned items sampled ({share:.2f}, asked 0.5)")
    assert 0.35 < share < 0.65
    for row in rows:
        body, item_id = returned[(row["request_id"], row["position"])]
        assert row["item_id"] == item_id
        assert row["event_id"] == f"{row['request_id']}:{row['position']}"
        assert (row["model_version"], row["variant"], row["brand"]) == (
            sampled.champion,
            "champion",
            BRAND,
        )
        expected = build_features(
            sampled.snapshot,
            str(body["user_id"]),
            [item_id],
            list(body["recent_items"]),  # type: ignore[call-overload]
            now=row["ts"].timestamp(),
        )[0]
        vector = np.array([row[name] for name in FEATURE_NAMES], dtype=np.float32)
        np.testing.assert_allclose(vector, expected, rtol=1e-6, atol=1e-6)


def _drift_series(service: RankingService) -> dict[str, float]:
    text = service.client().get("/metrics").text
    found = {}
    for line in text.splitlines():
        match = re.match(r"(recplat_feature_drift_psi(?:_threshold)?)\{([^}]*)\} (\S+)", line)
        if match:
            found[f"{match[1]}{{{match[2]}}}"] = float(match[3])
    return found


def test_the_champions_drift_tags_are_exported_and_follow_the_champion(sampled: Sampled) -> None:
    registry = MlflowClient(tracking_uri=sampled.tracking_uri)
    assert _drift_series(sampled.service) == {}, "no drift tags: no drift series"
    for key, value in {
        "drift.psi.item_ctr": "0.3125",
        "drift.psi.user_log_clicks": "0.01",
        "drift.psi.recently_seen": "not a number",
        "drift.psi_threshold": "0.2",
    }.items():
        registry.set_model_version_tag(MODEL, sampled.champion, key, value)
    version = sampled.champion
    expected = {
        f'recplat_feature_drift_psi{{brand="{BRAND}",feature="item_ctr",'
        f'model_version="{version}"}}': 0.3125,
        f'recplat_feature_drift_psi{{brand="{BRAND}",feature="user_log_clicks",'
        f'model_version="{version}"}}': 0.01,
        f'recplat_feature_drift_psi_threshold{{brand="{BRAND}"}}': 0.2,
    }
    wait_until(lambda: _drift_series(sampled.service) == expected, 30, f"drift series {expected}")

    # A new champion without a verdict: the old version's series go, nothing is exported.
    newer = register_ranker(
        sampled.tracking_uri, MODEL, train_ranker(seed=3), sampled.snapshot, ("champion",)
    )
    assert newer != version
    wait_until(lambda: _drift_series(sampled.service) == {}, 30, "drift series of v1 removed")


def test_a_verdict_being_written_is_not_exported_half_old_half_new(sampled: Sampled) -> None:
    """The drift job writes `drift.evaluated_at` last; until it changes, the service keeps the
    previous verdict whole, then takes the new one whole."""
    registry = MlflowClient(tracking_uri=sampled.tracking_uri)
    version = register_ranker(
        sampled.tracking_uri, MODEL, train_ranker(seed=5), sampled.snapshot, ("champion",)
    )
    series = (
        f'recplat_feature_drift_psi{{brand="{BRAND}",feature="item_ctr",model_version="{version}"}}'
    )

    def write(tags: dict[str, str]) -> None:
        for key, value in tags.items():
            registry.set_model_version_tag(MODEL, version, key, value)

    write(
        {
            "drift.psi_threshold": "0.2",
            "drift.psi.item_ctr": "0.05",
            "drift.evaluated_at": "2026-01-01T00:00:00+00:00",
        }
    )
    wait_until(lambda: _drift_series(sampled.service).get(series) == 0.05, 30, "first verdict")

    # The next verdict half written: its PSI is there, its evaluated_at not yet. The online
    # CTR tags written with it show when the service has polled them.
    write({"drift.psi.item_ctr": "0.5", "online.ctr": "0.1"})
    write({"online.ctr_low": "0.09", "online.ctr_high": "0.11"})

    def polled() -> bool:
        lines = sampled.service.client().get("/metrics").text.splitlines()
        return any(
            line.startswith("recplat_online_ctr{")
            and f'model_version="{version}"' in line
            and 'bound="estimate"' in line
            for line in lines
        )

    wait_until(polled, 30, "a poll after the write")
    assert _drift_series(sampled.service).get(series) == 0.05, "a half-written verdict exported"

    write({"drift.evaluated_at": "2026-01-01T01:00:00+00:00"})
    wait_until(lambda: _drift_series(sampled.service).get(series) == 0.5, 30, "second verdict")

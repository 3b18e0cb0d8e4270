"""The shared feature definition: train/serve equality, point-in-time correctness, cold start."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ranking_features import FEATURE_NAMES, FeatureSnapshot, build_features
from ranking_features.definition import SESSION_LENGTH
from ranking_training.data import load_lake
from ranking_training.features import build_training_matrix

from tests.training.lake_window import END, FIRST

pytestmark = pytest.mark.fast

SERVING_DAY = date(2025, 1, 28)


def test_training_features_equal_what_serving_computes(clean_lake: Path) -> None:
    _assert_training_features_equal_serving(clean_lake)


def test_items_missing_from_the_catalog_get_equal_features_too(lake_copy: Path) -> None:
    """Impressions and clicks of items the catalog lacks (cold-start codes in training)."""
    path = lake_copy / "catalog" / "items.parquet"
    catalog = pq.read_table(path)
    pq.write_table(catalog.slice(0, catalog.num_rows * 4 // 5), path)
    _assert_training_features_equal_serving(lake_copy)


def _assert_training_features_equal_serving(lake: Path) -> None:
    data = load_lake(lake.as_uri(), FIRST, END)
    matrix, _ = build_training_matrix(data)
    impressions = data.impressions.assign(
        request_ts=data.impressions.groupby("request_id")["ts"].transform("min")
    ).sort_values(["request_ts", "request_id", "item_id"], kind="stable")
    feedback = data.feedback
    catalog = data.catalog
    clicks_in_time = feedback[feedback["type"] == "click"].sort_values("ts", kind="stable")
    starts = np.concatenate([[0], np.cumsum(matrix.group_sizes)])
    checked = with_session = 0
    for request_index in range(0, matrix.n_requests, max(matrix.n_requests // 25, 1)):
        rows = impressions.iloc[starts[request_index] : starts[request_index + 1]]
        now = float(rows["request_ts"].iloc[0])
        day_start = data.window_start + (now - data.window_start) // 86_400 * 86_400
        clicks = feedback[feedback["type"] == "click"]
        # Serving's path: a snapshot from raw events, the per-request entry point.
        snapshot = FeatureSnapshot.from_events(
            as_of=day_start,
            window_start=data.window_start,
            catalog_item_ids=catalog["item_id"].tolist(),
            catalog_categories=catalog["category"].tolist(),
            catalog_published_at=catalog["published_at"].to_numpy(),
            impression_item_ids=data.impressions["item_id"].tolist(),
            impression_ts=data.impressions["ts"].to_numpy(),
            click_user_ids=clicks["user_id"].tolist(),
            click_item_ids=clicks["item_id"].tolist(),
            click_ts=clicks["ts"].to_numpy(),
        )
        user = rows["user_id"].iloc[0]
        # The session as serving gets it: the user's latest clicks before the request.
        before = clicks_in_time[(clicks_in_time["user_id"] == user) & (clicks_in_time["ts"] < now)]
        served = build_features(
            snapshot,
            user,
            rows["item_id"].tolist(),
            recent_items=before["item_id"].tolist()[-SESSION_LENGTH:],
            now=now,
        )
        trained = matrix.features[starts[request_index] : starts[request_index + 1]]
        np.testing.assert_array_equal(trained, served)
        checked += 1
        with_session += len(before) > 0
    assert checked >= 20
    assert with_session >= checked // 2, "too few sampled requests have a session to compare"


def test_features_of_an_impression_ignore_everything_after_it(
    lake_copy: Path, clean_lake: Path
) -> None:
    """Rewrite all feedback from 2025-01-28 on (flip clicks to other users and items); features
    of impressions before that day must not change, and later ones must."""
    for folder in (lake_copy / "events" / "feedback").iterdir():
        if folder.name >= f"date={SERVING_DAY}":
            for file in folder.glob("*.parquet"):
                table = pq.read_table(file)
                users = table["user_id"].to_pylist()
                items = table["item_id"].to_pylist()
                table = table.set_column(3, "user_id", pa.array(users[::-1]))
                table = table.set_column(4, "item_id", pa.array(items[1:] + items[:1]))
                pq.write_table(table, file)
    original, _ = build_training_matrix(load_lake(clean_lake.as_uri(), FIRST, END))
    altered, _ = build_training_matrix(load_lake(lake_copy.as_uri(), FIRST, END))
    cutoff = pa.scalar(SERVING_DAY).cast(pa.timestamp("s", tz="UTC")).value
    before = np.repeat(original.request_ts < cutoff, original.group_sizes)
    assert before.sum() > 1000
    np.testing.assert_array_equal(original.features[before], altered.features[before])
    assert not np.array_equal(original.features[~before], altered.features[~before])


def test_unknown_users_and_items_get_the_documented_cold_start_defaults(clean_lake: Path) -> None:
    _, snapshot = build_training_matrix(load_lake(clean_lake.as_uri(), FIRST, END))
    features = build_features(snapshot, "nobody", ["new-item"], now=snapshot.as_of)
    expected = {
        "item_age_days": 0.0,
        "item_impression_share": 0.0,
        "item_ctr": snapshot.global_ctr,
        "item_click_share": 0.0,
        "user_category_affinity": 1.0 / len(snapshot.categories),
        "user_log_clicks": 0.0,
        "recent_same_category": 0.0,
        "recently_seen": 0.0,
    }
    assert dict(zip(FEATURE_NAMES, features[0].tolist(), strict=True)) == {
        k: np.float32(v) for k, v in expected.items()
    }
    known_item = snapshot.item_ids[0]
    affinity = build_features(snapshot, "nobody", [known_item], now=snapshot.as_of)[0, 4]
    category = snapshot.item_category[0]
    assert affinity == np.float32(snapshot.global_category_share[category])


def test_snapshot_survives_a_json_round_trip(clean_lake: Path, tmp_path: Path) -> None:
    _, snapshot = build_training_matrix(load_lake(clean_lake.as_uri(), FIRST, END))
    snapshot.save(tmp_path / "snapshot.json")
    loaded = FeatureSnapshot.load(tmp_path / "snapshot.json")
    user = snapshot.user_ids[3]
    candidates = snapshot.item_ids[:40]
    np.testing.assert_array_equal(
        build_features(snapshot, user, candidates, candidates[:2], now=snapshot.as_of),
        build_features(loaded, user, candidates, candidates[:2], now=snapshot.as_of),
    )
    assert build_features(loaded, user, candidates).shape == (40, len(FEATURE_NAMES))
    assert build_features(loaded, user, candidates).dtype == np.float32


def test_session_features_count_the_latest_items_including_unknown_ones(clean_lake: Path) -> None:
    _, snapshot = build_training_matrix(load_lake(clean_lake.as_uri(), FIRST, END))
    known = snapshot.item_ids[0]
    category = snapshot.item_category[0]
    same_category = [
        i for i, c in zip(snapshot.item_ids, snapshot.item_category, strict=True) if c == category
    ][1:3]
    # Oldest first: the first two fall out of the session (SESSION_LENGTH newest items count).
    recent = ["gone-1", "gone-2", *same_category, "new-a", "new-a", *["new-b"] * 6]
    assert len(recent) == SESSION_LENGTH + 2
    features = build_features(
        snapshot, "nobody", [known, "new-a", "new-c", "gone-1"], recent, now=snapshot.as_of
    )
    seen = features[:, FEATURE_NAMES.index("recently_seen")].tolist()
    assert seen == [0.0, 1.0, 0.0, 0.0]
    share = features[:, FEATURE_NAMES.index("recent_same_category")]
    assert share[0] == np.float32(len(same_category) / SESSION_LENGTH)
    assert share[1:].tolist() == [0.0, 0.0, 0.0]


def test_the_data_fingerprint_follows_content_not_file_order(
    lake_copy: Path, clean_lake: Path
) -> None:
    """Reruns are idempotent by this fingerprint: rewriting a file with its rows in another
    order (or re-delivered duplicates) keeps it; changing one event changes it."""
    original = load_lake(clean_lake.as_uri(), FIRST, END).fingerprint()
    path = sorted((lake_copy / "events" / "impressions").rglob("*.parquet"))[0]
    table = pq.read_table(path)
    pq.write_table(pa.concat_tables([table.take(np.arange(table.num_rows)[::-1]), table]), path)
    assert load_lake(lake_copy.as_uri(), FIRST, END).fingerprint() == original
    feedback = sorted((lake_copy / "events" / "feedback").rglob("*.parquet"))[0]
    table = pq.read_table(feedback)
    items = table["item_id"].to_pylist()
    items[0] = items[0] + "-changed"
    pq.write_table(table.set_column(4, "item_id", pa.array(items)), feedback)
    assert load_lake(lake_copy.as_uri(), FIRST, END).fingerprint() != original

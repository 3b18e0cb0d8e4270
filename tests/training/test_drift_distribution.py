"""The training distribution describes what the new model returns (`ranking_training.drift`):
each gate-window request's stand-in candidates, scored, its top k kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ranking_features import FEATURE_NAMES
from ranking_training.data import LakeData, day_start, load_lake
from ranking_training.drift import (
    WindowRequests,
    candidate_sets,
    returned_view_features,
    served_view_features,
    top_k_rows,
    window_requests,
)
from ranking_training.features import EncodedEvents

from tests.training.lake_window import END, FIRST

CTR = FEATURE_NAMES.index("item_ctr")


def test_top_k_keeps_each_requests_best_scored_rows_best_first_ties_in_given_order() -> None:
    row_request = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
    scores = np.array([0.1, 0.9, 0.5, 0.9, 3.0, -1.0, 2.0, 0.0, 0.0])
    k = np.array([2, 5, 1])
    # Request 0: the two 0.9 rows, in their given order; request 1 has fewer than k rows, all
    # of them by score; request 2: a tie, the first row.
    assert top_k_rows(scores, row_request, k).tolist() == [1, 3, 4, 6, 5, 7]


def test_top_k_does_not_mix_requests_rows() -> None:
    # Request 1's rows score higher than all of request 0's: each still keeps its own top k.
    row_request = np.array([0, 1, 0, 1, 0, 1])
    scores = np.array([1.0, 10.0, 2.0, 20.0, 3.0, 30.0])
    assert top_k_rows(scores, row_request, np.array([1, 2])).tolist() == [4, 5, 3]


def _requests(
    times: list[float], shown: list[list[str]], pools: list[list[str] | None]
) -> WindowRequests:
    return WindowRequests(
        request_ids=np.array([f"r{i}" for i in range(len(times))]),
        user_ids=[f"u{i}" for i in range(len(times))],
        times=np.array(times),
        recent_items=[[] for _ in times],
        row_request=np.repeat(np.arange(len(shown)), [len(s) for s in shown]),
        row_items=[item for items in shown for item in items],
        pools=pools,
    )


def test_candidates_are_the_pool_or_the_shown_items_completed_with_published_items() -> None:
    catalog = pd.DataFrame(
        {
            "item_id": [f"c{i}" for i in range(40)],
            "category": ["x"] * 40,
            # c0..c19 published at t=0, c20..c39 at t=100.
            "published_at": [0.0] * 20 + [100.0] * 20,
        }
    )
    requests = _requests(
        times=[50.0, 50.0, 200.0, 50.0],
        shown=[["c1", "c2"], ["c5", "c3"], ["c30"], ["c8", "c7"]],
        pools=[None, ["c3", "c4", "c5", "c6"], None, ["c7", "c8", "c9"]],
    )
    rows, items, k = candidate_sets(requests, catalog)
    assert k.tolist() == [2, 2, 1, 2]
    per_request = [[item for item, r in zip(items, rows, strict=True) if r == q] for q in range(4)]
    # Exploit: the shown items first, in the order shown, then 2 more published by t=50.
    assert per_request[0][:2] == ["c1", "c2"]
    assert len(per_request[0]) == 4 == len(set(per_request[0]))
    assert all(int(item[1:]) < 20 for item in per_request[0])
    # Explore with a pool of 2k: the pool, in the model's order, nothing added.
    assert per_request[1] == ["c3", "c4", "c5", "c6"]
    assert per_request[2][0] == "c30" and len(set(per_request[2])) == 2
    # A pool shorter than 2k held every candidate the request sent: nothing added.
    assert per_request[3] == ["c7", "c8", "c9"]
    # The catalog's row order does not change the draws.
    assert candidate_sets(requests, catalog.iloc[::-1])[1] == items
    # Seeded: the same requests get the same candidates.
    assert candidate_sets(requests, catalog)[1] == items


class _ByColumn:
    """A stand-in booster scoring each row by one feature (or its negative)."""

    best_iteration = 0

    def __init__(self, column: int, sign: float = 1.0) -> None:
        self.column, self.sign = column, sign

    def predict(self, features: np.ndarray, num_iteration: int | None = None) -> np.ndarray:
        return self.sign * features[:, self.column].astype(np.float64)


@pytest.fixture(scope="module")
def lake(clean_lake: Path) -> tuple[LakeData, float, float, object]:
    data = load_lake(clean_lake.as_uri(), FIRST, END)
    start, end = day_start(END), day_start(END) + 86_400.0
    snapshot = EncodedEvents.from_lake(data).snapshot(end, data.window_start)
    return data, start, end, snapshot


def test_the_returned_rows_are_the_models_top_k_of_each_requests_candidates(
    lake: tuple[LakeData, float, float, object],
) -> None:
    data, start, end, snapshot = lake
    requests = window_requests(data, start, end)
    rows, _, k = candidate_sets(requests, data.catalog)
    best = returned_view_features(data, start, end, snapshot, _ByColumn(CTR))  # type: ignore[arg-type]
    worst = returned_view_features(data, start, end, snapshot, _ByColumn(CTR, -1.0))  # type: ignore[arg-type]
    logged = served_view_features(data, start, end, snapshot)  # type: ignore[arg-type]
    assert len(best) == len(worst) == len(logged) == int(k.sum())
    # Per request, the k highest (lowest) item_ctr among its 2k candidates.
    returned = np.repeat(np.arange(len(k)), k)
    assert len(rows) > len(returned)
    for request in range(0, len(k), 97):
        mine = best[returned == request, CTR]
        assert np.all(mine[:-1] >= mine[1:])  # best first
    assert best[:, CTR].mean() > logged[:, CTR].mean() > worst[:, CTR].mean()
    # The user-side features are the requests' own, whichever items are kept.
    user = FEATURE_NAMES.index("user_log_clicks")
    np.testing.assert_array_equal(best[:, user], logged[:, user])


def test_with_equal_scores_exploit_requests_return_what_they_showed(
    lake: tuple[LakeData, float, float, object],
) -> None:
    data, start, end, snapshot = lake

    class _Flat(_ByColumn):
        def predict(self, features: np.ndarray, num_iteration: int | None = None) -> np.ndarray:
            return np.zeros(len(features))

    flat = returned_view_features(data, start, end, snapshot, _Flat(0))  # type: ignore[arg-type]
    logged = served_view_features(data, start, end, snapshot)  # type: ignore[arg-type]
    requests = window_requests(data, start, end)
    exploit_rows = np.array([requests.pools[r] is None for r in requests.row_request])
    assert exploit_rows.any()
    np.testing.assert_array_equal(flat[exploit_rows], logged[exploit_rows])

"""The training distribution stored with every model version, for drift monitoring.

The drift job (`ranking-experiments drift`, `ranking_training.drift_job`) compares the items
the service returns, with the vectors the model scored (`ranking_service.feature_sample`), to
this distribution, feature by feature (`ranking_features.drift`, docs/architecture.md
"Feature drift"). So it describes the same kind of row, seen the same way:

- **the items THIS model returns on the gate window's requests**, the newest day(s) of the
  run's mature data: the traffic nearest to what the model will serve. The older days are
  left out because the features that count events (`user_log_clicks`, the item shares) grow
  through the window, so its first days would look like drift on the model's first day of
  service. Not the items the window logged: those are the previous model's choice, and a
  retrained model returns a different mix (measured on tests/local/test_drift.py's lake,
  unshifted traffic against the logged items: `item_ctr` PSI 0.19-0.21, `item_age_days`
  0.09), so every retrain would look like drift with no change in the traffic;
- **featurised as serving will featurise them**: with the snapshot the model is logged and
  served with (as of the window's end), each request at its own time and with its session
  (its user's clicks before it), not with the day-start snapshots training learns from. A
  day of clicks later, those would differ from what serving computes for the same request.

What the model returns (`returned_view_features`): each request's candidates are featurised
so, scored with the new booster, and its top k kept (k: the items the request showed; ties in
the candidates' order, as `/rank` ranks). The candidates a request sent are not logged, so
each request gets stand-ins (`candidate_sets`), the 2k-wide set the counterfactual gate also
assumes the new model's top k lies in (docs/architecture.md, "Impressions and exploration"):

- an explore request: its logged pool, the serving model's top `min(2k, n)` candidates;
- an exploit request: the k items it showed (the serving model's top k), completed to 2k
  with catalog items published by the request's time, drawn uniformly (seeded, so a run's
  distribution replays): stand-ins for the candidates the serving model ranked just below.

That completion is an assumption about the client's candidates. It fits the simulator's
(uniform draws from the published catalog) and its size matters: completing to 3k or 5k
random items instead gives unshifted `item_ctr` PSI 0.08 and 0.39 on the same lake, since
the unlogged candidates are the ones the serving model passed over, not random items. Scoring
explore pools alone needs no assumption but describes only the explore share of requests (33
of 1000 in the test: `user_log_clicks` PSI 0.27 from too few users).

What remains between the two is what drift monitoring is for: who asks (users, sessions),
for which items (candidates, the catalog's age), and what the serving model makes of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from ranking_features import FeatureSnapshot, build_feature_matrix
from ranking_features.drift import DISTRIBUTION_ARTIFACT, FeatureDistribution, feature_distribution
from ranking_features.events import EXPLORATION_POOL_FACTOR, POLICY_EXPLORE

from ranking_training.data import LakeData
from ranking_training.features import EncodedEvents

CANDIDATE_SEED = 19
"""Seeds the catalog items drawn to complete candidate sets: a run's distribution replays."""


class GateWindow(Protocol):
    """Where the gate window starts and ends (epoch seconds): the split's bounds."""

    @property
    def gate_start(self) -> float: ...

    @property
    def gate_end(self) -> float: ...


@dataclass(frozen=True)
class WindowRequests:
    """The requests of a window, as serving saw them: who, when, with which session, and what
    they logged. Requests are numbered 0..n-1 in `request_ids` order."""

    request_ids: np.ndarray
    user_ids: list[str]
    times: np.ndarray
    """Each request's time (epoch seconds): its first impression row's."""
    recent_items: list[list[str]]
    """Each request's session: its user's clicked item ids before it, newest last."""
    row_request: np.ndarray
    """Per shown row, its request; a request's rows contiguous, in the order shown."""
    row_items: list[str]
    """Per shown row, the item."""
    pools: list[list[str] | None]
    """Per request, the explore pool it logged (in the serving model's order), else None."""


def window_requests(data: LakeData, start: float, end: float) -> WindowRequests:
    """The requests in [start, end) of `data` with their shown rows, sessions and pools."""
    impressions = data.impressions
    ts = impressions["ts"].to_numpy(np.float64)
    request_ids, request_of_row = np.unique(
        impressions["request_id"].to_numpy(), return_inverse=True
    )
    # A request's time is its first row's, as training takes it.
    request_ts = np.full(len(request_ids), np.inf)
    np.minimum.at(request_ts, request_of_row, ts)
    in_window = (request_ts >= start) & (request_ts < end)
    rows = np.flatnonzero(in_window[request_of_row])
    if len(rows) == 0:
        raise ValueError("the window has no impressions to describe")
    # A request's rows contiguous and in the order shown, requests numbered 0..n-1.
    positions = impressions["position"].to_numpy()[rows]
    rows = rows[np.lexsort((positions, request_of_row[rows]))]
    requests, row_request = np.unique(request_of_row[rows], return_inverse=True)
    first_rows = rows[np.searchsorted(request_of_row[rows], requests)]
    user_ids = impressions["user_id"].to_numpy()[first_rows]
    times = request_ts[requests]
    encoded = EncodedEvents.from_lake(data)
    sessions = encoded.sessions(encoded.user_rows(user_ids), times)
    # Codes past the catalog's rows are the window's unknown ids, numbered in order.
    unknown = sorted(encoded.unknown_codes.items(), key=lambda pair: pair[1])
    item_of_code = [*encoded.item_ids, *(item_id for item_id, _ in unknown)]
    if "pool" in impressions and "policy" in impressions:
        explored = impressions["policy"].to_numpy()[first_rows] == POLICY_EXPLORE
        logged_pools = impressions["pool"].to_numpy()[first_rows]
        pools = [
            [str(item) for item in pool] if explore and pool is not None else None
            for explore, pool in zip(explored, logged_pools, strict=True)
        ]
    else:
        pools = [None] * len(requests)
    return WindowRequests(
        request_ids=request_ids[requests],
        user_ids=[str(user) for user in user_ids],
        times=times,
        recent_items=[[item_of_code[c] for c in session if c >= 0] for session in sessions],
        row_request=row_request,
        row_items=[str(item) for item in impressions["item_id"].to_numpy()[rows]],
        pools=pools,
    )


def served_view_features(
    data: LakeData, start: float, end: float, snapshot: FeatureSnapshot
) -> np.ndarray:
    """The impressions of the requests in [start, end), one row each, featurised as the service
    would: `ranking_features.build_feature_matrix` on ids, with `snapshot`, at their request's
    time and with their session (the user's clicks in `data` before the request). Users and
    items are looked up by id in `snapshot`, so `data` may hold just those days and the clicks
    their sessions need."""
    requests = window_requests(data, start, end)
    return build_feature_matrix(
        snapshot,
        user_ids=requests.user_ids,
        request_times=requests.times,
        row_request=requests.row_request,
        row_items=requests.row_items,
        recent_items=requests.recent_items,
    )


def candidate_sets(
    requests: WindowRequests, catalog: pd.DataFrame, seed: int = CANDIDATE_SEED
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Each request's stand-in candidates (module docstring): its explore pool as logged, or
    the items it showed, completed to EXPLORATION_POOL_FACTOR x k items (k the items it showed)
    with catalog items published by the request's time, drawn uniformly without replacement.
    Returns the rows' requests (contiguous), the rows' items (logged ones first, in the logged
    order) and each request's k. Seeded: the same requests and catalog give the same candidates."""
    rng = np.random.default_rng(seed)
    published = catalog["published_at"].to_numpy(np.float64)
    # By time, then id: the same draws whatever order the catalog's rows came in.
    catalog_items = catalog["item_id"].to_numpy().astype(str)
    by_time = np.lexsort((catalog_items, published))
    catalog_items, published = catalog_items[by_time], published[by_time]
    shown_counts = np.bincount(requests.row_request, minlength=len(requests.times))
    starts = np.r_[0, np.cumsum(shown_counts)]
    row_request: list[np.ndarray] = []
    row_items: list[str] = []
    for request, (time, pool) in enumerate(zip(requests.times, requests.pools, strict=True)):
        shown = requests.row_items[starts[request] : starts[request + 1]]
        logged = list(dict.fromkeys([*(pool or []), *shown]))
        # A pool is the top min(2k, n): a shorter one holds every candidate the request sent.
        wanted = len(logged) if pool else EXPLORATION_POOL_FACTOR * len(shown)
        available = int(np.searchsorted(published, time, side="right"))
        chosen = set(logged)
        if len(logged) < wanted and available > 0:
            # A big catalog: draws with replacement, repeats skipped (as good as without).
            draws = (
                rng.permutation(available)
                if available <= 4 * wanted
                else rng.integers(0, available, size=4 * wanted)
            )
            for item in catalog_items[draws]:
                if len(logged) >= wanted:
                    break
                if item not in chosen:
                    chosen.add(item)
                    logged.append(item)
        row_request.append(np.full(len(logged), request))
        row_items.extend(logged)
    return np.concatenate(row_request), row_items, shown_counts


def top_k_rows(scores: np.ndarray, row_request: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The rows serving would return: per request r, its k[r] best-scored rows (all of them if
    it has fewer), ties in the rows' given order (`ranking_service.model_store.rank_order`).
    Row indices, request by request, best first."""
    order = np.argsort(-scores, kind="stable")
    order = order[np.argsort(row_request[order], kind="stable")]
    grouped = row_request[order]
    rank = np.arange(len(order)) - np.searchsorted(grouped, grouped, side="left")
    return order[rank < k[grouped]]


def returned_view_features(
    data: LakeData,
    start: float,
    end: float,
    snapshot: FeatureSnapshot,
    booster: Any,
    seed: int = CANDIDATE_SEED,
) -> np.ndarray:
    """What `booster` would return on the requests in [start, end) of `data` (module
    docstring): each request's stand-in candidates (`candidate_sets`) featurised as
    `served_view_features` featurises rows, scored with `booster`, its top k kept."""
    requests = window_requests(data, start, end)
    row_request, row_items, k = candidate_sets(requests, data.catalog, seed)
    features = build_feature_matrix(
        snapshot,
        user_ids=requests.user_ids,
        request_times=requests.times,
        row_request=row_request,
        row_items=row_items,
        recent_items=requests.recent_items,
    )
    scores = booster.predict(features, num_iteration=booster.best_iteration or None)
    return features[top_k_rows(np.asarray(scores, np.float64), row_request, k)]


def write_training_distribution(
    data: LakeData,
    windows: GateWindow,
    snapshot: FeatureSnapshot,
    booster: Any,
    feature_dir: Path,
) -> FeatureDistribution:
    """Describe what `booster` would return on the gate window's requests, seen as serving
    sees it (module docstring), into `feature_dir`, logged with the run as
    `features/distribution.json`."""
    features = returned_view_features(data, windows.gate_start, windows.gate_end, snapshot, booster)
    window = "gate window [{}, {})".format(
        *(_iso(t) for t in (windows.gate_start, windows.gate_end))
    )
    distribution = feature_distribution(features, window=window)
    distribution.save(feature_dir / Path(DISTRIBUTION_ARTIFACT).name)
    return distribution


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="minutes")

"""The training distribution stored with every model version, for drift monitoring.

The drift job (`ranking-experiments drift`, `ranking_training.drift_job`) compares the items
the service returns, with the vectors the model scored (`ranking_service.feature_sample`), to
this distribution, feature by feature (`ranking_features.drift`, docs/architecture.md
"Feature drift"). So it describes the same kind of row, seen the same way:

- **the gate window's returned items**, the newest day(s) of the run's mature data: the
  traffic nearest to what the model will serve. The older days are left out because the
  features that count events (`user_log_clicks`, the item shares) grow through the window,
  so its first days would look like drift on the model's first day of service;
- **featurised as serving will featurise them**: with the snapshot the model is logged and
  served with (as of the window's end), each request at its own time and with its session
  (its user's clicks before it), not with the day-start snapshots training learns from. A
  day of clicks later, those would differ from what serving computes for the same request.

What remains between the two is what drift monitoring is for: who asks (users, sessions),
for which items (candidates, the catalog's age), and which items the serving model returns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np
from ranking_features import FeatureSnapshot, build_feature_matrix
from ranking_features.drift import DISTRIBUTION_ARTIFACT, FeatureDistribution, feature_distribution

from ranking_training.data import LakeData
from ranking_training.features import EncodedEvents


class GateWindow(Protocol):
    """Where the gate window starts and ends (epoch seconds): the split's bounds."""

    @property
    def gate_start(self) -> float: ...

    @property
    def gate_end(self) -> float: ...


def served_view_features(
    data: LakeData, start: float, end: float, snapshot: FeatureSnapshot
) -> np.ndarray:
    """The impressions of the requests in [start, end), one row each, featurised as the service
    would: `ranking_features.build_feature_matrix` on ids, with `snapshot`, at their request's
    time and with their session (the user's clicks in `data` before the request). Users and
    items are looked up by id in `snapshot`, so `data` may hold just those days and the clicks
    their sessions need."""
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
    # A request's rows contiguous, requests numbered 0..n-1.
    rows = rows[np.argsort(request_of_row[rows], kind="stable")]
    requests, row_request = np.unique(request_of_row[rows], return_inverse=True)
    first_rows = rows[np.searchsorted(request_of_row[rows], requests)]
    user_ids = impressions["user_id"].to_numpy()[first_rows]
    times = request_ts[requests]
    encoded = EncodedEvents.from_lake(data)
    sessions = encoded.sessions(encoded.user_rows(user_ids), times)
    # Codes past the catalog's rows are the window's unknown ids, numbered in order.
    unknown = sorted(encoded.unknown_codes.items(), key=lambda pair: pair[1])
    item_of_code = [*encoded.item_ids, *(item_id for item_id, _ in unknown)]
    return build_feature_matrix(
        snapshot,
        user_ids=[str(user) for user in user_ids],
        request_times=times,
        row_request=row_request,
        row_items=[str(item) for item in impressions["item_id"].to_numpy()[rows]],
        recent_items=[[item_of_code[c] for c in session if c >= 0] for session in sessions],
    )


def write_training_distribution(
    data: LakeData, windows: GateWindow, snapshot: FeatureSnapshot, feature_dir: Path
) -> FeatureDistribution:
    """Describe the gate window's returned items as the model will see them (module
    docstring) into `feature_dir`, logged with the run as `features/distribution.json`."""
    features = served_view_features(data, windows.gate_start, windows.gate_end, snapshot)
    window = "gate window [{}, {})".format(
        *(_iso(t) for t in (windows.gate_start, windows.gate_end))
    )
    distribution = feature_distribution(features, window=window)
    distribution.save(feature_dir / Path(DISTRIBUTION_ARTIFACT).name)
    return distribution


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="minutes")

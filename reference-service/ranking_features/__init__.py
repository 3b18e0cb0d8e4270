"""The one feature definition shared by training and serving (numpy only; no pandas).

Public API:
- `FEATURE_NAMES`: the model's input columns, in order.
- `FeatureSnapshot`: per-item statistics (category, published_at, impressions, clicks, CTR),
  per-user click counts per category and the global cold-start defaults, as of a time. JSON via
  `to_json()`/`save(path)`/`FeatureSnapshot.load(path)`.
- `build_features(snapshot, user_id, candidates, recent_items=(), now=None)`: what serving calls
  per request; a float32 array of shape (len(candidates), len(FEATURE_NAMES)).
- `build_feature_matrix(...)`: the same computation for many requests, from ids.
- `build_encoded_feature_matrix(...)` and `ItemCodes`: the computation itself, on integer item
  codes; training encodes a window once and calls it per day with that day's snapshot, so
  training and serving features are equal for equal inputs.
- `feature_spec()`: names, version and documented cold-start defaults.
- `ranking_features.events`: the parquet schemas of impressions, feedback and catalog.

Where a model's features live in MLflow (the service downloads these): the registered
version's run holds the artifacts
- `features/snapshot.json`: the FeatureSnapshot as of the end of the training window;
- `features/spec.json`: `feature_spec()` at training time (check `feature_version`);
and the model itself is logged with `mlflow.lightgbm.log_model(name="model")`; its directory
holds the native LightGBM file `model.lgb` for `lightgbm.Booster(model_file=...)`.

Point in time: a snapshot as of T counts only events strictly before T. Training featurises
each impression with the snapshot as of the start of its day (UTC), and its session
(`recent_items`) from the user's clicks strictly before the impression. No feature ever sees the
impression's own outcome or anything later.

Sessions (docs/architecture.md, "Sessions"): a request's session is the user's latest
`SESSION_LENGTH` clicked item ids, newest last. Serving takes it from the caller's
`recent_items` (the client's own record of its clicks); training rebuilds the same list from the
lake's clicks before the request, under the feedback rules of `ranking_features.events`.

Position bias: clicks depend on the rank an item was shown at, not only on its relevance.
Position is deliberately NOT a feature (a position feature fixed to 1 at serving scored worse
offline: the model's top-position branch is fit on a tenth of the data). Instead training passes
each impression's served position to LightGBM's unbiased LambdaMART (`lgb.Dataset(position=...)`),
which learns a position-bias factor per rank jointly with the model and divides it out of the
click labels. Serving needs nothing: the features carry no position. (On Dask, where
`lightgbm.dask` takes no positions, the position is ignored; logged with the run.)

Cold start: unknown items are treated as new (age 0, no traffic, the global CTR, affinity of
1/number of categories); unknown users get the global category click share as affinity and 0
clicks. See `feature_spec()["cold_start"]`.
"""

from ranking_features.definition import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    ItemCodes,
    build_encoded_feature_matrix,
    build_feature_matrix,
    build_features,
    feature_spec,
)
from ranking_features.snapshot import FeatureSnapshot

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "FeatureSnapshot",
    "ItemCodes",
    "build_encoded_feature_matrix",
    "build_feature_matrix",
    "build_features",
    "feature_spec",
]

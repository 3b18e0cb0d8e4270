"""Image build check: LightGBM trains and scores a small LambdaRank model in this venv."""

import lightgbm as lgb
import numpy as np

rng = np.random.default_rng(0)
features = rng.random((400, 4))
labels = (features[:, 0] * 3).astype(int)
data = lgb.Dataset(features, labels, group=[20] * 20)
booster = lgb.train({"objective": "lambdarank", "verbose": -1}, data, num_boost_round=5)
scores = booster.predict(features[:20], num_threads=1)
assert scores.shape == (20,) and np.isfinite(scores).all(), scores
print("lightgbm ok:", lgb.__version__)

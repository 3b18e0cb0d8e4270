"""`ranking-train --format svmlight`: the same LambdaRank training and metrics on a standard
learning-to-rank dataset (MSLR-WEB10K, LightGBM's lambdarank example), to check the model
against published results. Groups come from the `.query` file beside each data file (one
group size per line). Nothing is registered: such a model does not read recplat's features.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
from ranking_features.mlflow_names import training_experiment_name

from ranking_training.config import LightGBMSettings
from ranking_training.errors import DataError
from ranking_training.metrics import ranking_metrics


def load_svmlight(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, labels, group sizes) of an svmlight file and its `.query` file."""
    from sklearn.datasets import load_svmlight_file

    query = path.with_name(path.name + ".query")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not query.exists():
        raise DataError(f"{query}: missing; svmlight ranking data needs one group size per line")
    try:
        features, labels = load_svmlight_file(str(path))
        groups = np.loadtxt(query, dtype=np.int64, ndmin=1)
    except ValueError as error:
        raise DataError(f"{path}: not svmlight ranking data: {error}") from error
    if groups.sum() != features.shape[0]:
        raise DataError(
            f"{query}: group sizes add up to {groups.sum()} rows but {path.name} has "
            f"{features.shape[0]}"
        )
    return features.toarray().astype(np.float32), labels.astype(np.int32), groups


def run_svmlight(
    train_path: Path,
    valid_path: Path,
    settings: LightGBMSettings,
    tracking_uri: str | None,
    experiment: str,
) -> dict[str, float]:
    x_train, y_train, g_train = load_svmlight(train_path)
    x_valid, y_valid, g_valid = load_svmlight(valid_path)
    width = max(x_train.shape[1], x_valid.shape[1])
    x_train, x_valid = _pad(x_train, width), _pad(x_valid, width)
    train_set = lgb.Dataset(x_train, y_train, group=g_train)
    valid_set = lgb.Dataset(x_valid, y_valid, group=g_valid, reference=train_set)
    booster = lgb.train(
        settings.booster_params(),
        train_set,
        num_boost_round=settings.num_boost_round,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(settings.early_stopping_rounds, verbose=False)],
    )
    scores = np.asarray(booster.predict(x_valid, num_iteration=booster.best_iteration))
    metrics = ranking_metrics(y_valid, scores, g_valid)
    print(
        f"svmlight {train_path.name} -> {valid_path.name}: best iteration {booster.best_iteration}"
    )
    print("  " + "  ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k != "groups"))
    if tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_experiment(training_experiment_name(experiment))
        with mlflow.start_run(run_name=f"svmlight-{train_path.stem}"):
            mlflow.set_tag("format", "svmlight")
            mlflow.log_params(
                {**settings.booster_params(), "train": str(train_path), "valid": str(valid_path)}
            )
            mlflow.log_metrics({k.replace("@", "_at_"): v for k, v in metrics.items()})
    return metrics


def _pad(features: np.ndarray, width: int) -> np.ndarray:
    if features.shape[1] == width:
        return features
    return np.pad(features, ((0, 0), (0, width - features.shape[1])))

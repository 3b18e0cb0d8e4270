"""Ranking models: loading a registry version, scoring candidates, and the served set.

`load_version()` turns a registry alias into a `RankingModel`: it downloads the version's
artifacts from MLflow (`models:/<name>/<version>`), opens the native LightGBM booster
(`model.lgb`, as `mlflow.lightgbm.log_model` writes it) and the feature snapshot the training
run logged, and checks both against this release's feature definition. `RankingModel.predict()`
builds the features with `ranking_features` and scores them: with the booster's trees compiled
to lookup tables (`compiled_trees`, about 3x faster) when they are verified equal to LightGBM's
own scores, with LightGBM otherwise. `ServedModels` holds what serves now; it is replaced as
a whole, so a request sees one consistent champion/challenger pair.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
from ranking_features.definition import FEATURE_NAMES, build_features
from ranking_features.mlflow_names import CHALLENGER, CHAMPION
from ranking_features.snapshot import FeatureSnapshot

from ranking_service.compiled_trees import CompiledTrees, NotCompilableError, compile_trees

log = logging.getLogger(__name__)

FALLBACK = "fallback"
ALIASES = (CHAMPION, CHALLENGER)

NATIVE_MODEL_FILE = "model.lgb"
# Where the training job logs the snapshot: in the run's artifacts (first) or the model's.
SNAPSHOT_ARTIFACT = "features/snapshot.json"
# Run metrics shown by GET /model: the offline evaluation behind the promotion gate, as the
# training job logs it (`model.ndcg_at_10`, `popularity.*`, `champion.*`), not row counts.
OFFLINE_METRIC_PREFIXES = ("model.", "popularity.", "champion.", "ndcg", "map", "mrr")
EXPERIMENT_ID_TAG = "experiment_id"
EXPERIMENT_STARTED_AT_TAG = "experiment.started_at"


class ModelLoadError(RuntimeError):
    """A registry version that cannot serve; the message says which and why."""


class ModelDownloadError(ModelLoadError):
    """The version's artifacts could not be fetched (registry or storage down): retry later."""


@dataclass(frozen=True)
class RankingModel:
    """One loaded registry version, ready to score."""

    name: str
    version: str
    alias: str
    run_id: str
    booster: lgb.Booster
    snapshot: FeatureSnapshot
    registered_at: float
    data_from: str | None = None
    data_to: str | None = None
    offline_metrics: dict[str, float] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)
    compiled: CompiledTrees | None = None
    # The registry version's `experiment_id` tag: the online experiment this version is the
    # challenger of (issue 15 sets it); impressions log it while the challenger takes traffic.
    experiment_id: str | None = None
    # Its `experiment.started_at` tag (epoch seconds): how long that experiment has run.
    experiment_started_at: float | None = None

    def predict(
        self, user_id: str, candidates: Sequence[str], recent_items: Sequence[str] = ()
    ) -> np.ndarray:
        """Scores of the candidates (higher ranks first), float64, one per candidate."""
        return self.score(self.features(user_id, candidates, recent_items))

    def features(
        self, user_id: str, candidates: Sequence[str], recent_items: Sequence[str] = ()
    ) -> np.ndarray:
        return build_features(self.snapshot, user_id, candidates, recent_items)

    @property
    def scorer(self) -> str:
        """What scores: "compiled-trees" (verified lookup tables) or "lightgbm"."""
        return "compiled-trees" if self.compiled is not None else "lightgbm"

    def score(self, features: np.ndarray) -> np.ndarray:
        """Scores of feature rows, float64: LightGBM's, from the compiled tables if verified."""
        if self.compiled is not None:
            return self.compiled.predict(features)
        # Scoring ~100 rows on one thread beats waking an OpenMP team.
        return np.asarray(self.booster.predict(features, num_threads=1), dtype=np.float64)

    def with_compiled_trees(self) -> RankingModel:
        """This model scoring with its trees compiled, if they match LightGBM's scores on the
        snapshot's items and every split boundary; else itself (logged), scoring with LightGBM."""
        try:
            compiled = compile_trees(self.booster)
            compiled.verify(self.booster, self.features(*self._warm_up_request()))
        except NotCompilableError as reason:
            log.info("%s v%s scores with LightGBM: %s", self.name, self.version, reason)
            return self
        except Exception as error:  # an optimisation only: LightGBM still scores correctly
            log.warning(
                "%s v%s scores with LightGBM: its trees did not compile: %r",
                self.name,
                self.version,
                error,
            )
            return self
        log.info(
            "%s v%s scores with compiled trees (%d trees, %.1f MiB of tables)",
            self.name,
            self.version,
            compiled.num_trees,
            compiled.table_bytes / 2**20,
        )
        return dataclasses.replace(self, compiled=compiled)

    def _warm_up_request(self) -> tuple[str, list[str], list[str]]:
        items = [*self.snapshot.item_ids[:200], "__warm_up_unknown_item__"]
        users = self.snapshot.user_ids[:1] or ["__warm_up_unknown_user__"]
        return users[0], items, items[:2]

    def warm_up(self) -> None:
        """Score a request of known and unknown items; raise if the scores are unusable."""
        user, items, recent = self._warm_up_request()
        scores = self.predict(user, items, recent_items=recent)
        if scores.shape != (len(items),) or not np.all(np.isfinite(scores)):
            raise ModelLoadError(
                f"{self.name} version {self.version}: warm-up scores are not finite "
                f"(shape {scores.shape})"
            )


@dataclass(frozen=True)
class ServedModels:
    """What serves now. Swapped as one object: readers never see half an update."""

    champion: RankingModel | None = None
    challenger: RankingModel | None = None
    fallback_snapshot: FeatureSnapshot | None = None

    def for_alias(self, alias: str) -> RankingModel | None:
        return self.champion if alias == CHAMPION else self.challenger


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Indices by descending score; ties keep the candidates' given order."""
    return np.argsort(-scores, kind="stable")


def popularity_scores(snapshot: FeatureSnapshot | None, candidates: Sequence[str]) -> np.ndarray:
    """Fallback scores: the snapshot's click counts (0 for unknown items, or no snapshot)."""
    if snapshot is None:
        return np.zeros(len(candidates))
    rows = snapshot.item_positions(candidates)
    return np.where(rows >= 0, snapshot.item_clicks[np.maximum(rows, 0)], 0.0)


def load_version(client: Any, name: str, alias: str, tracking_uri: str) -> RankingModel:
    """Load the version `alias` points at; raise ModelLoadError naming what is wrong."""
    version = client.get_model_version_by_alias(name, alias)
    return load_model_version(client, version, alias, tracking_uri)


def load_model_version(client: Any, version: Any, alias: str, tracking_uri: str) -> RankingModel:
    """Load one registry `ModelVersion` (download, open, check, warm up)."""
    from mlflow.artifacts import download_artifacts

    label = f"{version.name} version {version.version}"
    with tempfile.TemporaryDirectory(prefix="recplat-model-") as tmp:
        try:
            model_dir = Path(
                download_artifacts(
                    artifact_uri=f"models:/{version.name}/{version.version}",
                    dst_path=str(Path(tmp) / "model"),
                    tracking_uri=tracking_uri,
                )
            )
        except Exception as error:
            raise ModelDownloadError(f"{label}: cannot download its artifacts: {error}") from error
        booster = _open_booster(model_dir, label)
        snapshot = _load_snapshot(version.run_id, model_dir, Path(tmp), tracking_uri, label)

    run_data = _run_data(client, version.run_id)
    version_tags = dict(version.tags or {})
    tags = {**run_data.get("tags", {}), **version_tags}
    model = RankingModel(
        name=version.name,
        version=str(version.version),
        alias=alias,
        run_id=version.run_id or "",
        booster=booster,
        snapshot=snapshot,
        registered_at=(version.creation_timestamp or 0) / 1000.0,
        data_from=tags.get("data_from"),
        data_to=tags.get("data_to"),
        offline_metrics={
            k: v
            for k, v in run_data.get("metrics", {}).items()
            if k.lower().startswith(OFFLINE_METRIC_PREFIXES) and math.isfinite(v)
        },
        # The version's own tag only: a run tag of that name would be the training run's.
        experiment_id=version_tags.get(EXPERIMENT_ID_TAG) or None,
        experiment_started_at=_timestamp(version_tags.get(EXPERIMENT_STARTED_AT_TAG), label),
    )
    model = model.with_compiled_trees()
    model.warm_up()
    return model


def _timestamp(text: str | None, label: str) -> float | None:
    """Epoch seconds of an ISO 8601 tag value; None (logged) when absent or unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        log.warning("%s: tag %s=%r is not an ISO 8601 time", label, EXPERIMENT_STARTED_AT_TAG, text)
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _open_booster(model_dir: Path, label: str) -> lgb.Booster:
    found = sorted(model_dir.rglob(NATIVE_MODEL_FILE))
    if not found:
        raise ModelLoadError(
            f"{label}: no {NATIVE_MODEL_FILE} in its artifacts; "
            "log it with mlflow.lightgbm.log_model"
        )
    try:
        booster = lgb.Booster(model_file=str(found[0]))
    except lgb.basic.LightGBMError as error:
        raise ModelLoadError(
            f"{label}: {NATIVE_MODEL_FILE} is not a LightGBM model: {error}"
        ) from error
    except UnicodeDecodeError as error:
        # LightGBM's parse error of a truncated file can carry stray bytes that its Python
        # package fails to decode: the verdict is the same, only the message is lost.
        raise ModelLoadError(
            f"{label}: {NATIVE_MODEL_FILE} is not a LightGBM model (LightGBM cannot parse it)"
        ) from error
    if tuple(booster.feature_name()) != FEATURE_NAMES:
        raise ModelLoadError(
            f"{label}: trained on features {booster.feature_name()}, this service computes "
            f"{list(FEATURE_NAMES)}; retrain with this release's ranking_features"
        )
    return booster


def _load_snapshot(
    run_id: str | None, model_dir: Path, tmp: Path, tracking_uri: str, label: str
) -> FeatureSnapshot:
    from mlflow.artifacts import download_artifacts

    candidates = sorted(model_dir.rglob(Path(SNAPSHOT_ARTIFACT).name))
    if not candidates and run_id:
        try:
            path = download_artifacts(
                run_id=run_id,
                artifact_path=SNAPSHOT_ARTIFACT,
                dst_path=str(tmp / "run"),
                tracking_uri=tracking_uri,
            )
            candidates = [Path(path)]
        except Exception as error:
            raise ModelDownloadError(
                f"{label}: cannot download {SNAPSHOT_ARTIFACT} of run {run_id}: {error}"
            ) from error
    if not candidates:
        raise ModelLoadError(f"{label}: no feature snapshot ({SNAPSHOT_ARTIFACT}) found")
    try:
        return FeatureSnapshot.load(candidates[0])
    except (ValueError, OSError) as error:
        raise ModelLoadError(f"{label}: {error}") from error


def _run_data(client: Any, run_id: str | None) -> dict[str, Any]:
    """The run's metrics and tags, or nothing if the run is gone (the model still serves)."""
    if not run_id:
        return {}
    try:
        run = client.get_run(run_id)
    except Exception as error:
        log.warning("run %s of the model is not readable: %s", run_id, error)
        return {}
    return {"metrics": dict(run.data.metrics), "tags": dict(run.data.tags)}

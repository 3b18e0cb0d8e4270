"""Stage 6: register the model in MLflow and decide whether it becomes champion.

Names (DESIGN.md): registered model `<brand>-ranker`, aliases `challenger` (newest version that
passed the offline checks) and `champion` (what serves). The gate moves `champion` only when
the new version beats the champion by `min_gain` on the promotion metric AND beats the
popularity baseline. A version is tagged with the fingerprint of its data and configuration, so
a rerun on the same data finds it and registers nothing new.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from ranking_features import FEATURE_NAMES, FEATURE_VERSION

CHALLENGER = "challenger"
CHAMPION = "champion"
FINGERPRINT_TAG = "data_fingerprint"
SNAPSHOT_ARTIFACT = "features/snapshot.json"
SPEC_ARTIFACT = "features/spec.json"
MODEL_ARTIFACT = "model"


@dataclass(frozen=True)
class Decision:
    """The gate's verdict and the numbers behind it."""

    promote: bool
    reason: str
    metric: str
    model: float
    popularity: float
    champion: float | None
    champion_version: str | None
    min_gain: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    metric: str,
    min_gain: float,
    model: dict[str, float],
    popularity: dict[str, float],
    champion: dict[str, float] | None,
    champion_version: str | None,
) -> Decision:
    """Promote when model > popularity and model >= champion + min_gain (if there is one)."""
    ours, baseline = model[metric], popularity[metric]
    theirs = None if champion is None else champion[metric]
    if ours <= baseline:
        promote, reason = False, f"{metric} {ours:.4f} does not beat popularity {baseline:.4f}"
    elif theirs is None:
        promote, reason = True, f"no comparable champion; {metric} {ours:.4f} beats popularity"
    elif ours >= theirs + min_gain:
        promote = True
        reason = f"{metric} {ours:.4f} >= champion v{champion_version} {theirs:.4f} + {min_gain}"
    else:
        promote = False
        reason = (
            f"{metric} {ours:.4f} < champion v{champion_version} {theirs:.4f} + {min_gain} "
            "(minimum gain)"
        )
    return Decision(promote, reason, metric, ours, baseline, theirs, champion_version, min_gain)


def find_version_with_fingerprint(
    client: MlflowClient, model_name: str, fingerprint: str
) -> ModelVersion | None:
    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return None
    for version in versions:
        if version.tags.get(FINGERPRINT_TAG) == fingerprint:
            return version
    return None


@dataclass
class Champion:
    version: str
    booster: Any


def load_champion(client: MlflowClient, model_name: str) -> tuple[Champion | None, str | None]:
    """The current champion if it reads today's features, else (None, why it was skipped)."""
    try:
        version = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None, None
    with tempfile.TemporaryDirectory() as scratch:
        try:
            spec_path = mlflow.artifacts.download_artifacts(
                run_id=version.run_id, artifact_path=SPEC_ARTIFACT, dst_path=scratch
            )
            spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
        except (MlflowException, OSError, ValueError):
            return None, f"champion v{version.version} has no readable {SPEC_ARTIFACT}"
    if spec.get("feature_names") != list(FEATURE_NAMES):
        return None, f"champion v{version.version} uses other features; compared to popularity only"
    booster = mlflow.lightgbm.load_model(f"models:/{model_name}/{version.version}")
    return Champion(version=version.version, booster=booster), None


def log_and_register(
    booster: Any,
    *,
    model_name: str,
    example: np.ndarray,
    feature_dir: Path,
    version_tags: dict[str, str],
) -> ModelVersion:
    """Log the booster and its feature artifacts to the active run; register a version."""
    import pandas as pd
    from mlflow.models import infer_signature

    mlflow.log_artifacts(str(feature_dir), artifact_path="features")
    frame = pd.DataFrame(example, columns=list(FEATURE_NAMES))
    signature = infer_signature(frame, booster.predict(example))
    info = mlflow.lightgbm.log_model(
        booster,
        name=MODEL_ARTIFACT,
        signature=signature,
        input_example=frame.head(5),
        registered_model_name=model_name,
        await_registration_for=120,
        # Explicit requirements: inferring them runs `uv export` and costs tens of seconds.
        pip_requirements=_requirements(),
    )
    client = MlflowClient()
    version = str(info.registered_model_version)
    for key, value in {**version_tags, "feature_version": str(FEATURE_VERSION)}.items():
        client.set_model_version_tag(model_name, version, key, value)
    return client.get_model_version(model_name, version)


def apply_decision(client: MlflowClient, model_name: str, version: str, decision: Decision) -> None:
    """`challenger` always moves to the new version; `champion` only when the gate passed."""
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    if decision.promote:
        client.set_registered_model_alias(model_name, CHAMPION, version)
    client.set_model_version_tag(
        model_name, version, "gate", "promoted" if decision.promote else "held"
    )


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("lightgbm", "numpy", "scikit-learn")]

"""Stage 7: register the model in MLflow and record the gate's outcome on the version.

Names (DESIGN.md, docs/architecture.md "Promotion gate"): registered model `<brand>-ranker`,
aliases `challenger` (a version that passed the counterfactual gate, which the online
experiment of issue 15 judges) and `champion` (what serves). The training job moves
`champion` only for a brand's first model, when nothing serves yet; a rejected version, or one
judged on too little exploration, is registered and tagged but never aliased. A version is
tagged with the fingerprint of its data and configuration, so a rerun on the same data finds
it and registers nothing new.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from ranking_features import FEATURE_NAMES, FEATURE_VERSION

from ranking_training.gate import GateDecision, GateOutcome

CHALLENGER = "challenger"
CHAMPION = "champion"
FINGERPRINT_TAG = "data_fingerprint"
SNAPSHOT_ARTIFACT = "features/snapshot.json"
SPEC_ARTIFACT = "features/spec.json"
MODEL_ARTIFACT = "model"


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
    """The version behind `champion`; `booster` is None when it cannot score today's features."""

    version: str
    booster: Any | None


def load_champion(client: MlflowClient, model_name: str) -> tuple[Champion | None, str | None]:
    """The current champion (None when there is none), and why it cannot be scored, if so."""
    try:
        version = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None, None
    unscored = Champion(version=version.version, booster=None)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            spec_path = mlflow.artifacts.download_artifacts(
                run_id=version.run_id, artifact_path=SPEC_ARTIFACT, dst_path=scratch
            )
            spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
        except (MlflowException, OSError, ValueError):
            return unscored, f"champion v{version.version} has no readable {SPEC_ARTIFACT}"
    if spec.get("feature_names") != list(FEATURE_NAMES):
        return unscored, f"champion v{version.version} uses other features"
    booster = mlflow.lightgbm.load_model(f"models:/{model_name}@{CHAMPION}")
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


def apply_gate(client: MlflowClient, model_name: str, version: str, decision: GateDecision) -> None:
    """Tag the version with the gate's outcome and figures; alias it only when it passed:
    `challenger` for a challenger, `champion` for a brand's first champion. The gate never
    moves an existing champion (the online experiment does)."""
    for key, value in decision.tags().items():
        # MLflow caps tag values at 5000 characters; a reason is far shorter.
        client.set_model_version_tag(model_name, version, key, value[:5000])
    if decision.outcome is GateOutcome.CHALLENGER:
        client.set_registered_model_alias(model_name, CHALLENGER, version)
    elif decision.outcome is GateOutcome.CHAMPION:
        client.set_registered_model_alias(model_name, CHAMPION, version)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("lightgbm", "numpy", "scikit-learn")]

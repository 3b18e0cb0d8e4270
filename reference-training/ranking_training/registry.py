"""Stage 7: register the model in MLflow and record the gate's outcome on the version.

Names (`ranking_features.mlflow_names`; docs/architecture.md "Contracts" and "Promotion gate"):
registered model `<brand>-ranker`,
aliases `challenger` (a version that passed the counterfactual gate, which the online
experiment judges) and `champion` (what serves). The training job moves `champion` only for a
brand's first model, when nothing serves yet; a rejected version, or one judged on too little
exploration, is registered and tagged but never aliased. A version is tagged with the
fingerprint of its data and configuration, so a rerun on the same data finds it and registers
nothing new.

Moving `challenger` starts an online experiment (docs/architecture.md, "Online experiments"):
the version is tagged with the experiment's id, start and champion first, because the service
reads a version's tags when it loads it, and only then does the alias move.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from ranking_features import FEATURE_NAMES, FEATURE_VERSION
from ranking_features.mlflow_names import (
    CHALLENGER,
    CHAMPION,
    EXPERIMENT_CHAMPION_TAG,
    EXPERIMENT_EVENT_TAG,
    EXPERIMENT_ID_TAG,
    EXPERIMENT_STARTED_AT_TAG,
    FEATURE_VERSION_TAG,
    FINGERPRINT_TAG,
    MODEL_ARTIFACT,
    SPEC_ARTIFACT,
    brand_of_model,
    experiments_experiment_name,
    model_uri,
)

from ranking_training.gate import GateDecision, GateOutcome


def experiment_id_for(brand: str, version: str, started_at: datetime) -> str:
    """`exp-<brand>-v<challenger>-<UTC yyyymmddTHHMMSSZ>`: one per challenger and start."""
    return f"exp-{brand}-v{version}-{started_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


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
    booster = mlflow.lightgbm.load_model(model_uri(model_name, CHAMPION))
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
    for key, value in {**version_tags, FEATURE_VERSION_TAG: str(FEATURE_VERSION)}.items():
        client.set_model_version_tag(model_name, version, key, value)
    return client.get_model_version(model_name, version)


def apply_gate(
    client: MlflowClient,
    model_name: str,
    version: str,
    decision: GateDecision,
    now: datetime | None = None,
) -> None:
    """Tag the version with the gate's outcome and figures; alias it only when it passed:
    `challenger` for a challenger (which starts its online experiment), `champion` for a
    brand's first champion. The gate never moves an existing champion (the experiment does)."""
    for key, value in decision.tags().items():
        # MLflow caps tag values at 5000 characters; a reason is far shorter.
        client.set_model_version_tag(model_name, version, key, value[:5000])
    if decision.outcome is GateOutcome.CHALLENGER:
        start_experiment(client, model_name, version, now or datetime.now(UTC))
    elif decision.outcome is GateOutcome.CHAMPION:
        client.set_registered_model_alias(model_name, CHAMPION, version)


def start_experiment(
    client: MlflowClient, model_name: str, version: str, started_at: datetime
) -> str:
    """Make `version` the challenger of a new online experiment; return the experiment's id.

    Tags first, alias second: a service that loads the version on the alias move must already
    see the id it salts the assignment with. The start run goes to the brand's experiments
    experiment through the client, so the training run that may be active stays untouched.
    """
    tags = client.get_model_version(model_name, version).tags or {}
    brand = tags.get("brand") or brand_of_model(model_name)
    try:
        champion: str | None = client.get_model_version_by_alias(model_name, CHAMPION).version
    except MlflowException:
        champion = None
    experiment_id = experiment_id_for(brand, version, started_at)
    started = started_at.astimezone(UTC).isoformat(timespec="seconds")
    start_tags = {
        EXPERIMENT_ID_TAG: experiment_id,
        EXPERIMENT_STARTED_AT_TAG: started,
        EXPERIMENT_CHAMPION_TAG: champion or "none",
    }
    for key, value in start_tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    run = client.create_run(
        experiment_id_by_name(client, experiments_experiment_name(brand)),
        run_name=experiment_id,
        tags={EXPERIMENT_EVENT_TAG: "start", "model_name": model_name},
    )
    for key, value in {
        "experiment_id": experiment_id,
        "model_name": model_name,
        "challenger_version": version,
        "champion_version": champion or "none",
        "started_at": started,
    }.items():
        client.log_param(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    return experiment_id


def experiment_id_by_name(client: MlflowClient, name: str) -> str:
    """The id of MLflow experiment `name`, created if missing (on AKS the access job has
    created it; locally the first writer does)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name))
    except MlflowException:
        # Created meanwhile by another writer (two brands' jobs never share one, but reruns do).
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("lightgbm", "numpy", "scikit-learn")]

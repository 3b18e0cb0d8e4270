"""What the local platform reads back from the MLflow registry: a brand's champion and challenger.

Names follow `ranking_features.mlflow_names` (docs/architecture.md, "Contracts"): registered
model `<brand>-ranker`, aliases `champion` and `challenger`. Offline metrics come from the run
that produced the version.
"""

from __future__ import annotations

from dataclasses import dataclass

from ranking_features.mlflow_names import biased_metric_key


@dataclass(frozen=True)
class ModelVersionSummary:
    """One registered version behind an alias, with the offline metrics of its run."""

    name: str
    version: str
    alias: str
    run_id: str | None
    metrics: dict[str, float]

    @property
    def ndcg_at_10(self) -> float | None:
        """The version's biased NDCG@10 on its gate window, as its training run logged it."""
        return self.metrics.get(biased_metric_key("model", "ndcg@10"))


def alias_summary(tracking_uri: str, model_name: str, alias: str) -> ModelVersionSummary | None:
    """The version behind `alias` of `model_name`, or None if the model or alias does not exist."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None
    metrics: dict[str, float] = {}
    if version.run_id:
        try:
            metrics = dict(client.get_run(version.run_id).data.metrics)
        except MlflowException:
            metrics = {}
    return ModelVersionSummary(
        name=model_name,
        version=str(version.version),
        alias=alias,
        run_id=version.run_id,
        metrics=metrics,
    )


def latest_version(tracking_uri: str, model_name: str) -> str | None:
    """The newest registered version number of `model_name`, or None if it has none."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        versions = client.search_model_versions(f"name='{model_name}'")
    except MlflowException:
        return None
    if not versions:
        return None
    return str(max(int(version.version) for version in versions))

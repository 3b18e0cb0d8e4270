"""The counterfactual gate's decision on a registered version, as the demo reports it: read
back from the version's MLflow tags (docs/architecture.md, "Promotion gate").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ranking_features.mlflow_names import (
    GATE_BASIS_TAG,
    GATE_EXPLORATION_REQUESTS_METRIC,
    GATE_REASON_TAG,
    GATE_TAG,
    OPE_METRIC_PREFIX,
    ope_metric_key,
    registered_model_name,
)


@dataclass(frozen=True)
class GateRecord:
    """What the gate decided about one registered version, from the version's tags."""

    version: str
    outcome: str  # champion | challenger | rejected | insufficient_exploration
    reason: str
    basis: str  # counterfactual | biased_ndcg | none
    # The run's gate figures: `ope.*` (PBM, SNIPS and IPS, differences with .low/.high) and
    # `gate.exploration_requests`.
    figures: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """The decision with the figures of the estimator it rests on (PBM), on one line."""
        figures = self.figures
        explore = int(figures.get(GATE_EXPLORATION_REQUESTS_METRIC, 0))
        if self.basis != "counterfactual":
            return f"v{self.version} {self.outcome} ({self.basis}, {explore} explore requests)"
        values = ", ".join(
            f"{target} {figures[ope_metric_key(target, 'pbm')]:.3f}"
            for target in ("new", "champion", "popularity")
            if ope_metric_key(target, "pbm") in figures
        )
        differences = "; ".join(
            f"new - {baseline} {_interval(figures, ope_metric_key(f'new_minus_{baseline}', 'pbm'))}"
            for baseline in ("popularity", "champion")
            if ope_metric_key(f"new_minus_{baseline}", "pbm") in figures
        )
        return (
            f"v{self.version} {self.outcome} on {explore} explore requests: PBM reward per "
            f"request {values}; {differences}"
        )


def _interval(figures: dict[str, float], name: str) -> str:
    return f"{figures[name]:+.3f} [{figures[f'{name}.low']:+.3f}, {figures[f'{name}.high']:+.3f}]"


def gate_record(tracking_uri: str, name: str, version: str) -> GateRecord | None:
    """The gate's decision on `version` of the brand's model, from its version tags (None when
    it has no `gate` tag)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        tags = client.get_model_version(registered_model_name(name), version).tags
    except MlflowException:
        return None
    if GATE_TAG not in tags:
        return None
    figures = {}
    for key, value in tags.items():
        if key.startswith(OPE_METRIC_PREFIX) or key == GATE_EXPLORATION_REQUESTS_METRIC:
            try:
                figures[key] = float(value)
            except ValueError:
                continue
    return GateRecord(
        version=version,
        outcome=tags[GATE_TAG],
        reason=tags.get(GATE_REASON_TAG, ""),
        basis=tags.get(GATE_BASIS_TAG, ""),
        figures=figures,
    )

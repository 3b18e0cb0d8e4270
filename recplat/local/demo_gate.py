"""The counterfactual gate's decision on a registered version, as the demo reports it: read
back from the version's MLflow tags (docs/architecture.md, "Promotion gate").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ranking_features.mlflow_names import registered_model_name


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
        explore = int(figures.get("gate.exploration_requests", 0))
        if self.basis != "counterfactual":
            return f"v{self.version} {self.outcome} ({self.basis}, {explore} explore requests)"
        values = ", ".join(
            f"{target} {figures[f'ope.{target}.pbm']:.3f}"
            for target in ("new", "champion", "popularity")
            if f"ope.{target}.pbm" in figures
        )
        differences = "; ".join(
            f"new - {baseline} {_interval(figures, f'ope.new_minus_{baseline}.pbm')}"
            for baseline in ("popularity", "champion")
            if f"ope.new_minus_{baseline}.pbm" in figures
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
    if "gate" not in tags:
        return None
    figures = {}
    for key, value in tags.items():
        if key.startswith("ope.") or key == "gate.exploration_requests":
            try:
                figures[key] = float(value)
            except ValueError:
                continue
    return GateRecord(
        version=version,
        outcome=tags["gate"],
        reason=tags.get("gate.reason", ""),
        basis=tags.get("gate.basis", ""),
        figures=figures,
    )

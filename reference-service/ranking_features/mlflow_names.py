"""The MLflow names of a brand, defined once (docs/architecture.md, "Contracts").

Infra reserves and grants them, the training job registers and promotes under them, the
service loads from them, and `recplat local` and the tests look them up; all of them build the
names here:

- experiment `recplat/<brand>`: the training runs;
- experiment `recplat/<brand>/experiments`: the online experiments' starts and evaluations;
- registered model `<brand>-ranker`;
- aliases `challenger` (the newest version that passed the offline gate) and `champion` (the
  version that serves). MLflow's stages are deprecated; only aliases are used.

The admin's access job (`infra/mlflow_access_job.py`) imports them too: the MLflow server's
image ships this package next to it.
"""

from __future__ import annotations

MODEL_SUFFIX = "-ranker"
CHAMPION = "champion"
"""The alias of the version that serves."""
CHALLENGER = "challenger"
"""The alias of the newest version that passed the offline gate (an online experiment's arm)."""
MODEL_ALIASES = (CHAMPION, CHALLENGER)
EXPERIMENT_PREFIX = "recplat/"


def registered_model_name(brand: str) -> str:
    """`<brand>-ranker`: the brand's registered model."""
    return f"{brand}{MODEL_SUFFIX}"


def brand_of_model(model_name: str) -> str:
    """The brand a registered model name belongs to (`acme-ranker` -> `acme`)."""
    return model_name.removesuffix(MODEL_SUFFIX)


def training_experiment_name(brand: str) -> str:
    """`recplat/<brand>`: the brand's training runs."""
    return f"{EXPERIMENT_PREFIX}{brand}"


def experiments_experiment_name(brand: str) -> str:
    """`recplat/<brand>/experiments`: the brand's online experiments (starts and evaluations)."""
    return f"{training_experiment_name(brand)}/experiments"


def model_uri(model_name: str, alias: str) -> str:
    """`models:/<name>@<alias>`: the version an alias points at."""
    return f"models:/{model_name}@{alias}"


# Artifacts of a training run (the registered version's run), relative to its artifact root.
SNAPSHOT_ARTIFACT = "features/snapshot.json"
"""The FeatureSnapshot as of the end of the training window; the service scores with it."""
SPEC_ARTIFACT = "features/spec.json"
"""`feature_spec()` at training time."""
DISTRIBUTION_ARTIFACT = "features/distribution.json"
"""The training window's feature distribution (`ranking_features.drift`): drift's reference."""
MODEL_ARTIFACT = "model"
"""The logged LightGBM model (its directory holds the native `model.lgb`)."""
EVALUATION_ARTIFACT_DIR = "evaluation"
DECISION_ARTIFACT = f"{EVALUATION_ARTIFACT_DIR}/decision.json"
"""The gate's version tags, as the run saw them."""
FEATURE_IMPORTANCE_ARTIFACT = f"{EVALUATION_ARTIFACT_DIR}/feature_importance.json"

# Version tags written by training (docs/architecture.md, "Promotion gate").
FINGERPRINT_TAG = "data_fingerprint"
"""The digest of a version's data and configuration: a rerun on the same data finds it."""
FEATURE_VERSION_TAG = "feature_version"
GATE_TAG = "gate"
"""The gate's outcome (`champion`, `challenger`, `rejected`, `insufficient_exploration`)."""
GATE_REASON_TAG = "gate.reason"
GATE_BASIS_TAG = "gate.basis"
GATE_MIN_EXPLORATION_TAG = "gate.min_exploration_requests"
GATE_CHAMPION_VERSION_TAG = "gate.champion_version"
GATE_K_TAG = "gate.k"
GATE_LEVEL_TAG = "gate.level"
GATE_ESTIMATOR_TAG = "gate.estimator"

# An online experiment's version tags (docs/architecture.md, "Online experiments"): the start,
# set by training before it moves `challenger`, and the verdict, set by `ranking-experiments`.
EXPERIMENT_ID_TAG = "experiment_id"
EXPERIMENT_STARTED_AT_TAG = "experiment.started_at"
EXPERIMENT_CHAMPION_TAG = "experiment.champion_version"
EXPERIMENT_OUTCOME_TAG = "experiment"
"""`won`, `lost` or `expired`, once decided."""
EXPERIMENT_DECISION_TAG = "experiment.decision"
EXPERIMENT_EVALUATED_AT_TAG = "experiment.evaluated_at"
EXPERIMENT_REASON_TAG = "experiment.reason"
EXPERIMENT_EVENT_TAG = "experiment.event"
"""On the runs of `recplat/<brand>/experiments`: `start` or `evaluation`."""
# Each arm's online CTR, on its version; the service exports them as `recplat_online_ctr`.
ONLINE_CTR_TAG = "online.ctr"
ONLINE_CTR_LOW_TAG = "online.ctr_low"
ONLINE_CTR_HIGH_TAG = "online.ctr_high"
ONLINE_REQUESTS_TAG = "online.requests"
ONLINE_EXPERIMENT_ID_TAG = "online.experiment_id"
ONLINE_EVALUATED_AT_TAG = "online.evaluated_at"

# The champion's feature drift, on its version (docs/architecture.md, "Feature drift"). The
# drift job writes `drift.evaluated_at` last; the service keys a verdict on it.
DRIFT_PSI_TAG_PREFIX = "drift.psi."
"""`drift.psi.<feature>`: the feature's population stability index."""
DRIFT_THRESHOLD_TAG = "drift.psi_threshold"
DRIFT_EVALUATED_AT_TAG = "drift.evaluated_at"
DRIFT_SAMPLE_ROWS_TAG = "drift.sample_rows"
DRIFT_WINDOW_TAG = "drift.window"

# Run metrics of a training run (offline evaluation on the gate window).
BIASED_METRIC_PREFIX = "biased."
OPE_METRIC_PREFIX = "ope."
GATE_EXPLORATION_REQUESTS_METRIC = "gate.exploration_requests"


def biased_metric_key(ranker: str, metric: str) -> str:
    """`biased.<ranker>.<metric>`, `@` spelled `_at_` (MLflow keys have no `@`):
    `biased_metric_key("model", "ndcg@10")` is `biased.model.ndcg_at_10`."""
    return f"{BIASED_METRIC_PREFIX}{ranker}.{metric.replace('@', '_at_')}"


def ope_metric_key(target: str, estimator: str) -> str:
    """`ope.<target>.<estimator>`: a policy's counterfactual estimate (`ope.new.pbm`); targets
    `new_minus_<baseline>` are paired differences, with `.low` and `.high`."""
    return f"{OPE_METRIC_PREFIX}{target}.{estimator}"

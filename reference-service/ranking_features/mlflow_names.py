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

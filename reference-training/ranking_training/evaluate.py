"""Stage 5: the biased offline metrics: NDCG and friends of the model, the popularity baseline
and the current champion on *all* the gate window's traffic, on the same rows and features
serving would compute.

Biased: the clicks were drawn under the logging policy's order, so a ranker that agrees with
it (the champion) looks better than it is. Kept in the run's metrics as `biased.*` for
reference; the promotion gate decides on the counterfactual estimates (`ranking_training.gate`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ranking_training.features import POPULARITY_FEATURE, RankingMatrix
from ranking_training.metrics import ranking_metrics


@dataclass
class Evaluation:
    """Metrics per ranker on one validation set."""

    model: dict[str, float]
    popularity: dict[str, float]
    champion: dict[str, float] | None = None
    champion_version: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "popularity": self.popularity,
            "champion": self.champion,
            "champion_version": self.champion_version,
            "notes": self.notes,
        }


def score(booster: Any, valid: RankingMatrix) -> np.ndarray:
    return np.asarray(booster.predict(valid.features, num_iteration=booster.best_iteration or None))


def evaluate(booster: Any, valid: RankingMatrix) -> Evaluation:
    model = ranking_metrics(valid.labels, score(booster, valid), valid.group_sizes)
    baseline = ranking_metrics(valid.labels, popularity_scores(valid.features), valid.group_sizes)
    return Evaluation(model=model, popularity=baseline)


def popularity_scores(features: np.ndarray) -> np.ndarray:
    """The popularity baseline: the item's share of clicks so far, impressions breaking ties."""
    return np.asarray(features[:, POPULARITY_FEATURE] + 1e-3 * features[:, 1], dtype=np.float64)


def offline_check_failures(evaluation: Evaluation, booster: Any, valid: RankingMatrix) -> list[str]:
    """Why this model must not be registered at all (empty when it may be)."""
    failures = []
    scores = score(booster, valid)
    if not np.isfinite(scores).all():
        failures.append("the model produces non-finite scores")
    elif np.ptp(scores) == 0:
        failures.append("the model gives every candidate the same score (it learned nothing)")
    if not all(math.isfinite(v) for v in evaluation.model.values()):
        failures.append("the offline metrics are not finite")
    return failures


def write_report(evaluation: Evaluation, summary: dict[str, Any], directory: Path) -> list[Path]:
    """`evaluation.json` and `evaluation.png` (NDCG@k per ranker) in `directory`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    report = directory / "evaluation.json"
    report.write_text(json.dumps({**summary, **evaluation.to_dict()}, indent=2), encoding="utf-8")

    rankers = {"model": evaluation.model, "popularity": evaluation.popularity}
    if evaluation.champion is not None:
        rankers[f"champion v{evaluation.champion_version}"] = evaluation.champion
    cutoffs = ["ndcg@1", "ndcg@3", "ndcg@5", "ndcg@10", "map@10", "mrr"]
    figure, axes = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(rankers)
    for i, (name, metrics) in enumerate(rankers.items()):
        axes.bar(
            np.arange(len(cutoffs)) + i * width, [metrics[c] for c in cutoffs], width, label=name
        )
    axes.set_xticks(np.arange(len(cutoffs)) + 0.4 - width / 2, cutoffs)
    axes.set_ylabel("validation score")
    axes.set_title(str(summary.get("title", "offline evaluation")))
    axes.legend()
    figure.tight_layout()
    plot = directory / "evaluation.png"
    figure.savefig(plot, dpi=100)
    plt.close(figure)
    return [report, plot]

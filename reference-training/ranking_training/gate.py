"""Stage 6: the counterfactual promotion gate (docs/architecture.md, "Promotion gate").

Plain NDCG on the champion's own traffic cannot tell whether a retrain is better: clicks follow
position, so the logged order wins (issue 14). The gate instead judges on the gate window's
*explore* requests, where the service showed a uniformly random permutation of its model's top
`m` (the request's `pool`) with logged propensities. Each target policy (the new model, the
champion, popularity) ranks every explore request's pool with the features serving computes,
and its expected reward in the top k (clicks + conversion_weight x conversions, feedback
matched by the lake's feedback rules) is estimated with IPS, SNIPS and the examination-
corrected estimator PBM (`ranking_training.counterfactual`), with a paired bootstrap interval
over users. The rule decides on PBM (`GateRule.estimator`): it uses every explore impression of
an item, not only those at the position the target gives it, so its intervals are several times
narrower (benchmarks/bench_ope.py); IPS and SNIPS are recorded next to it.

The explore requests, their pools and each target's positions on them are built in
`ranking_training.gate_exploration`. The champion, on the requests its own version logged, is
taken as it served (`as_served`): its order is in the logged pool.

The rule (`decide_counterfactual`), on PBM differences with a two-sided `level` interval:
- the new model must beat popularity: lower bound of (new - popularity) > 0;
- with a champion serving, the new model may not be worse than it by more than the margin:
  lower bound of (new - champion) > -margin x PBM(champion). Then it becomes `challenger`
  and the online experiment (issue 15) decides about `champion`;
- with no champion, beating popularity makes it `champion` directly: nothing serves, so there
  is nothing to experiment against;
- otherwise `rejected`: registered, tagged, never aliased.
Fewer explore requests than `min_exploration_requests` is its own outcome
(`decide_without_exploration`); only a brand without a champion then falls back to the biased
NDCG against popularity, so a new brand can still get a first model.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from ranking_features.mlflow_names import (
    CHALLENGER,
    CHAMPION,
    GATE_BASIS_TAG,
    GATE_CHAMPION_VERSION_TAG,
    GATE_ESTIMATOR_TAG,
    GATE_EXPLORATION_REQUESTS_METRIC,
    GATE_K_TAG,
    GATE_LEVEL_TAG,
    GATE_MIN_EXPLORATION_TAG,
    GATE_REASON_TAG,
    GATE_TAG,
    ope_metric_key,
)

from ranking_training.counterfactual import (
    Estimator,
    Interval,
    estimate_policy_value,
    paired_bootstrap_interval,
)
from ranking_training.gate_exploration import ExplorationSlice

NEW = "new"
# Every estimate the gate records; `GateRule.estimator` is the one it decides on.
ESTIMATORS: tuple[Estimator, ...] = ("pbm", "snips", "ips")
CHAMPION_TARGET = CHAMPION
POPULARITY = "popularity"


class GateOutcome(StrEnum):
    """What the gate did with a registered version (its `gate` tag)."""

    CHAMPION = CHAMPION
    CHALLENGER = CHALLENGER
    REJECTED = "rejected"
    INSUFFICIENT_EXPLORATION = "insufficient_exploration"


class GateBasis(StrEnum):
    """What the decision rests on (the `gate.basis` tag)."""

    COUNTERFACTUAL = "counterfactual"
    BIASED_NDCG = "biased_ndcg"
    NONE = "none"


@dataclass(frozen=True)
class GateRule:
    """The brand's promotion settings the gate applies (`training.promotion`)."""

    conversion_weight: float = 0.0
    margin: float = 0.01
    min_exploration_requests: int = 300
    # Two-sided level of the bootstrap interval: its lower end is a one-sided 95 % bound.
    level: float = 0.9
    # The estimator the rule decides on (the others are recorded): "pbm", the examination-
    # corrected estimator, has a fraction of SNIPS's variance (benchmarks/bench_ope.py).
    estimator: Estimator = "pbm"
    replicates: int = 1000
    # The biased-NDCG fallback (no exploration data, no champion): metric and nothing else.
    metric: str = "ndcg@10"


@dataclass(frozen=True)
class PolicyEstimate:
    """IPS, SNIPS and PBM of one target's expected reward per request in the top k."""

    ips: float
    snips: float
    pbm: float

    def get(self, estimator: str) -> float:
        return float(getattr(self, estimator))


@dataclass(frozen=True)
class CounterfactualEvidence:
    """The estimates the counterfactual rule decides on."""

    requests: int
    users: int
    k: int
    values: dict[str, PolicyEstimate]
    # Paired intervals of new - baseline, per estimator ("pbm", "snips", "ips").
    versus_popularity: dict[str, Interval]
    versus_champion: dict[str, Interval] | None
    # The estimator the rule decides on (`GateRule.estimator`).
    estimator: str = "pbm"


def estimate_targets(
    exploration: ExplorationSlice,
    positions: dict[str, np.ndarray],
    rule: GateRule,
) -> CounterfactualEvidence:
    """Values of every target and paired intervals of the new model against the others.
    `positions` holds NEW, POPULARITY and, when a champion can be scored, CHAMPION_TARGET."""
    log, k, weight = exploration.log, exploration.k, rule.conversion_weight
    values = {}
    for name, position in positions.items():
        value = estimate_policy_value(log, position, k, weight)
        values[name] = PolicyEstimate(value.ips, value.snips, value.pbm)

    def versus(baseline: str) -> dict[str, Interval]:
        return {
            estimator: paired_bootstrap_interval(
                log,
                positions[NEW],
                positions[baseline],
                k,
                estimator=estimator,
                conversion_weight=weight,
                level=rule.level,
                replicates=rule.replicates,
            )
            for estimator in ESTIMATORS
        }

    return CounterfactualEvidence(
        requests=log.n_requests,
        users=len(np.unique(log.user)),
        k=k,
        values=values,
        versus_popularity=versus(POPULARITY),
        versus_champion=versus(CHAMPION_TARGET) if CHAMPION_TARGET in positions else None,
        estimator=rule.estimator,
    )


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict, the rule's inputs, and what to record in MLflow."""

    outcome: GateOutcome
    reason: str
    basis: GateBasis
    exploration_requests: int
    min_exploration_requests: int
    evidence: CounterfactualEvidence | None = None
    champion_version: str | None = None

    def metrics(self) -> dict[str, float]:
        """Run metrics (docs/architecture.md, "Promotion gate")."""
        figures = {GATE_EXPLORATION_REQUESTS_METRIC: float(self.exploration_requests)}
        evidence = self.evidence
        if evidence is None:
            return figures
        for name, value in evidence.values.items():
            for estimator in ESTIMATORS:
                figures[ope_metric_key(name, estimator)] = value.get(estimator)
        comparisons = {POPULARITY: evidence.versus_popularity}
        if evidence.versus_champion is not None:
            comparisons[CHAMPION_TARGET] = evidence.versus_champion
        for baseline, intervals in comparisons.items():
            for method, interval in intervals.items():
                prefix = ope_metric_key(f"new_minus_{baseline}", method)
                figures[prefix] = interval.estimate
                figures[f"{prefix}.low"] = interval.low
                figures[f"{prefix}.high"] = interval.high
        return figures

    def tags(self) -> dict[str, str]:
        """Version tags: the outcome, why, and the figures behind it."""
        tags = {
            GATE_TAG: self.outcome.value,
            GATE_REASON_TAG: self.reason,
            GATE_BASIS_TAG: self.basis.value,
            GATE_MIN_EXPLORATION_TAG: str(self.min_exploration_requests),
        }
        if self.champion_version is not None:
            tags[GATE_CHAMPION_VERSION_TAG] = self.champion_version
        if self.evidence is not None:
            tags[GATE_K_TAG] = str(self.evidence.k)
            decisive = self.evidence.versus_popularity[self.evidence.estimator]
            tags[GATE_LEVEL_TAG] = str(decisive.level)
            tags[GATE_ESTIMATOR_TAG] = self.evidence.estimator
        for name, value in self.metrics().items():
            tags[name] = f"{value:.6g}"
        return tags


def decide_counterfactual(
    evidence: CounterfactualEvidence,
    rule: GateRule,
    *,
    champion_serves: bool,
    champion_version: str | None = None,
) -> GateDecision:
    """The counterfactual rule (module docstring), on the paired intervals of the rule's
    estimator."""
    outcome, reason = _counterfactual_verdict(evidence, rule, champion_serves, champion_version)
    return GateDecision(
        outcome,
        reason,
        GateBasis.COUNTERFACTUAL,
        evidence.requests,
        rule.min_exploration_requests,
        evidence,
        champion_version,
    )


def _counterfactual_verdict(
    evidence: CounterfactualEvidence,
    rule: GateRule,
    champion_serves: bool,
    champion_version: str | None,
) -> tuple[GateOutcome, str]:
    """The outcome and its reason: beat popularity first, then stay within the margin of the
    champion when one could be scored."""
    estimator = evidence.estimator
    popularity = evidence.versus_popularity[estimator]
    versus_popularity = (
        f"new - popularity {estimator.upper()} {popularity.estimate:+.4f} "
        f"[{popularity.low:+.4f}, {popularity.high:+.4f}] ({popularity.level:.0%}, "
        f"{evidence.requests} explore requests, {evidence.users} users)"
    )
    if popularity.low <= 0:
        return GateOutcome.REJECTED, f"{versus_popularity}: lower bound not above 0 (popularity)"
    if evidence.versus_champion is None:
        if champion_serves:
            return (
                GateOutcome.CHALLENGER,
                f"{versus_popularity}; champion v{champion_version} could not be scored on "
                "today's features, so compared to popularity only",
            )
        return (
            GateOutcome.CHAMPION,
            f"{versus_popularity}; no champion yet, so it becomes champion directly",
        )
    champion = evidence.versus_champion[estimator]
    allowed = -rule.margin * evidence.values[CHAMPION_TARGET].get(estimator)
    versus_champion = (
        f"new - champion v{champion_version} {estimator.upper()} {champion.estimate:+.4f} "
        f"[{champion.low:+.4f}, {champion.high:+.4f}]"
    )
    if champion.low > allowed:
        verdict, bound = GateOutcome.CHALLENGER, "above"
    else:
        verdict, bound = GateOutcome.REJECTED, "not above"
    return (
        verdict,
        f"{versus_popularity}; {versus_champion}: lower bound {bound} -margin x champion "
        f"= {allowed:+.4f}",
    )


def decide_without_exploration(
    exploration_requests: int,
    rule: GateRule,
    *,
    champion_serves: bool,
    champion_version: str | None,
    biased_model: dict[str, float],
    biased_popularity: dict[str, float],
) -> GateDecision:
    """Too few explore requests to judge. With a champion serving: its own outcome. Without
    one, nothing serves, so the biased NDCG against popularity decides a first champion."""
    count = (
        f"{exploration_requests} explore requests in the gate window; the gate needs at least "
        f"{rule.min_exploration_requests} (training.promotion.min_exploration_requests)"
    )
    if champion_serves:
        return GateDecision(
            GateOutcome.INSUFFICIENT_EXPLORATION,
            f"{count}; champion v{champion_version} stays, nothing aliased",
            GateBasis.NONE,
            exploration_requests,
            rule.min_exploration_requests,
            champion_version=champion_version,
        )
    ours, theirs = biased_model[rule.metric], biased_popularity[rule.metric]
    outcome = GateOutcome.CHAMPION if ours > theirs else GateOutcome.REJECTED
    verdict = "beats" if ours > theirs else "does not beat"
    return GateDecision(
        outcome,
        f"{count}; no champion yet, so the biased {rule.metric} on all gate-window traffic "
        f"decides: {ours:.4f} {verdict} popularity {theirs:.4f}",
        GateBasis.BIASED_NDCG,
        exploration_requests,
        rule.min_exploration_requests,
    )

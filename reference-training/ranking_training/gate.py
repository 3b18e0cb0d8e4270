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

The champion, on the requests its own version logged, is taken as it served (`as_served`): its
order is in the logged pool.

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

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd
from ranking_features.events import CLICK, CONVERSION
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
    ExplorationLog,
    Interval,
    align_positions,
    estimate_policy_value,
    paired_bootstrap_interval,
    positions_from_scores,
)
from ranking_training.data import LakeData
from ranking_training.features import EncodedEvents

Scorer = Callable[[np.ndarray], np.ndarray]
"""A target policy: scores of feature rows (rows x FEATURE_NAMES), higher ranks first."""

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


@dataclass(frozen=True, eq=False)
class ExplorationSlice:
    """The explore requests of the gate window: the log, and each request's pool."""

    log: ExplorationLog
    # Per request (in the log's request codes): user id, time and pool (item ids, model order).
    request_user_ids: np.ndarray
    request_ts: np.ndarray
    pools: list[np.ndarray]
    k: int
    # Explore requests left out: no propensity in (0, 1], no pool, or a shown item not in it.
    unusable_requests: int
    # Per request: the registry version that ranked it (None when the lake has no version).
    request_model_versions: np.ndarray | None = None

    @property
    def n_requests(self) -> int:
        return self.log.n_requests


def exploration_slice(data: LakeData, start: float, end: float) -> ExplorationSlice | None:
    """The explore impressions with start <= ts < end as an `ExplorationLog`, each row's reward
    from matched feedback (a conversion counts as a click too); None when there are none."""
    rows = data.impressions
    explore = rows[(rows["policy"] == "explore") & (rows["ts"] >= start) & (rows["ts"] < end)]
    if explore.empty:
        return None
    explore = explore.assign(
        request_id=explore["request_id"].astype(str), item_id=explore["item_id"].astype(str)
    )
    usable = _usable_requests(explore)
    unusable = int((~usable).sum())
    explore = explore[explore["request_id"].map(usable).to_numpy(bool)]
    if explore.empty:
        return None
    feedback = data.feedback.dropna(subset=["request_id"])
    key = ["request_id", "item_id"]
    converted = _pairs(feedback[feedback["type"] == CONVERSION], key)
    clicked = _pairs(feedback[feedback["type"] == CLICK], key).union(converted)
    explore = explore.sort_values(["ts", "request_id", "position"], kind="stable")
    pairs = pd.MultiIndex.from_frame(explore[key])
    log = ExplorationLog.from_table(
        explore.assign(
            clicked=pairs.isin(clicked).astype(np.float64),
            converted=pairs.isin(converted).astype(np.float64),
        )
    )
    first = explore.drop_duplicates("request_id").set_index("request_id")
    assert log.request_ids is not None
    first = first.loc[log.request_ids]
    return ExplorationSlice(
        log=log,
        request_user_ids=first["user_id"].to_numpy(),
        request_ts=first["ts"].to_numpy(np.float64),
        pools=[np.asarray(pool, dtype=object) for pool in first["pool"]],
        k=int(log.position.max()),
        unusable_requests=unusable,
        request_model_versions=(
            first["model_version"].astype(object).to_numpy() if "model_version" in first else None
        ),
    )


def _usable_requests(explore: pd.DataFrame) -> pd.Series:
    """Per request_id: whether every row has a propensity in (0, 1] and an item of the
    request's pool (the estimators need both)."""
    in_pool = np.array(
        [
            pool is not None and item in set(pool)
            for item, pool in zip(explore["item_id"], explore["pool"], strict=True)
        ],
        dtype=bool,
    )
    valid = explore["propensity"].between(0, 1, inclusive="right") & in_pool
    return valid.groupby(explore["request_id"], sort=False).all()


def _pairs(feedback: pd.DataFrame, key: list[str]) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(feedback[key].astype(str))


@dataclass(frozen=True, eq=False)
class PoolFeatures:
    """Every (explore request, pool item) row with the features serving would compute."""

    features: np.ndarray
    row_request: np.ndarray  # the log's request code
    row_item: np.ndarray  # the log's item code, -1 for pool items never shown
    row_item_ids: np.ndarray


def pool_features(
    exploration: ExplorationSlice, encoded: EncodedEvents, window_start: float
) -> PoolFeatures:
    """Features of each explore request's pool items, point in time as in training."""
    order = np.argsort(exploration.request_ts, kind="stable")
    sizes = np.array([len(exploration.pools[r]) for r in order], dtype=np.int64)
    row_request = np.repeat(order, sizes)
    # Each pool in item id order, not the logged (model) order: ties in score are broken by row
    # order, and the model's order would hand every tied target the logging policy's ranking
    # (as `build_training_matrix` orders a request's rows, for the same reason).
    items = (
        np.concatenate([np.sort(exploration.pools[r]) for r in order])
        if len(order)
        else np.array([], dtype=object)
    )
    features = encoded.features(
        window_start,
        users=encoded.user_rows(exploration.request_user_ids[order]),
        times=exploration.request_ts[order],
        row_request=np.repeat(np.arange(len(order)), sizes),
        row_items=encoded.item_codes(items),
    )
    log = exploration.log
    assert log.item_ids is not None
    row_item = pd.Index(log.item_ids).get_indexer(pd.Index(items))
    return PoolFeatures(features, row_request, row_item.astype(np.int64), items)


def target_positions(
    exploration: ExplorationSlice, pool: PoolFeatures, scorer: Scorer
) -> np.ndarray:
    """Per log row: the 1-based position the target gives the shown item when it ranks the
    request's pool, 0 when it is outside the target's ranking."""
    scores = np.asarray(scorer(pool.features), dtype=np.float64)
    ranks = positions_from_scores(pool.row_request, scores)
    shown = pool.row_item >= 0
    return align_positions(
        exploration.log, pool.row_request[shown], pool.row_item[shown], ranks[shown]
    )


def as_served(exploration: ExplorationSlice, version: str, rescored: np.ndarray) -> np.ndarray:
    """The champion's positions per log row: on the explore requests its own `version` ranked,
    the shown item's place in the first k of the logged pool, which is the champion's order as
    it served (its frozen snapshot, the client's session, its tie-break); elsewhere `rescored`,
    its ranking of the pool recomputed with the training features (`target_positions`).

    Rescoring alone would judge a champion the service never ran: serving scores with the
    snapshot of the champion's own training run, the gate with the snapshot of each request's
    day, so the two orders drift apart as the champion ages (and differ on unknown items)."""
    versions = exploration.request_model_versions
    if versions is None:
        return rescored
    log = exploration.log
    assert log.item_ids is not None
    own = np.flatnonzero(versions[log.request] == version)
    positions = np.array(rescored, dtype=np.int64, copy=True)
    for row in own:
        top = exploration.pools[log.request[row]][: exploration.k]
        match = np.flatnonzero(top == log.item_ids[log.item[row]])
        positions[row] = match[0] + 1 if len(match) else 0
    return positions


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
    estimator = evidence.estimator
    name = estimator.upper()
    popularity = evidence.versus_popularity[estimator]
    level = f"{popularity.level:.0%}"

    def decision(outcome: GateOutcome, reason: str) -> GateDecision:
        return GateDecision(
            outcome,
            reason,
            GateBasis.COUNTERFACTUAL,
            evidence.requests,
            rule.min_exploration_requests,
            evidence,
            champion_version,
        )

    versus_popularity = (
        f"new - popularity {name} {popularity.estimate:+.4f} "
        f"[{popularity.low:+.4f}, {popularity.high:+.4f}] ({level}, {evidence.requests} "
        f"explore requests, {evidence.users} users)"
    )
    if popularity.low <= 0:
        return decision(
            GateOutcome.REJECTED, f"{versus_popularity}: lower bound not above 0 (popularity)"
        )
    if evidence.versus_champion is None:
        if champion_serves:
            return decision(
                GateOutcome.CHALLENGER,
                f"{versus_popularity}; champion v{champion_version} could not be scored on "
                "today's features, so compared to popularity only",
            )
        return decision(
            GateOutcome.CHAMPION,
            f"{versus_popularity}; no champion yet, so it becomes champion directly",
        )
    champion = evidence.versus_champion[estimator]
    allowed = -rule.margin * evidence.values[CHAMPION_TARGET].get(estimator)
    versus_champion = (
        f"new - champion v{champion_version} {name} {champion.estimate:+.4f} "
        f"[{champion.low:+.4f}, {champion.high:+.4f}]"
    )
    if champion.low > allowed:
        return decision(
            GateOutcome.CHALLENGER,
            f"{versus_popularity}; {versus_champion}: lower bound above -margin x champion "
            f"= {allowed:+.4f}",
        )
    return decision(
        GateOutcome.REJECTED,
        f"{versus_popularity}; {versus_champion}: lower bound not above -margin x champion "
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

"""The counterfactual gate's rule on hand-built exploration logs, and label maturity."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from ranking_training.data import load_lake
from ranking_training.exploration_log import ExplorationLog
from ranking_training.gate import (
    CHAMPION_TARGET,
    NEW,
    POPULARITY,
    GateOutcome,
    GateRule,
    decide_counterfactual,
    decide_without_exploration,
    estimate_targets,
)
from ranking_training.gate_exploration import exploration_slice
from ranking_training.metrics import ranking_metrics

from recplat.simulation.lake import WorldLake
from recplat.simulation.traffic import TrafficSettings, random_scorer
from recplat.simulation.truth import World, WorldParams

pytestmark = pytest.mark.fast

# Two items per pool, one shown (k = 1, m = 2): A is the champion's first choice, but B is what
# users click: P(click | shown at 1) is 0.1 for A and 0.3 for B.
CLICK_A, CLICK_B = 0.1, 0.3
REQUESTS = 2000


def _log_where_the_champion_and_the_truth_disagree() -> tuple[ExplorationLog, np.ndarray]:
    """Explore requests showing A or B uniformly (propensity 1/2), clicks at the exact rates
    (the first `rate x shown` requests of each item click), one user per request; and per row
    whether the shown item is A."""
    shows_a = np.arange(REQUESTS) % 2 == 0
    clicked = np.zeros(REQUESTS)
    for item, rate in ((shows_a, CLICK_A), (~shows_a, CLICK_B)):
        rows = np.flatnonzero(item)
        clicked[rows[: int(rate * len(rows))]] = 1.0
    log = ExplorationLog(
        request=np.arange(REQUESTS),
        user=np.arange(REQUESTS),
        item=np.where(shows_a, 0, 1),
        position=np.ones(REQUESTS, dtype=np.int64),
        propensity=np.full(REQUESTS, 0.5),
        clicked=clicked,
        converted=np.zeros(REQUESTS),
        n_requests=REQUESTS,
        n_users=REQUESTS,
    )
    return log, shows_a


def _first_choice(log: ExplorationLog, shows_a: np.ndarray, prefers_a: bool) -> np.ndarray:
    """Target positions of a policy that puts A (or B) first: 1 on the rows showing it."""
    return np.where(shows_a == prefers_a, 1, 0)


def _slice(log: ExplorationLog) -> object:
    from ranking_training.gate_exploration import ExplorationSlice

    return ExplorationSlice(
        log=log,
        request_user_ids=np.arange(REQUESTS).astype(str),
        request_ts=np.zeros(REQUESTS),
        pools=[np.array(["A", "B"], dtype=object)] * REQUESTS,
        k=1,
        unusable_requests=0,
    )


def _decide(new_prefers_a: bool, champion_prefers_a: bool) -> tuple[GateOutcome, str]:
    log, shows_a = _log_where_the_champion_and_the_truth_disagree()
    positions = {
        NEW: _first_choice(log, shows_a, new_prefers_a),
        CHAMPION_TARGET: _first_choice(log, shows_a, champion_prefers_a),
        # Popularity cannot tell them apart here: a coin flip per request.
        POPULARITY: np.where(shows_a == (np.arange(REQUESTS) % 4 < 2), 1, 0),
    }
    evidence = estimate_targets(_slice(log), positions, GateRule())  # type: ignore[arg-type]
    decision = decide_counterfactual(
        evidence, GateRule(), champion_serves=True, champion_version="1"
    )
    return decision.outcome, decision.reason


def test_plain_ndcg_on_the_champions_traffic_prefers_the_champion_against_the_truth() -> None:
    # Exploit traffic: the champion shows A above B; users examine position 2 rarely
    # (cascade), so A collects the clicks: 0.1 at position 1 against 0.3 x 0.2 at position 2.
    requests = 1000
    labels = np.zeros(2 * requests)
    labels[0 : 2 * requests : 20] = 1  # A clicked in 10 % of requests
    labels[3 : 2 * requests : 34] = 1  # B clicked in ~6 %
    groups = np.full(requests, 2)
    champion = np.tile([1.0, 0.0], requests)
    logged_order_wins = ranking_metrics(labels, champion, groups)["ndcg@10"]
    truth_order = ranking_metrics(labels, -champion, groups)["ndcg@10"]
    assert logged_order_wins > truth_order


def test_a_new_model_that_ranks_by_the_truth_passes_where_the_champion_is_wrong() -> None:
    outcome, reason = _decide(new_prefers_a=False, champion_prefers_a=True)
    assert outcome is GateOutcome.CHALLENGER, reason
    assert "new - champion v1 PBM +0.2" in reason


def test_a_new_model_that_follows_the_champions_mistake_against_a_right_champion_is_rejected() -> (
    None
):
    outcome, reason = _decide(new_prefers_a=True, champion_prefers_a=False)
    assert outcome is GateOutcome.REJECTED, reason
    assert "lower bound not above" in reason


def test_without_a_champion_beating_popularity_makes_the_first_champion() -> None:
    log, shows_a = _log_where_the_champion_and_the_truth_disagree()
    positions = {
        NEW: _first_choice(log, shows_a, False),
        POPULARITY: np.where(shows_a == (np.arange(REQUESTS) % 4 < 2), 1, 0),
    }
    evidence = estimate_targets(_slice(log), positions, GateRule())  # type: ignore[arg-type]
    decision = decide_counterfactual(evidence, GateRule(), champion_serves=False)
    assert decision.outcome is GateOutcome.CHAMPION, decision.reason
    assert decision.tags()["gate"] == "champion"
    assert float(decision.tags()["ope.new_minus_popularity.pbm.low"]) > 0


def test_too_little_exploration_with_a_champion_is_its_own_outcome_naming_count_and_minimum() -> (
    None
):
    decision = decide_without_exploration(
        12,
        GateRule(min_exploration_requests=300),
        champion_serves=True,
        champion_version="3",
        biased_model={"ndcg@10": 0.9},
        biased_popularity={"ndcg@10": 0.1},
    )
    assert decision.outcome is GateOutcome.INSUFFICIENT_EXPLORATION
    assert decision.reason.startswith(
        "12 explore requests in the gate window; the gate needs at least 300 "
        "(training.promotion.min_exploration_requests)"
    )
    assert decision.tags()["gate"] == "insufficient_exploration"


def test_without_exploration_or_champion_the_biased_ndcg_decides_a_first_champion() -> None:
    rule = GateRule(min_exploration_requests=300)
    wins, loses = (
        decide_without_exploration(
            0,
            rule,
            champion_serves=False,
            champion_version=None,
            biased_model={"ndcg@10": model},
            biased_popularity={"ndcg@10": 0.45},
        )
        for model in (0.5, 0.4)
    )
    assert (wins.outcome, wins.tags()["gate.basis"]) == (GateOutcome.CHAMPION, "biased_ndcg")
    assert loses.outcome is GateOutcome.REJECTED


def _small_world_lake(tmp_path: Path) -> tuple[WorldLake, str]:
    world = World.build(WorldParams(users=200, items=120, days=3, seed=4))
    lake = WorldLake(world, TrafficSettings(requests_per_day=300, candidates=30, k=5))
    uri = (tmp_path / "lake").as_uri()
    lake.play(random_scorer(0), range(3), uri, seed=1)
    return lake, uri


def test_label_maturity_leaves_out_impressions_newer_than_the_cut_off(tmp_path: Path) -> None:
    lake, uri = _small_world_lake(tmp_path)
    everything = load_lake(uri, date(2025, 1, 1), date(2025, 1, 3))
    cut_off = lake.day_start(2) + 6 * 3600
    mature = load_lake(uri, date(2025, 1, 1), date(2025, 1, 3), mature_before=cut_off)
    assert everything.impressions["ts"].max() >= cut_off
    assert mature.impressions["ts"].max() < cut_off
    assert mature.window_end == cut_off
    dropped = len(everything.impressions) - len(mature.impressions)
    assert mature.immature_impressions == dropped > 0
    # Feedback on the left-out impressions is the next run's, not "unmatched".
    assert mature.unmatched_feedback == everything.unmatched_feedback == 0


def test_the_exploration_slice_reads_the_world_lakes_explore_requests(tmp_path: Path) -> None:
    _, uri = _small_world_lake(tmp_path)
    data = load_lake(uri, date(2025, 1, 1), date(2025, 1, 3))
    explore = data.impressions[data.impressions["policy"] == "explore"]
    exploration = exploration_slice(data, data.window_start, data.window_end)
    assert exploration is not None
    assert exploration.n_requests == explore["request_id"].nunique() > 0
    assert exploration.unusable_requests == 0 and exploration.k == 5
    assert np.allclose(exploration.log.propensity, 1 / 10)
    assert all(len(pool) == 10 for pool in exploration.pools)
    # Rewards are the matched clicks of those impressions.
    assert exploration.log.clicked.sum() > 0

"""Counterfactual estimators: exact values on hand-built logs, exact exploration propensities,
the truth's preference where NDCG on logged clicks prefers the champion, and intervals that
cover the simulator's known truth at their nominal rate."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from ranking_training.counterfactual import (
    bootstrap_interval,
    estimate_policy_value,
    ips,
    paired_bootstrap_interval,
    pbm,
    snips,
)
from ranking_training.exploration_log import (
    ExplorationLog,
    ExplorationLogError,
    align_positions,
    positions_from_scores,
)
from ranking_training.exploration_schemes import (
    plackett_luce_marginals,
    sample_uniform_top_m,
    uniform_top_m_propensities,
)
from ranking_training.metrics import ranking_metrics

from recplat.simulation.truth import World, WorldParams

pytestmark = pytest.mark.fast

# Three exploration requests, two users; r3 shows D at position 3, beyond k = 2.
SMALL_LOG = pd.DataFrame(
    {
        "request_id": ["r1", "r1", "r2", "r2", "r3", "r3", "r3"],
        "user_id": ["ua", "ua", "ua", "ua", "ub", "ub", "ub"],
        "item_id": ["A", "B", "B", "A", "C", "A", "D"],
        "position": [1, 2, 1, 2, 1, 2, 3],
        "propensity": [0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2],
        "clicked": [1, 1, 1, 1, 1, 0, 1],
        "converted": [1, 0, 0, 1, 0, 0, 0],
    }
)
# The target's scores for every candidate, shown or not (E was a candidate nobody saw).
TARGET_SCORES = pd.DataFrame(
    {
        "request_id": ["r1", "r1", "r2", "r2", "r3", "r3", "r3", "r3"],
        "item_id": ["A", "B", "A", "B", "C", "A", "D", "E"],
        "score": [0.9, 0.5, 0.9, 0.5, 0.9, 0.8, 0.1, 0.0],
    }
)


def _target_positions(log: ExplorationLog, scores: pd.DataFrame) -> np.ndarray:
    assert log.request_ids is not None and log.item_ids is not None
    request = pd.Index(log.request_ids).get_indexer(scores["request_id"])
    item = pd.Index(log.item_ids).get_indexer(scores["item_id"])
    ranked = positions_from_scores(request, scores["score"].to_numpy())
    shown = item >= 0  # E was never shown, so it has no code in the log
    return align_positions(log, request[shown], item[shown], ranked[shown])


def test_ips_and_snips_equal_hand_computed_values_on_a_small_log() -> None:
    log = ExplorationLog.from_table(SMALL_LOG)
    target = _target_positions(log, TARGET_SCORES)
    # The target ranks r1: A, B; r2: A, B; r3: C, A, D, E.
    assert target.tolist() == [1, 2, 2, 1, 1, 2, 3]
    # Matched rows (target position == logged position <= 2): r1 A@1 and B@2 (weight 2), r3
    # C@1 and A@2 (weight 4); r2 showed both items where the target would not.
    assert ips(log, target, k=2) == pytest.approx((2 * 1 + 2 * 1 + 4 * 1 + 4 * 0) / 3)
    # Per position: p1 (2*1 + 4*1) / (2 + 4) = 1; p2 (2*1 + 4*0) / (2 + 4) = 1/3.
    assert snips(log, target, k=2) == pytest.approx(1.0 + 1.0 / 3.0)
    # Clicks + 2 * conversions: r1's A converted, so its reward is 3.
    assert ips(log, target, k=2, conversion_weight=2.0) == pytest.approx((6 + 2 + 4 + 0) / 3)
    assert snips(log, target, k=2, conversion_weight=2.0) == pytest.approx(10 / 6 + 2 / 6)
    # k = 3 adds D@3 of r3 (weight 5); SNIPS's third position has only that row.
    assert ips(log, target, k=3) == pytest.approx((2 + 2 + 4 + 0 + 5) / 3)
    assert snips(log, target, k=3) == pytest.approx(1.0 + 1.0 / 3.0 + 1.0)
    value = estimate_policy_value(log, target, k=2)
    assert value.matched_rows == 4
    assert value.weight_per_request.tolist() == pytest.approx([2.0, 2.0])


def test_pbm_equals_the_hand_computed_value_on_a_small_log() -> None:
    log = ExplorationLog.from_table(SMALL_LOG)
    target = _target_positions(log, TARGET_SCORES)
    # Examination by logged position (clicks / rows): p1 3/3, p2 2/3, p3 1/1.
    # P(shown) = propensity x list length: 1 for r1 and r2, 0.75 for r3's C and A.
    # Target position 1: r1 A@1, r2 A@2, r3 C@1 -> e(1) x (1 + 1 + 4/3) / (1 + 2/3 + 4/3).
    # Target position 2: r1 B@2, r2 B@1, r3 A@2 (no click) -> e(2) x 2 / (2/3 + 1 + 8/9).
    expected = 1.0 * (10 / 3) / 3 + (2 / 3) * 2 / (23 / 9)
    assert pbm(log, target, k=2) == pytest.approx(expected)
    assert estimate_policy_value(log, target, k=2).pbm == pytest.approx(expected)
    # The target that swaps every pair: the same row sets, each weighed by the other position's
    # examination, e(1) x 2 / (23/9) + e(2) x (10/3) / 3.
    swapped = np.where(target == 1, 2, np.where(target == 2, 1, target))
    assert pbm(log, swapped, k=2) == pytest.approx(18 / 23 + 20 / 27)


def test_a_log_from_arrow_equals_the_log_from_pandas() -> None:
    from_arrow = ExplorationLog.from_table(pa.Table.from_pandas(SMALL_LOG))
    target = _target_positions(from_arrow, TARGET_SCORES)
    assert ips(from_arrow, target, k=2) == pytest.approx(8 / 3)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("propensity", 0.0, "exploration log: propensity: expected probabilities in (0, 1]"),
        ("position", 0, "exploration log: position: expected 1-based positions >= 1"),
        ("user_id", "uz", "exploration log: user_id: expected one user per request_id"),
    ],
)
def test_a_bad_log_is_refused_naming_the_column(
    column: str, value: float | str, message: str
) -> None:
    bad = SMALL_LOG.copy()
    bad.loc[1, column] = value
    with pytest.raises(ExplorationLogError, match=message.replace("(", r"\(").replace("]", r"\]")):
        ExplorationLog.from_table(bad)


def test_an_empty_log_is_refused_rather_than_estimated_as_nan() -> None:
    log = ExplorationLog.from_table(SMALL_LOG.iloc[:0])
    with pytest.raises(ExplorationLogError, match="request_id: expected requests, got none"):
        ips(log, np.zeros(0, dtype=np.int64), k=2)


def test_a_log_without_a_required_column_is_refused_naming_it() -> None:
    with pytest.raises(ExplorationLogError, match="exploration log: propensity: expected columns"):
        ExplorationLog.from_table(SMALL_LOG.drop(columns="propensity"))


@pytest.mark.parametrize(("m", "k"), [(2, 2), (3, 2), (4, 3), (5, 5)])
def test_uniform_top_m_propensities_are_the_exact_marginals_of_every_permutation(
    m: int, k: int
) -> None:
    """Enumerate every k-permutation of the top m (all equally likely under the scheme)."""
    counts = np.zeros((m, k))
    permutations = list(itertools.permutations(range(m), k))
    for shown in permutations:
        counts[list(shown), np.arange(k)] += 1
    exact = counts / len(permutations)
    assert uniform_top_m_propensities(m, k) == pytest.approx(exact)
    assert exact.sum(axis=0) == pytest.approx(np.ones(k))  # each position shows one item


def test_the_uniform_sampler_draws_those_marginals() -> None:
    m, k, n = 4, 3, 40_000
    rng = np.random.default_rng(3)
    shown, propensity = sample_uniform_top_m(np.tile(np.arange(m), (n, 1)), k, rng)
    frequency = np.stack([(shown == rank).mean(axis=0) for rank in range(m)])
    # Each frequency has sd sqrt(p(1-p)/n) ~ 0.0022; allow 5 sd.
    assert np.abs(frequency - 1.0 / m).max() < 5 * math.sqrt(0.25 * 0.75 / n)
    assert (propensity == 1.0 / m).all()
    assert all(len(set(row)) == k for row in shown[:100].tolist())


def test_plackett_luce_marginals_first_position_exact_and_later_ones_within_noise() -> None:
    scores = np.array([[2.0, 1.0, 0.0, -1.0]])
    m, k, samples = 4, 3, 20_000
    exact = np.zeros((m, k))
    weights = np.exp(scores[0])
    for order in itertools.permutations(range(m), k):
        left, probability = weights.sum(), 1.0
        for item in order:
            probability *= weights[item] / left
            left -= weights[item]
        exact[list(order), np.arange(k)] += probability
    assert exact.sum(axis=0) == pytest.approx(np.ones(k))
    estimated = plackett_luce_marginals(scores, k, np.random.default_rng(5), samples)[0]
    assert estimated[:, 0] == pytest.approx(exact[:, 0], abs=1e-12)
    noise = np.sqrt(exact * (1 - exact) / samples)
    assert (np.abs(estimated - exact) <= 5 * noise + 1e-9).all()
    assert estimated.sum(axis=0) == pytest.approx(np.ones(k))


def test_estimate_prefers_what_the_truth_prefers_where_ndcg_on_logged_clicks_prefers_the_champion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two items; the champion ranks A over B, the truth prefers B (attraction 0.4 vs 0.2);
    position 2 is examined 30% of the time. The logs hold exactly their expected click counts."""

    def requests(order: str, clicks: dict[str, int], first: int) -> pd.DataFrame:
        """1,000 requests shown `order`; consecutive requests click each item `clicks` times."""
        clicked_by, start = {}, 0
        for item, count in clicks.items():
            clicked_by[item] = range(start, start + count)
            start += count
        rows = [
            {
                "request_id": f"r{first + r}",
                "user_id": f"u{first + r}",
                "item_id": item,
                "position": position,
                "propensity": 0.5,
                "clicked": int(r in clicked_by[item]),
            }
            for r in range(1_000)
            for position, item in enumerate(order, start=1)
        ]
        return pd.DataFrame(rows)

    # The champion served A, B to 1,000 requests: 1,000 * 0.2 clicks on A, 1,000 * 0.4 * 0.3 on B.
    served = requests("AB", {"A": 200, "B": 120}, 0)
    labels = served["clicked"].to_numpy(np.float64)
    champion_scores = (served["item_id"] == "A").to_numpy(np.float64)
    sizes = np.full(1_000, 2)
    ndcg_champion = ranking_metrics(labels, champion_scores, sizes)["ndcg@10"]
    ndcg_new = ranking_metrics(labels, 1.0 - champion_scores, sizes)["ndcg@10"]

    # Exploration shuffled the two: half A, B; half B, A (propensity 1/2 each).
    explored = pd.concat(
        [requests("AB", {"A": 200, "B": 120}, 1_000), requests("BA", {"B": 400, "A": 60}, 2_000)]
    )
    log = ExplorationLog.from_table(explored)
    a_first = np.where(log.item == log.item[0], 1, 2)  # item code 0 is A
    value_champion = ips(log, a_first, k=2)
    value_new = ips(log, 3 - a_first, k=2)
    difference = paired_bootstrap_interval(log, 3 - a_first, a_first, k=2, estimator="ips")
    with capsys.disabled():
        print(
            f"\nNDCG@10 on the champion's clicks: champion {ndcg_champion:.3f}, new {ndcg_new:.3f}"
            f"\nIPS clicks per request: champion {value_champion:.3f} (truth 0.32), new "
            f"{value_new:.3f} (truth 0.46); new - champion in [{difference.low:.3f}, "
            f"{difference.high:.3f}]"
        )
    assert ndcg_champion > ndcg_new
    assert value_champion == pytest.approx(0.2 + 0.4 * 0.3)
    assert value_new == pytest.approx(0.4 + 0.2 * 0.3)
    assert difference.low > 0


def _binomial_tail(n: int, p: float, at_most: int) -> float:
    """P(Binomial(n, p) <= at_most)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(at_most + 1))


def _lowest_count(n: int, p: float, flake: float) -> int:
    """The largest c with P(Binomial(n, p) < c) <= flake: counts below it are implausible."""
    c = 0
    while _binomial_tail(n, p, c) <= flake:
        c += 1
    return c


COVERAGE_RUNS = 200


@pytest.fixture(scope="module")
def position_based_world() -> World:
    """stop_after_click = 1 - patience: the cascade is position-based, so IPS is unbiased and
    coverage measures the interval alone, not the estimator's model error."""
    return World.build(
        WorldParams(users=400, items=150, days=5, seed=21, stop_after_click=0.2, patience=0.8)
    )


def test_bootstrap_intervals_cover_the_known_truth_at_their_nominal_rate(
    position_based_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """200 logs of 1,500 requests; 95% and 50% user-clustered intervals for the champion, a
    re-ranking of its top m, and their paired difference. The bounds allow a true coverage
    0.03 below nominal (percentile bootstraps of ratio estimators undercover a little at this
    size) at a 1-in-1000 flake rate; the 50% interval also checks they are not too wide."""
    world, k, m = position_based_world, 5, 10
    champion = world.rankings(world.noisy_scores(1.5, seed=1), m)
    new = world.rerank(world.noisy_scores(0.5, seed=2), champion, k)
    truth = {"champion": world.true_ctr(champion, k), "new": world.true_ctr(new, k)}
    truth["new - champion"] = truth["new"] - truth["champion"]
    covered = {(name, level): 0 for name in truth for level in (0.95, 0.5)}
    for run in range(COVERAGE_RUNS):
        explored = world.exploration_log(champion, 1_500, k, m, seed=1_000 + run)
        positions = {
            n: explored.target_positions(r) for n, r in (("champion", champion), ("new", new))
        }
        for level in (0.95, 0.5):
            intervals = {
                name: bootstrap_interval(
                    explored.log, positions[name], k, level=level, replicates=200, seed=run
                )
                for name in ("champion", "new")
            }
            intervals["new - champion"] = paired_bootstrap_interval(
                explored.log,
                positions["new"],
                positions["champion"],
                k,
                level=level,
                replicates=200,
                seed=run,
            )
            for name, interval in intervals.items():
                covered[name, level] += interval.contains(truth[name])
    with capsys.disabled():
        print("\ncoverage over", COVERAGE_RUNS, "runs:", covered)
    low95 = _lowest_count(COVERAGE_RUNS, 0.92, 1e-3)
    low50 = _lowest_count(COVERAGE_RUNS, 0.47, 1e-3)
    high50 = COVERAGE_RUNS - _lowest_count(COVERAGE_RUNS, 1 - 0.53, 1e-3)
    for name in truth:
        assert covered[name, 0.95] >= low95, (name, covered[name, 0.95], low95)
        assert low50 <= covered[name, 0.5] <= high50, (name, covered[name, 0.5], low50, high50)


def test_bca_and_poisson_intervals_agree_with_the_percentile_one_on_a_large_log(
    position_based_world: World,
) -> None:
    world, k, m = position_based_world, 5, 10
    champion = world.rankings(world.noisy_scores(1.5, seed=1), m)
    explored = world.exploration_log(champion, 5_000, k, m, seed=7)
    positions = explored.target_positions(champion)
    percentile = bootstrap_interval(explored.log, positions, k, replicates=2_000)
    bca = bootstrap_interval(explored.log, positions, k, replicates=2_000, method="bca")
    poisson = bootstrap_interval(explored.log, positions, k, replicates=2_000, resampling="poisson")
    width = percentile.high - percentile.low
    for other in (bca, poisson):
        assert other.estimate == percentile.estimate
        assert abs(other.low - percentile.low) < 0.15 * width
        assert abs(other.high - percentile.high) < 0.15 * width

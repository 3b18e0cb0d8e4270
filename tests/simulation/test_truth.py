"""The simulated world: its exact truth agrees with its sampled clicks, its click model is a
cascade (not a position curve), items arrive over days, exploration logs carry exact
propensities, and where the truth and NDCG on the champion's clicks disagree, the
counterfactual estimate sides with the truth."""

from __future__ import annotations

import numpy as np
import pytest
from ranking_training.counterfactual import estimate_policy_value, paired_bootstrap_interval
from ranking_training.metrics import ranking_metrics

from recplat.simulation.truth import World, WorldParams

pytestmark = pytest.mark.fast


@pytest.fixture(scope="module")
def world() -> World:
    return World.build(WorldParams(users=500, items=200, days=6, seed=5))


def test_a_world_is_a_deterministic_function_of_its_parameters() -> None:
    params = WorldParams(users=50, items=40, days=3, seed=9)
    first, again = World.build(params), World.build(params)
    assert np.array_equal(first.true_scores(), again.true_scores())
    assert np.array_equal(first.item_arrival_day, again.item_arrival_day)
    assert not np.array_equal(
        first.true_scores(), World.build(WorldParams(50, 40, 3, 10)).true_scores()
    )


def test_true_ctr_equals_the_mean_of_sampled_clicks(world: World) -> None:
    k = 10
    rankings = world.rankings(world.noisy_scores(1.0, seed=1), k)
    served = world.serve(rankings, 40_000, k, seed=2)
    clicks = served.clicked.sum(axis=1)
    standard_error = clicks.std() / np.sqrt(len(clicks))
    assert abs(clicks.mean() - world.true_ctr(rankings, k)) < 4 * standard_error
    reward = clicks + 3.0 * served.converted.sum(axis=1)
    truth = world.true_ctr(rankings, k, conversion_weight=3.0)
    assert abs(reward.mean() - truth) < 4 * reward.std() / np.sqrt(len(reward))


def test_sampled_clicks_per_position_match_the_exact_cascade(world: World) -> None:
    rng = np.random.default_rng(3)
    users = np.full(50_000, 7)
    shown = np.tile(np.argsort(-world.true_scores()[7])[:6], (50_000, 1))
    clicked, _ = world.sample_clicks(users, shown, rng)
    exact = world.click_probabilities(users[:1], shown[:1])[0]
    noise = np.sqrt(exact * (1 - exact) / 50_000)
    assert (np.abs(clicked.mean(axis=0) - exact) < 5 * noise).all()


def test_a_click_above_lowers_the_chance_of_clicks_below() -> None:
    """The cascade, unlike a position curve: what is shown above changes a position's clicks."""
    world = World.build(WorldParams(users=20, items=50, days=1, seed=3))
    user = np.array([0])
    attraction = world.attraction(np.zeros(50, dtype=np.int64), np.arange(50))
    best, worst, middle = int(attraction.argmax()), int(attraction.argmin()), 25
    below_best = world.click_probabilities(user, np.array([[best, middle]]))[0, 1]
    below_worst = world.click_probabilities(user, np.array([[worst, middle]]))[0, 1]
    assert below_best < below_worst


def test_stop_after_click_of_one_minus_patience_is_a_position_based_model() -> None:
    world = World.build(
        WorldParams(users=20, items=50, days=1, seed=3, stop_after_click=0.3, patience=0.7)
    )
    shown = np.array([[3, 1, 4, 15, 9]])
    attraction = world.attraction(np.array([[2]]), shown)[0]
    exact = world.click_probabilities(np.array([2]), shown)[0]
    assert exact == pytest.approx(attraction * 0.7 ** np.arange(5))


def test_new_items_arrive_over_days_and_are_never_shown_before(world: World) -> None:
    available = world.available()
    per_day = available.sum(axis=1)
    assert per_day[0] == pytest.approx(0.6 * world.params.items, rel=0.15)
    assert (np.diff(per_day) >= 0).all() and per_day[-1] == world.params.items
    rankings = world.rankings(world.true_scores(), 10)
    days = np.arange(world.params.days)[:, None, None]
    assert available[days, rankings].all()
    # New items are not ignored: the oracle shows some of them once they arrive.
    assert (world.item_arrival_day[rankings[-1]] > 0).any()


def test_better_models_earn_more_true_clicks_and_popularity_is_a_real_baseline(
    world: World,
) -> None:
    k = 10
    ctr = {
        name: world.true_ctr(world.rankings(scores, k), k)
        for name, scores in (
            ("oracle", world.true_scores()),
            ("good", world.noisy_scores(0.5, seed=1)),
            ("poor", world.noisy_scores(2.0, seed=1)),
            ("popularity", world.popularity_scores()),
            ("random", world.noisy_scores(1e6, seed=1)),
        )
    }
    assert ctr["oracle"] > ctr["good"] > ctr["popularity"] > ctr["random"]
    assert ctr["good"] > ctr["poor"] > ctr["random"]


def test_exploration_shows_only_the_logging_top_m_with_propensity_one_over_m(
    world: World,
) -> None:
    k, m = 5, 8
    logging = world.rankings(world.noisy_scores(1.0, seed=1), m)
    explored = world.exploration_log(logging, 20_000, k, m, seed=4)
    top = logging[explored.request_day, explored.request_user]
    rank = np.argmax(top[:, :, None] == explored.shown[:, None, :], axis=1)
    assert (top[np.arange(len(top))[:, None], rank] == explored.shown).all()
    assert (explored.log.propensity == 1.0 / m).all()
    # Every logging rank appears at every position about 1/m of the time.
    share = np.stack([(rank == r).mean(axis=0) for r in range(m)])
    assert np.abs(share - 1.0 / m).max() < 5 * np.sqrt((1 / m) * (1 - 1 / m) / 20_000)
    # The logging policy is in its own support: its positions are found for every shown row
    # that it ranks in the top k.
    positions = explored.target_positions(logging)
    assert ((positions > 0) == (rank.ravel() < k)).all()


def test_counterfactual_estimate_sides_with_the_truth_where_ndcg_on_logged_clicks_does_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The champion serves its own order; a better model re-ranks the champion's top 20. NDCG
    on the clicks the champion's order drew prefers the champion; the truth and the paired
    IPS / SNIPS difference on the exploration slice prefer the new model."""
    world, k, m = World.build(WorldParams(users=800, items=300, days=7, seed=0)), 10, 20
    champion_scores, new_scores = world.noisy_scores(1.0, seed=1), world.noisy_scores(0.5, seed=2)
    champion = world.rankings(champion_scores, m)
    new = world.rerank(new_scores, champion, k)

    served = world.serve(champion, 5_000, k, seed=3)
    labels = served.clicked.ravel().astype(np.float64)
    users, items = np.repeat(served.users, k), served.shown.ravel()
    sizes = np.full(len(served.users), k)
    ndcg_champion = ranking_metrics(labels, champion_scores[users, items], sizes)["ndcg@10"]
    ndcg_new = ranking_metrics(labels, new_scores[users, items], sizes)["ndcg@10"]

    explored = world.exploration_log(champion, 20_000, k, m, seed=4)
    at_champion, at_new = explored.target_positions(champion), explored.target_positions(new)
    value_champion = estimate_policy_value(explored.log, at_champion, k)
    value_new = estimate_policy_value(explored.log, at_new, k)
    difference = {
        estimator: paired_bootstrap_interval(
            explored.log, at_new, at_champion, k, estimator=estimator
        )
        for estimator in ("ips", "snips")
    }
    truth_champion, truth_new = world.true_ctr(champion, k), world.true_ctr(new, k)
    with capsys.disabled():
        print(
            f"\ntrue clicks/request: champion {truth_champion:.3f}, new {truth_new:.3f}"
            f"\nNDCG@10 on the champion's clicks: champion {ndcg_champion:.4f}, new {ndcg_new:.4f}"
            f"\nIPS: champion {value_champion.ips:.3f}, new {value_new.ips:.3f}; SNIPS: champion "
            f"{value_champion.snips:.3f}, new {value_new.snips:.3f}"
            + "".join(
                f"\n{name} new - champion: {i.estimate:.3f} [{i.low:.3f}, {i.high:.3f}]"
                for name, i in difference.items()
            )
        )
    assert truth_new > truth_champion
    assert ndcg_champion > ndcg_new
    assert value_new.ips > value_champion.ips and value_new.snips > value_champion.snips
    assert difference["ips"].low > 0 and difference["snips"].low > 0

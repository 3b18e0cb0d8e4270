"""Which users an online experiment's challenger gets (docs/architecture.md, "Online
experiments"), in process: the salted bucket (`ranking_features.assignment`), the service's
choice of model (`ranking_service.variant_split`) and the evaluator's recomputed arm, which must
agree user by user. The split over real HTTP is in test_variant_split.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import numpy as np
import pytest
from ranking_features.assignment import (
    CHALLENGER_ARM,
    CHAMPION_ARM,
    experiment_arm,
    experiment_bucket,
)
from ranking_service.model_store import RankingModel, ServedModels
from ranking_service.variant_split import choose_model, experiment_started_at, running_experiment

from recplat.testing.rankers import tiny_snapshot, train_ranker

pytestmark = pytest.mark.fast

USERS = [f"user-{n}" for n in range(20_000)]
EXPERIMENT = "exp-shop-v2-20261201T000000Z"
SHARE = 0.3


def within_four_sigma(count: int, trials: int, p: float) -> bool:
    return abs(count - trials * p) <= 4 * math.sqrt(trials * p * (1 - p))


# ------------------------------------------------------------------- the salted bucket
def test_a_bucket_is_the_documented_hash_so_any_evaluator_can_recompute_it() -> None:
    digest = hashlib.blake2b(f"{EXPERIMENT}:user-7".encode(), digest_size=8).digest()
    assert experiment_bucket(EXPERIMENT, "user-7") == int.from_bytes(digest, "big") / 2.0**64
    assert experiment_bucket(EXPERIMENT, "user-7") == experiment_bucket(EXPERIMENT, "user-7")


@pytest.mark.parametrize("share", [0.01, 0.1, 0.3, 0.5])
def test_the_challenger_gets_the_configured_share_of_users(share: float) -> None:
    buckets = np.array([experiment_bucket(EXPERIMENT, u) for u in USERS])
    assert ((buckets >= 0) & (buckets < 1)).all()
    assert within_four_sigma(int((buckets < share).sum()), len(USERS), share)


def test_a_user_at_exactly_the_share_is_in_the_champion_arm() -> None:
    bucket = experiment_bucket(EXPERIMENT, "user-42")
    assert experiment_arm(EXPERIMENT, "user-42", bucket) == CHAMPION_ARM
    assert experiment_arm(EXPERIMENT, "user-42", float(np.nextafter(bucket, 1))) == CHALLENGER_ARM


def test_more_traffic_only_adds_users_to_the_challenger() -> None:
    arms = {
        share: {u for u in USERS[:5_000] if experiment_arm(EXPERIMENT, u, share) == CHALLENGER_ARM}
        for share in (0.0, 0.05, 0.2, 0.5)
    }
    assert arms[0.0] == set()
    assert arms[0.0] <= arms[0.05] <= arms[0.2] <= arms[0.5]
    assert len(arms[0.05]) < len(arms[0.2]) < len(arms[0.5])


def test_a_new_experiment_reshuffles_the_users_independently() -> None:
    first = {u for u in USERS if experiment_arm(EXPERIMENT, u, SHARE) == CHALLENGER_ARM}
    second = {
        u
        for u in USERS
        if experiment_arm("exp-shop-v3-20261208T000000Z", u, SHARE) == CHALLENGER_ARM
    }
    # Independent splits share about SHARE of one arm with the other, not all of it.
    assert within_four_sigma(len(first & second), len(first), SHARE)


# --------------------------------------------------------- the service's choice of model
@pytest.fixture(scope="module")
def models() -> tuple[RankingModel, RankingModel]:
    snapshot = tiny_snapshot()
    champion = RankingModel(
        name="shop-ranker", version="1", alias="champion", run_id="r1",
        booster=train_ranker(seed=1), snapshot=snapshot, registered_at=0.0,
    )  # fmt: skip
    challenger = dataclasses.replace(
        champion, version="2", alias="challenger", booster=train_ranker(seed=2)
    )
    return champion, challenger


def served(
    models: tuple[RankingModel, RankingModel],
    experiment_id: str | None,
    started_at: float | None = None,
) -> ServedModels:
    champion, challenger = models
    return ServedModels(
        champion,
        dataclasses.replace(
            challenger, experiment_id=experiment_id, experiment_started_at=started_at
        ),
    )


def test_the_service_and_the_evaluator_put_every_user_in_the_same_arm(
    models: tuple[RankingModel, RankingModel],
) -> None:
    running = served(models, EXPERIMENT)
    arms = {CHAMPION_ARM: running.champion, CHALLENGER_ARM: running.challenger}
    for user in USERS[:5_000]:
        variant, model = choose_model(running, user, SHARE)
        assert variant == experiment_arm(EXPERIMENT, user, SHARE), user
        assert model is arms[variant]


def test_a_challenger_without_an_experiment_id_takes_no_traffic(
    models: tuple[RankingModel, RankingModel],
) -> None:
    champion, _ = models
    idle = served(models, None, started_at=1.0)
    assert running_experiment(idle, SHARE) is None
    assert experiment_started_at(idle, SHARE) is None
    chosen = [choose_model(idle, u, SHARE) for u in USERS[:1_000]]
    assert all(variant == "champion" and model is champion for variant, model in chosen)


def test_no_experiment_runs_without_traffic_or_when_the_challenger_is_the_champion(
    models: tuple[RankingModel, RankingModel],
) -> None:
    champion, _ = models
    assert running_experiment(served(models, EXPERIMENT), 0.0) is None
    same = ServedModels(champion, dataclasses.replace(champion, experiment_id=EXPERIMENT))
    assert running_experiment(same, SHARE) is None
    assert {choose_model(same, u, SHARE)[0] for u in USERS[:1_000]} == {"champion"}


def test_a_running_experiment_reports_its_id_and_start(
    models: tuple[RankingModel, RankingModel],
) -> None:
    running = served(models, EXPERIMENT, started_at=1_764_547_200.0)
    assert running_experiment(running, SHARE) == EXPERIMENT
    assert experiment_started_at(running, SHARE) == 1_764_547_200.0


def test_without_a_champion_the_champion_arm_gets_no_model_and_the_fallback_answers(
    models: tuple[RankingModel, RankingModel],
) -> None:
    _, challenger = models
    orphan = ServedModels(None, dataclasses.replace(challenger, experiment_id=EXPERIMENT))
    chosen = {u: choose_model(orphan, u, SHARE) for u in USERS[:2_000]}
    for user, (variant, model) in chosen.items():
        assert variant == experiment_arm(EXPERIMENT, user, SHARE)
        assert (model is None) == (variant == CHAMPION_ARM)

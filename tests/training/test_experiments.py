"""The online experiment's statistics (issue 15): clustered variance, salted assignment, the
sequential test under peeking, and the contract's decision table."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from ranking_features.assignment import (
    CHALLENGER_ARM,
    CHAMPION_ARM,
    experiment_arm,
    experiment_bucket,
)
from ranking_features.statistics import Z_95, clustered_ratio
from ranking_training.experiment_arms import ArmStats
from ranking_training.experiment_spec import ExperimentSpec, Guardrails
from ranking_training.experiments import decide
from ranking_training.sequential_test import msprt

pytestmark = pytest.mark.fast

START = datetime(2026, 3, 1, tzinfo=UTC)


def spec(**overrides: object) -> ExperimentSpec:
    values: dict[str, object] = {
        "experiment_id": "exp-acme-v2-20260301T000000Z",
        "started_at": START,
        "champion_version": "1",
        "challenger_version": "2",
        "challenger_traffic": 0.5,
        "max_experiment_days": 14,
    }
    return ExperimentSpec(**(values | overrides))  # type: ignore[arg-type]


# --- user-clustered variance ------------------------------------------------------------


def test_clustered_ratio_equals_the_delta_method_formula_on_a_small_case() -> None:
    requests = np.array([1, 4, 2, 7, 3])
    clicks = np.array([1, 1, 0, 5, 1])
    n = len(requests)
    ratio = clicks.sum() / requests.sum()
    s_x, s_y = requests.var(ddof=1), clicks.var(ddof=1)
    s_xy = np.cov(requests, clicks, ddof=1)[0, 1]
    # Var(R) = (s_y^2 - 2 R s_xy + R^2 s_x^2) / (n xbar^2), written out term by term.
    expected = (s_y - 2 * ratio * s_xy + ratio**2 * s_x) / (n * requests.mean() ** 2)

    result = clustered_ratio(clicks, requests)

    assert result.estimate == pytest.approx(8 / 17)
    assert result.standard_error == pytest.approx(math.sqrt(expected), rel=1e-12)
    assert result.clusters == 5


def test_clustered_standard_error_agrees_with_a_bootstrap_over_users() -> None:
    rng = np.random.default_rng(3)
    users = 3000
    requests = rng.geometric(0.15, users)
    clicks = rng.binomial(requests, rng.beta(1.2, 2.8, users))
    replicates = []
    for _ in range(1000):
        pick = rng.integers(0, users, users)
        replicates.append(clicks[pick].sum() / requests[pick].sum())

    result = clustered_ratio(clicks, requests)

    assert result.standard_error == pytest.approx(np.std(replicates, ddof=1), rel=0.08)


def test_clustered_interval_is_wider_than_a_binomial_one_when_users_differ() -> None:
    rng = np.random.default_rng(4)
    requests = rng.geometric(0.05, 2000)  # heavy users make many correlated requests
    clicks = rng.binomial(requests, rng.beta(0.6, 1.4, 2000))
    result = clustered_ratio(clicks, requests)
    p, trials = result.estimate, requests.sum()

    assert result.standard_error > 2 * math.sqrt(p * (1 - p) / trials)
    low, high = result.interval()
    assert low == pytest.approx(p - Z_95 * result.standard_error)
    assert high == pytest.approx(p + Z_95 * result.standard_error)


def test_clustered_ratio_without_enough_users_has_no_finite_error() -> None:
    assert math.isinf(clustered_ratio([1], [3]).standard_error)
    assert clustered_ratio([], []).interval() == (0.0, 1.0)


# --- salted assignment --------------------------------------------------------------------


def test_a_new_experiment_id_reshuffles_users() -> None:
    users = [f"user-{i}" for i in range(20_000)]
    first = np.array([experiment_bucket("exp-acme-v2-20260301T000000Z", u) for u in users])
    second = np.array([experiment_bucket("exp-acme-v3-20260308T000000Z", u) for u in users])

    assert abs(np.corrcoef(first, second)[0, 1]) < 0.03
    # With 10 % to the challenger, about 10 % of the last challenger's users see the next one.
    last, next_ = first < 0.1, second < 0.1
    assert (last & next_).sum() / last.sum() == pytest.approx(0.1, abs=0.02)
    assert first.mean() == pytest.approx(0.5, abs=0.01)
    assert np.histogram(first, bins=10, range=(0, 1))[0].min() > 1800


def test_a_user_keeps_the_same_arm_within_an_experiment() -> None:
    arms = {experiment_arm("exp-1", "alice", 0.5) for _ in range(5)}
    assert len(arms) == 1
    assert experiment_arm("exp-1", "alice", 0.0) == CHAMPION_ARM
    assert experiment_arm("exp-1", "alice", 1.0) == CHALLENGER_ARM


# --- the sequential test ----------------------------------------------------------------


def test_confidence_sequence_bounds_are_where_the_test_rejects_at_alpha() -> None:
    test = msprt(difference=0.012, variance=2e-5, alpha=0.05, mixing_variance=1e-4)
    # Shifting the null to a bound leaves exactly the evidence 1 / alpha against it.
    for bound in (test.low, test.high):
        at_bound = msprt(0.012 - bound, 2e-5, 0.05, 1e-4)
        assert at_bound.p_value == pytest.approx(0.05, rel=1e-9)
    assert test.low < 0.012 < test.high
    assert (test.p_value < 0.05) == (test.low > 0 or test.high < 0)


def test_msprt_without_information_neither_rejects_nor_bounds() -> None:
    test = msprt(0.3, math.inf, 0.05, 1e-4)
    assert (test.p_value, test.low, test.high) == (1.0, -math.inf, math.inf)


def _stats(arm: str, clicks: np.ndarray, requests: np.ndarray, fallback: int = 0) -> ArmStats:
    active = requests > 0
    return ArmStats(
        arm=arm,
        model_version="2" if arm == CHALLENGER_ARM else "1",
        users=int(active.sum()),
        requests=int(requests.sum()),
        clicked_requests=int(clicks.sum()),
        converted_requests=0,
        fallback_requests=fallback,
        other_version_requests=0,
        ctr=clustered_ratio(clicks[active], requests[active]),
        conversion_rate=clustered_ratio(np.zeros(int(active.sum())), requests[active]),
    )


def _first_verdict(
    lift: float, rng: np.random.Generator, looks: int = 25, users: int = 4000
) -> tuple[str, float]:
    """A synthetic experiment (users with their own CTR and activity, half to the challenger)
    decided after every batch of traffic; its first verdict and the naive z statistic's
    largest value over the looks."""
    ctr = rng.beta(1.2, 2.8, users)  # mean 0.3, between-user sd 0.21
    rate = rng.lognormal(0.0, 1.0, users)
    rate *= 300 / rate.sum()  # ~300 requests per look
    challenger = rng.random(users) < 0.5
    click_p = np.where(challenger, np.minimum(ctr * (1 + lift), 1), ctr)
    requests = np.zeros(users, dtype=np.int64)
    clicks = np.zeros(users, dtype=np.int64)
    experiment = spec()
    naive_max = 0.0
    for look in range(1, looks + 1):
        new = rng.poisson(rate)
        requests += new
        clicks += rng.binomial(new, click_p)
        stats = {
            CHAMPION_ARM: _stats(CHAMPION_ARM, clicks[~challenger], requests[~challenger]),
            CHALLENGER_ARM: _stats(CHALLENGER_ARM, clicks[challenger], requests[challenger]),
        }
        decision = decide(stats, experiment, START + timedelta(hours=look))
        figures = decision.figures
        if math.isfinite(figures["ctr_difference_variance"]):
            z = figures["ctr_difference"] / math.sqrt(figures["ctr_difference_variance"])
            naive_max = max(naive_max, z)
        if decision.kind != "continue":
            return decision.kind, naive_max
    return "continue", naive_max


def test_sequential_test_under_aa_promotes_at_most_alpha_though_checked_every_batch() -> None:
    rng = np.random.default_rng(15)
    runs = [_first_verdict(0.0, rng) for _ in range(300)]
    promoted = sum(kind == "promote" for kind, _ in runs) / len(runs)
    # The same peeking with a fixed-horizon one-sided z test at 1.645 (the check can fail).
    naive = sum(z > 1.645 for _, z in runs) / len(runs)

    assert promoted <= 0.05 + 2.5 * math.sqrt(0.05 * 0.95 / len(runs))
    assert naive > 0.08, f"peeking a fixed-horizon test should inflate its error, got {naive}"


def test_sequential_test_detects_a_real_lift_in_most_runs() -> None:
    rng = np.random.default_rng(16)
    runs = [_first_verdict(0.2, rng, looks=40) for _ in range(60)]
    kinds = [kind for kind, _ in runs]

    assert kinds.count("promote") / len(runs) >= 0.8
    assert "stop" not in kinds


# --- decisions per the contract's table ----------------------------------------------------


def _arm(arm: str, ctr: float, users: int = 400, fallback: int = 0) -> ArmStats:
    """An arm of `users` users with 5 requests each whose clicks make CTR `ctr` with a
    small spread between users."""
    requests = np.full(users, 5)
    clicks = np.round(np.linspace(ctr - 0.1, ctr + 0.1, users) * 5).astype(int)
    return _stats(arm, clicks, requests, fallback)


def _decide(
    champion: float,
    challenger: float,
    days: float = 1.0,
    users: int = 400,
    challenger_fallback: int = 0,
    errors: tuple[int, int] = (0, 0),
) -> str:
    stats = {
        CHAMPION_ARM: replace(_arm(CHAMPION_ARM, champion, users), error_requests=errors[0]),
        CHALLENGER_ARM: replace(
            _arm(CHALLENGER_ARM, challenger, users, challenger_fallback), error_requests=errors[1]
        ),
    }
    decision = decide(stats, spec(), START + timedelta(days=days), Guardrails())
    return f"{decision.kind}:{decision.experiment_tag}"


def test_a_clearly_better_challenger_is_promoted() -> None:
    assert _decide(0.30, 0.40) == "promote:won"


def test_a_clearly_worse_challenger_is_stopped_as_lost() -> None:
    assert _decide(0.40, 0.30) == "stop:lost"


def test_an_undecided_experiment_continues_until_its_maximum_duration() -> None:
    assert _decide(0.30, 0.30, days=3) == "continue:None"
    assert _decide(0.30, 0.30, days=14.5) == "stop:expired"


def test_a_verdict_at_the_last_evaluation_wins_over_expiry() -> None:
    assert _decide(0.30, 0.40, days=20) == "promote:won"


def test_a_broken_fallback_guardrail_stops_even_a_winning_challenger() -> None:
    # 2000 requests per arm: 21 fallback answers are 1.05 % > 1 % over the champion's 0.
    assert _decide(0.30, 0.40, challenger_fallback=21) == "stop:lost"
    assert _decide(0.30, 0.40, challenger_fallback=19) == "promote:won"


def test_a_broken_error_guardrail_stops_even_a_winning_challenger() -> None:
    # 2000 answered requests per arm. 21 failed: 21 / 2021 = 1.04 % > 1 % over the champion's 0;
    # 20 / 2020 = 0.99 % is within it.
    assert _decide(0.30, 0.40, errors=(0, 21)) == "stop:lost"
    assert _decide(0.30, 0.40, errors=(0, 20)) == "promote:won"
    # The excess counts, not the level: 31 / 2031 - 10 / 2010 = 1.03 %, 30 / 2030 - ... = 0.98 %.
    assert _decide(0.30, 0.40, errors=(10, 31)) == "stop:lost"
    assert _decide(0.30, 0.40, errors=(10, 30)) == "promote:won"
    # Failures of the champion's arm never stop the challenger.
    assert _decide(0.30, 0.40, errors=(200, 0)) == "promote:won"


def test_the_evaluator_tags_each_arms_version_with_its_online_ctr_and_interval() -> None:
    from types import SimpleNamespace

    from ranking_training.experiment_registry import online_ctr_tags

    stats = {CHAMPION_ARM: _arm(CHAMPION_ARM, 0.30), CHALLENGER_ARM: _arm(CHALLENGER_ARM, 0.40)}
    now = START + timedelta(days=1)
    decision = decide(stats, spec(), now, Guardrails())
    tags = online_ctr_tags(SimpleNamespace(now=now), spec(), decision)  # type: ignore[arg-type]
    assert set(tags) == {"1", "2"}  # champion v1, challenger v2
    for arm, version in ((CHAMPION_ARM, "1"), (CHALLENGER_ARM, "2")):
        low, high = stats[arm].ctr.interval()
        assert float(tags[version]["online.ctr"]) == pytest.approx(stats[arm].ctr.estimate, 1e-5)
        assert float(tags[version]["online.ctr_low"]) == pytest.approx(low, 1e-5)
        assert float(tags[version]["online.ctr_high"]) == pytest.approx(high, 1e-5)
        assert tags[version]["online.requests"] == "2000"
    # An arm without requests has no CTR to export.
    empty = _stats(CHALLENGER_ARM, np.zeros(3, dtype=int), np.zeros(3, dtype=int))
    decision = decide({**stats, CHALLENGER_ARM: empty}, spec(), now, Guardrails())
    assert set(online_ctr_tags(SimpleNamespace(now=now), spec(), decision)) == {"1"}  # type: ignore[arg-type]


def test_failed_requests_in_the_lake_count_for_the_arm_of_their_user(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from ranking_features.events import ERRORS_DIR, RANK_ERROR_SCHEMA, partition_dir
    from ranking_training.experiment_arms import arm_statistics, read_experiment_events

    experiment = spec()
    users = [f"u{i}" for i in range(40)]
    arms = [experiment_arm(experiment.experiment_id, u, 0.5) for u in users]
    moment = START + timedelta(hours=2)
    rows = [
        # (user, experiment_id, ts): ours in the window, another experiment's, before the start.
        *[(u, experiment.experiment_id, moment) for u in users],
        (users[0], "exp-other", moment),
        (users[1], experiment.experiment_id, START - timedelta(hours=1)),
    ]
    for day in {ts.date() for _, _, ts in rows}:
        folder = tmp_path / partition_dir(ERRORS_DIR, day.isoformat())
        folder.mkdir(parents=True)
        chosen = [r for r in rows if r[2].date() == day]
        table = pa.table(
            {
                "request_id": [f"r{i}" for i in range(len(chosen))],
                "ts": [ts for _, _, ts in chosen],
                "user_id": [u for u, _, _ in chosen],
                "variant": ["challenger"] * len(chosen),
                "model_version": ["2"] * len(chosen),
                "brand": ["acme"] * len(chosen),
                "experiment_id": [e for _, e, _ in chosen],
                "error": ["RuntimeError"] * len(chosen),
            },
            schema=RANK_ERROR_SCHEMA,
        )
        pq.write_table(table, folder / "segment.parquet")

    data = read_experiment_events(tmp_path.as_uri(), experiment, START + timedelta(hours=3))
    assert data.errors == {
        CHAMPION_ARM: arms.count(CHAMPION_ARM),
        CHALLENGER_ARM: arms.count(CHALLENGER_ARM),
    }
    assert 0 < data.errors[CHALLENGER_ARM] < len(users)
    stats = arm_statistics(data)
    assert stats[CHALLENGER_ARM].error_requests == arms.count(CHALLENGER_ARM)
    assert stats[CHALLENGER_ARM].error_ratio == 1.0  # no answered requests at all


def test_no_verdict_before_each_arm_has_its_minimum_users() -> None:
    assert _decide(0.30, 0.60, users=40) == "continue:None"


def test_decision_figures_name_both_arms_and_the_interval() -> None:
    stats = {
        CHAMPION_ARM: _arm(CHAMPION_ARM, 0.3),
        CHALLENGER_ARM: _arm(CHALLENGER_ARM, 0.4),
    }
    decision = decide(stats, spec(), START + timedelta(days=1))
    assert decision.figures["challenger.users"] == 400
    assert decision.figures["ctr_difference"] == pytest.approx(0.1, abs=1e-9)
    assert decision.figures["ctr_difference_low"] > 0
    assert "challenger v2 wins" in decision.reason


def test_spec_refuses_a_naive_start_time() -> None:
    with pytest.raises(ValueError, match="started_at must be timezone-aware"):
        spec(started_at=datetime(2026, 3, 1))

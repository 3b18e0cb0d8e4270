"""The promotion gate's decision table (docs/architecture.md, "Promotion gate"), row by row, on
hand-set estimates and intervals; and what `registry.apply_gate` does with each outcome in a
real MLflow registry: the tags it writes and the alias it moves (or not).

The estimates are set by hand so each test sits on one side of one boundary of the rule: a test
that passes with the wrong outcome would pass for any rule, so every boundary is tested from
both sides (test_gate.py and test_counterfactual_gate.py check the estimates themselves).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mlflow import MlflowClient
from ranking_training.counterfactual import Interval
from ranking_training.gate import (
    CHAMPION_TARGET,
    NEW,
    POPULARITY,
    CounterfactualEvidence,
    GateDecision,
    GateOutcome,
    GateRule,
    PolicyEstimate,
    decide_counterfactual,
    decide_without_exploration,
)
from ranking_training.registry import apply_gate

pytestmark = pytest.mark.fast

# Binary fractions, so the boundary -margin x champion is exactly -0.015625.
RULE = GateRule(margin=0.0625, min_exploration_requests=300)
CHAMPION_VALUE = 0.25


def interval(low: float, estimate: float | None = None, estimator: str = "pbm") -> Interval:
    estimate = low + 0.01 if estimate is None else estimate
    return Interval(estimate, low, estimate + 0.01, 0.9, "paired-user-bootstrap", estimator, 1000)


def evidence(
    popularity_low: float,
    champion_low: float | None,
    *,
    estimator: str = "pbm",
    other_estimators_low: float | None = None,
) -> CounterfactualEvidence:
    """Evidence whose `estimator` intervals have the given lower bounds; the other estimators'
    intervals have `other_estimators_low` (default: the same bounds)."""

    def intervals(low: float) -> dict[str, Interval]:
        other = low if other_estimators_low is None else other_estimators_low
        return {
            name: interval(low if name == estimator else other, estimator=name)
            for name in ("pbm", "snips", "ips")
        }

    value = PolicyEstimate(ips=CHAMPION_VALUE, snips=CHAMPION_VALUE, pbm=CHAMPION_VALUE)
    return CounterfactualEvidence(
        requests=2_000,
        users=900,
        k=5,
        values={NEW: value, CHAMPION_TARGET: value, POPULARITY: value},
        versus_popularity=intervals(popularity_low),
        versus_champion=None if champion_low is None else intervals(champion_low),
        estimator=estimator,
    )


def decide(
    popularity_low: float,
    champion_low: float | None,
    champion_serves: bool = True,
    *,
    estimator: str = "pbm",
    other_estimators_low: float | None = None,
) -> GateDecision:
    return decide_counterfactual(
        evidence(
            popularity_low,
            champion_low,
            estimator=estimator,
            other_estimators_low=other_estimators_low,
        ),
        RULE,
        champion_serves=champion_serves,
        champion_version="7" if champion_serves else None,
    )


# ------------------------------------------------------------------ the counterfactual rule
@pytest.mark.parametrize(
    ("popularity_low", "outcome"),
    [(-0.02, GateOutcome.REJECTED), (0.0, GateOutcome.REJECTED), (1e-6, GateOutcome.CHALLENGER)],
)
def test_the_new_model_must_beat_popularity_with_its_lower_bound_above_zero(
    popularity_low: float, outcome: GateOutcome
) -> None:
    decision = decide(popularity_low, champion_low=0.05)
    assert decision.outcome is outcome, decision.reason
    if outcome is GateOutcome.REJECTED:
        assert decision.reason.endswith(": lower bound not above 0 (popularity)")


@pytest.mark.parametrize(
    ("champion_low", "outcome"),
    [
        (0.03, GateOutcome.CHALLENGER),  # better than the champion
        (-0.0156, GateOutcome.CHALLENGER),  # worse, but within the margin
        (-0.015625, GateOutcome.REJECTED),  # exactly -margin x champion: not above it
        (-0.05, GateOutcome.REJECTED),
    ],
)
def test_with_a_champion_the_lower_bound_must_be_above_minus_margin_times_the_champion(
    champion_low: float, outcome: GateOutcome
) -> None:
    decision = decide(0.02, champion_low)
    assert decision.outcome is outcome, decision.reason
    assert decision.champion_version == "7"
    verdict = "above" if outcome is GateOutcome.CHALLENGER else "not above"
    assert decision.reason.endswith(f"lower bound {verdict} -margin x champion = -0.0156")


def test_without_a_champion_beating_popularity_makes_the_first_champion_directly() -> None:
    decision = decide(0.02, champion_low=None, champion_serves=False)
    assert decision.outcome is GateOutcome.CHAMPION, decision.reason
    assert decision.reason.endswith("no champion yet, so it becomes champion directly")


def test_a_champion_that_cannot_be_scored_leaves_popularity_as_the_only_bar() -> None:
    passes = decide(0.02, champion_low=None)
    fails = decide(-0.001, champion_low=None)
    assert passes.outcome is GateOutcome.CHALLENGER, passes.reason
    assert "champion v7 could not be scored on today's features" in passes.reason
    assert fails.outcome is GateOutcome.REJECTED, fails.reason


@pytest.mark.parametrize("estimator", ["pbm", "snips", "ips"])
def test_the_rule_decides_on_its_estimator_alone(estimator: str) -> None:
    # The rule's estimator says "better than both"; every other estimator says "worse".
    decision = decide(0.02, 0.02, estimator=estimator, other_estimators_low=-0.5)
    assert decision.outcome is GateOutcome.CHALLENGER, decision.reason
    assert f"new - popularity {estimator.upper()} " in decision.reason
    assert decision.tags()["gate.estimator"] == estimator


def test_a_decision_is_tagged_with_its_outcome_basis_and_figures() -> None:
    tags = decide(0.02, -0.05).tags()
    assert {key: tags[key] for key in ("gate", "gate.basis", "gate.champion_version")} == {
        "gate": "rejected",
        "gate.basis": "counterfactual",
        "gate.champion_version": "7",
    }
    assert tags["gate.min_exploration_requests"] == "300"
    assert float(tags["ope.new_minus_champion.pbm.low"]) == pytest.approx(-0.05)
    assert float(tags["ope.new_minus_popularity.pbm.low"]) == pytest.approx(0.02)


# ---------------------------------------------------------------- too little exploration
def test_too_little_exploration_with_a_champion_changes_nothing_whatever_the_ndcg() -> None:
    decision = decide_without_exploration(
        299,
        RULE,
        champion_serves=True,
        champion_version="7",
        biased_model={"ndcg@10": 0.9},
        biased_popularity={"ndcg@10": 0.1},
    )
    assert decision.outcome is GateOutcome.INSUFFICIENT_EXPLORATION
    assert decision.reason == (
        "299 explore requests in the gate window; the gate needs at least 300 "
        "(training.promotion.min_exploration_requests); champion v7 stays, nothing aliased"
    )
    assert decision.tags()["gate.basis"] == "none"


@pytest.mark.parametrize(
    ("model", "outcome"),
    [(0.46, GateOutcome.CHAMPION), (0.45, GateOutcome.REJECTED), (0.44, GateOutcome.REJECTED)],
)
def test_too_little_exploration_and_no_champion_the_biased_ndcg_must_beat_popularity(
    model: float, outcome: GateOutcome
) -> None:
    decision = decide_without_exploration(
        0,
        RULE,
        champion_serves=False,
        champion_version=None,
        biased_model={"ndcg@10": model},
        biased_popularity={"ndcg@10": 0.45},
    )
    assert decision.outcome is outcome, decision.reason
    assert decision.tags()["gate.basis"] == "biased_ndcg"


# ------------------------------------------------------- the outcome in the real registry
@pytest.fixture
def registered(local_registry: str, tmp_path: Path) -> tuple[MlflowClient, str]:
    """A model whose version 1 is champion and version 2 is fresh, the version to apply to.
    The versions are bare registry entries: applying an outcome reads and writes only tags
    and aliases."""
    client = MlflowClient(tracking_uri=local_registry)
    name = f"gate-{uuid.uuid4().hex[:8]}-ranker"
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, source=tmp_path.as_uri())
    client.set_registered_model_alias(name, "champion", "1")
    return client, name


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    return {
        alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()
    }


STARTED = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)


def test_a_challenger_starts_its_experiment_and_leaves_the_champion_alone(
    registered: tuple[MlflowClient, str],
) -> None:
    client, name = registered
    decision = decide(0.02, 0.03)
    apply_gate(client, name, "2", decision, now=STARTED)
    assert aliases(client, name) == {"champion": "1", "challenger": "2"}
    tags = client.get_model_version(name, "2").tags
    brand = name.removesuffix("-ranker")
    assert {key: tags[key] for key in ("gate", "experiment_id", "experiment.started_at")} == {
        "gate": "challenger",
        "experiment_id": f"exp-{brand}-v2-20261201T063000Z",
        "experiment.started_at": "2026-12-01T06:30:00+00:00",
    }
    assert tags["experiment.champion_version"] == "1"


@pytest.mark.parametrize(
    "decision",
    [
        decide(-0.01, 0.03),
        decide(0.02, -0.05),
        decide_without_exploration(
            12, RULE, champion_serves=True, champion_version="1",
            biased_model={"ndcg@10": 0.9}, biased_popularity={"ndcg@10": 0.1},
        ),
    ],
    ids=["worse-than-popularity", "worse-than-the-champion", "insufficient-exploration"],
)  # fmt: skip
def test_a_version_that_did_not_pass_is_tagged_and_never_aliased(
    registered: tuple[MlflowClient, str], decision: GateDecision
) -> None:
    client, name = registered
    apply_gate(client, name, "2", decision, now=STARTED)
    assert aliases(client, name) == {"champion": "1"}
    tags = client.get_model_version(name, "2").tags
    assert (tags["gate"], tags["gate.reason"]) == (decision.outcome.value, decision.reason)
    assert "experiment_id" not in tags


def test_a_brands_first_model_becomes_champion_without_an_experiment(
    local_registry: str, tmp_path: Path
) -> None:
    client = MlflowClient(tracking_uri=local_registry)
    name = f"gate-{uuid.uuid4().hex[:8]}-ranker"
    client.create_registered_model(name)
    client.create_model_version(name, source=tmp_path.as_uri())
    apply_gate(client, name, "1", decide(0.02, None, champion_serves=False), now=STARTED)
    assert aliases(client, name) == {"champion": "1"}
    assert "experiment_id" not in client.get_model_version(name, "1").tags

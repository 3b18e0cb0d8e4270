"""The online experiment's evaluator: lake events -> per-arm statistics -> mSPRT -> decision.

Pure functions (no MLflow; `ranking-experiments` applies the decision to the registry). The
contract is docs/architecture.md, "Online experiments (issue 15)":

- `ranking_training.experiment_spec`: the experiment as its start recorded it, and the
  guardrails;
- `ranking_training.experiment_arms`: the experiment's requests from the lake, and per-arm
  statistics;
- `ranking_training.sequential_test`: the mixture sequential probability ratio test on the CTR
  difference, with its always-valid p-value and confidence sequence;
- here, `decide`: promote, stop or continue, per the contract's table; `evaluate` runs all
  three steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ranking_features.assignment import CHALLENGER_ARM, CHAMPION_ARM

from ranking_training.experiment_arms import ArmStats, arm_statistics, read_experiment_events
from ranking_training.experiment_spec import ExperimentSpec, Guardrails, as_utc
from ranking_training.sequential_test import SequentialTest, mixing_variance, msprt

DecisionKind = Literal["promote", "stop", "continue"]


def ctr_test(stats: dict[str, ArmStats], spec: ExperimentSpec) -> SequentialTest:
    """The mSPRT of the CTR difference challenger - champion at this look."""
    champion, challenger = stats[CHAMPION_ARM], stats[CHALLENGER_ARM]
    return msprt(
        difference=challenger.ctr.estimate - champion.ctr.estimate,
        variance=champion.ctr.variance + challenger.ctr.variance,
        alpha=spec.alpha,
        mixing_variance=mixing_variance(champion.ctr.estimate, spec.mixing_relative_sd),
    )


@dataclass(frozen=True)
class Decision:
    """What to do with the experiment now, why, and the figures it rests on."""

    kind: DecisionKind
    reason: str
    figures: dict[str, float] = field(default_factory=dict)
    # A stop because max_experiment_days passed (version tag `expired`, not `lost`).
    expired: bool = False

    @property
    def experiment_tag(self) -> str | None:
        """The challenger version's `experiment` tag: won, lost, expired, or None (continue)."""
        if self.kind == "promote":
            return "won"
        if self.kind == "stop":
            return "expired" if self.expired else "lost"
        return None


def decide(
    stats: dict[str, ArmStats],
    spec: ExperimentSpec,
    now: datetime,
    guardrails: Guardrails | None = None,
) -> Decision:
    """The contract's decision (docs/architecture.md, "Online experiments"): a broken
    guardrail stops; else the confidence sequence's lower bound above 0 promotes, its upper
    bound below 0 stops; else past max_experiment_days stops (expired); else continue. Before
    each arm has `min_users_per_arm` users only expiry can end the experiment."""
    rails = guardrails or Guardrails()
    champion, challenger = stats[CHAMPION_ARM], stats[CHALLENGER_ARM]
    test = ctr_test(stats, spec)
    elapsed_days = (as_utc(now) - as_utc(spec.started_at)).total_seconds() / 86_400
    figures = _decision_figures(champion, challenger, test, spec, elapsed_days)
    interval = (
        f"CTR difference {test.difference:+.4f}, {1 - spec.alpha:.0%} confidence sequence "
        f"[{test.low:+.4f}, {test.high:+.4f}]"
    )
    enough = min(champion.users, challenger.users) >= rails.min_users_per_arm
    broken = _broken_guardrail(champion, challenger, rails) if enough else None
    if broken is not None:
        return Decision("stop", broken, figures)
    if enough and test.low > 0:
        return Decision(
            "promote", f"challenger v{spec.challenger_version} wins: {interval}", figures
        )
    if enough and test.high < 0:
        return Decision("stop", f"challenger v{spec.challenger_version} loses: {interval}", figures)
    if elapsed_days > spec.max_experiment_days:
        reason = (
            f"expired: {elapsed_days:.4g} days > max_experiment_days "
            f"{spec.max_experiment_days:g} without a verdict ({interval})"
        )
        return Decision("stop", reason, figures, expired=True)
    if not enough:
        reason = (
            f"continue: {champion.users} and {challenger.users} users (champion, challenger); a "
            f"verdict needs {rails.min_users_per_arm} per arm"
        )
        return Decision("continue", reason, figures)
    return Decision("continue", f"continue: no verdict yet ({interval})", figures)


def _broken_guardrail(champion: ArmStats, challenger: ArmStats, rails: Guardrails) -> str | None:
    """Why the challenger arm breaks a guardrail (fallback first, then errors), or None."""
    checks = (
        ("fallback", champion.fallback_ratio, challenger.fallback_ratio, rails.max_fallback_excess),
        ("error", champion.error_ratio, challenger.error_ratio, rails.max_error_excess),
    )
    for what, theirs, ours, limit in checks:
        if ours - theirs > limit:
            return (
                f"guardrail: the challenger arm's {what} ratio {ours:.3f} "
                f"exceeds the champion arm's {theirs:.3f} by more than {limit}"
            )
    return None


def _decision_figures(
    champion: ArmStats,
    challenger: ArmStats,
    test: SequentialTest,
    spec: ExperimentSpec,
    elapsed_days: float,
) -> dict[str, float]:
    """Both arms' figures and the test's, flat, for logs and MLflow metrics."""
    return {
        **champion.figures(),
        **challenger.figures(),
        "ctr_difference": test.difference,
        "ctr_difference_variance": test.variance,
        "ctr_difference_low": test.low,
        "ctr_difference_high": test.high,
        "msprt_log_likelihood_ratio": test.log_likelihood_ratio,
        "msprt_p_value": test.p_value,
        "msprt_mixing_variance": test.mixing_variance,
        "alpha": spec.alpha,
        "elapsed_days": elapsed_days,
    }


def evaluate(
    lake_uri: str, spec: ExperimentSpec, now: datetime, guardrails: Guardrails | None = None
) -> tuple[dict[str, ArmStats], Decision]:
    """Read, summarise and decide in one call: what `ranking-experiments evaluate` runs."""
    stats = arm_statistics(read_experiment_events(lake_uri, spec, now))
    return stats, decide(stats, spec, now, guardrails)

"""The mixture sequential probability ratio test (mSPRT) the online experiment decides with.

Pure arithmetic on an asymptotically normal estimate and its variance: the always-valid
p-value and confidence sequence (formulas in `msprt`'s docstring), checked at every look
without inflating the error rate. `ranking_training.experiments` applies it to the CTR
difference between the arms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_MIXING_RELATIVE_SD = 0.1
"""The mixing distribution's standard deviation as a share of the champion's CTR: tau = 0.1 x
CTR puts the test's power where retrains move CTR (lifts of a few to 20 percent)."""


@dataclass(frozen=True)
class SequentialTest:
    """The mSPRT's state at one look: the estimate, its variance, the mixing variance, the log
    mixture likelihood ratio against "no difference", the always-valid p-value and the
    always-valid (1 - alpha) confidence sequence's bounds at this look."""

    difference: float
    variance: float
    mixing_variance: float
    log_likelihood_ratio: float
    p_value: float
    low: float
    high: float


def msprt(
    difference: float, variance: float, alpha: float, mixing_variance: float
) -> SequentialTest:
    """The normal-mixture SPRT of H0: theta = 0 for an asymptotically normal estimate
    `difference` of theta with variance `variance` (here the CTR difference challenger -
    champion, variance the sum of the arms' user-clustered variances).

    With the mixing distribution theta ~ N(0, tau^2) (`mixing_variance` = tau^2), the mixture
    likelihood ratio at a look with estimate d and variance V is (Johari, Koomen, Pekelis and
    Walsh, "Peeking at A/B tests", KDD 2017, eq. 11 with V = 2 sigma^2 / n):

        Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))

    Lambda is a nonnegative martingale under H0, so by Ville's inequality P(ever Lambda >=
    1 / alpha) <= alpha: the always-valid p-value is min(1, 1 / Lambda) (its running minimum
    over looks is valid too; a look that rejects ends the experiment, so the current value
    decides). Inverting the test at every theta_0 gives the normal-mixture confidence sequence
    (Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform, nonparametric, nonasymptotic
    confidence sequences", Ann. Statist. 2021, eq. 14):

        d +- sqrt( V (V + tau^2) / tau^2 * ( log((V + tau^2) / V) + 2 log(1 / alpha) ) )

    which covers theta at every look simultaneously with probability >= 1 - alpha. With an
    estimated, clustered V the guarantee is asymptotic (Waudby-Smith et al., "Time-uniform
    central limit theory and asymptotic confidence sequences", 2021): hence the minimum users
    per arm before a verdict (`Guardrails.min_users_per_arm`).

    No information (V not positive and finite) gives p = 1 and an unbounded sequence."""
    if not 0 < alpha < 1:
        raise ValueError(f"msprt: alpha must be in (0, 1), got {alpha}")
    if not mixing_variance > 0:
        raise ValueError(f"msprt: mixing_variance must be > 0, got {mixing_variance}")
    if not (math.isfinite(variance) and variance > 0):
        return SequentialTest(difference, variance, mixing_variance, 0.0, 1.0, -math.inf, math.inf)
    total = variance + mixing_variance
    log_ratio = 0.5 * math.log(variance / total) + mixing_variance * difference**2 / (
        2 * variance * total
    )
    p_value = min(1.0, math.exp(-log_ratio))
    radius = math.sqrt(
        variance * total / mixing_variance * (math.log(total / variance) - 2 * math.log(alpha))
    )
    return SequentialTest(
        difference,
        variance,
        mixing_variance,
        log_ratio,
        p_value,
        difference - radius,
        difference + radius,
    )


def mixing_variance(champion_ctr: float, relative_sd: float = DEFAULT_MIXING_RELATIVE_SD) -> float:
    """tau^2 = (relative_sd x champion CTR)^2: the effects the mixture weighs scale with the
    brand's CTR. A champion arm without clicks yet gets the tau of a CTR of 1 %."""
    return (relative_sd * max(champion_ctr, 0.01)) ** 2

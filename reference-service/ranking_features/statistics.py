"""User-clustered ratio estimates: one definition of online CTR's variance (numpy only).

Online CTR is a ratio of sums over users, R = sum(y_u) / sum(x_u), where x_u is the user's
requests and y_u their requests with a click. Traffic is split per user, and one user's
requests are correlated (the same tastes, the same model), so requests are not independent
trials: a binomial (Wilson) interval on requests is too narrow. The user is the independent
unit, and the delta method (a first-order Taylor expansion of the ratio around the means)
gives the variance of R from per-user sums (Deng, Knoblich and Lu, "Applying the delta method
in metric analytics", KDD 2018):

    Var(R) ~= 1 / (n * xbar^2) * (s_y^2 - 2 R s_xy + R^2 s_x^2)
           =  n / (n - 1) * sum_u (y_u - R x_u)^2 / (sum_u x_u)^2

with n users and sample (co)variances s. The second form is the one computed: the residuals
e_u = y_u - R x_u have mean 0 exactly, so their sum of squares over (n - 1) is the bracket.
`recplat report ctr` and the experiment evaluator (`ranking_training.experiments`) both call
`clustered_ratio`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class ClusteredRatio:
    """A ratio of per-user sums, its user-clustered standard error and the number of users.

    `standard_error` is inf with fewer than two users (no variance to estimate)."""

    estimate: float
    standard_error: float
    clusters: int
    numerator: float
    denominator: float

    @property
    def variance(self) -> float:
        return self.standard_error**2

    def interval(self, z: float = Z_95) -> tuple[float, float]:
        """The normal interval estimate +- z * SE, clipped to [0, 1] (a rate's range)."""
        if not math.isfinite(self.standard_error):
            return 0.0, 1.0
        half = z * self.standard_error
        return max(0.0, self.estimate - half), min(1.0, self.estimate + half)


def clustered_ratio(numerators: npt.ArrayLike, denominators: npt.ArrayLike) -> ClusteredRatio:
    """sum(numerators) / sum(denominators) with its delta-method standard error, one entry per
    user (cluster). Users with a zero denominator count as clusters with no weight."""
    y = np.asarray(numerators, dtype=np.float64)
    x = np.asarray(denominators, dtype=np.float64)
    if y.shape != x.shape or y.ndim != 1:
        raise ValueError(
            f"clustered_ratio: numerators and denominators must be 1-d and equally long, got "
            f"shapes {y.shape} and {x.shape}"
        )
    return clustered_ratio_from_sums(
        clusters=len(x),
        sum_x=float(x.sum()),
        sum_y=float(y.sum()),
        sum_xx=float(x @ x),
        sum_yy=float(y @ y),
        sum_xy=float(x @ y),
    )


def clustered_ratio_from_sums(
    clusters: int, sum_x: float, sum_y: float, sum_xx: float, sum_yy: float, sum_xy: float
) -> ClusteredRatio:
    """`clustered_ratio` from the per-user sums it needs (x, y, x^2, y^2 and x*y summed over
    users), for callers that keep running sums: sum_u (y_u - R x_u)^2 = sum_yy - 2 R sum_xy +
    R^2 sum_xx. Counts are integers, so the sums are exact in float64 below 2^53."""
    n = clusters
    if sum_x <= 0:
        return ClusteredRatio(0.0, math.inf, n, sum_y, sum_x)
    ratio = sum_y / sum_x
    if n < 2:
        return ClusteredRatio(ratio, math.inf, n, sum_y, sum_x)
    squares = max(sum_yy - 2 * ratio * sum_xy + ratio * ratio * sum_xx, 0.0)
    variance = n / (n - 1) * squares / sum_x**2
    return ClusteredRatio(ratio, math.sqrt(variance), n, sum_y, sum_x)

"""The online experiment's evaluator: lake events -> per-arm statistics -> mSPRT -> decision.

Pure functions (no MLflow; `ranking-experiments` applies the decision to the registry). The
contract is docs/architecture.md, "Online experiments (issue 15)":

- `read_experiment_events`: the impressions that carry the experiment's id, from its start to
  `now`, and the feedback that matches them under the lake's feedback rules
  (`ranking_features.events`), as one row per ranking request. A user's arm is recomputed from
  the salted bucket (`ranking_features.assignment`), so a request the fallback answered counts
  against the arm whose model failed it.
- `arm_statistics`: per arm, users, requests, requests with a click or a conversion, fallback
  answers, failed requests (`events/errors`: answered 500 after the arm was chosen), and CTR
  and conversion rate with user-clustered (delta-method) standard errors
  (`ranking_features.statistics`).
- `msprt`: the mixture sequential probability ratio test on the CTR difference, with its
  always-valid p-value and confidence sequence (formulas in its docstring).
- `decide`: promote, stop or continue, per the contract's table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from ranking_features.assignment import (
    ARMS,
    CHALLENGER_ARM,
    CHAMPION_ARM,
    experiment_arm,
)
from ranking_features.events import (
    CLICK,
    CONVERSION,
    ERRORS_DIR,
    FEEDBACK_DIR,
    FEEDBACK_SCHEMA,
    IMPRESSION_SCHEMA,
    IMPRESSIONS_DIR,
    RANK_ERROR_SCHEMA,
    TIMESTAMP,
    first_of_each_event,
    matches_an_impression,
)
from ranking_features.lake import open_lake
from ranking_features.statistics import ClusteredRatio, clustered_ratio

from ranking_training.data import FEEDBACK_COLUMNS, read_events

FALLBACK_VARIANT = "fallback"

DEFAULT_MIXING_RELATIVE_SD = 0.1
"""The mixing distribution's standard deviation as a share of the champion's CTR: tau = 0.1 x
CTR puts the test's power where retrains move CTR (lifts of a few to 20 percent)."""

DecisionKind = Literal["promote", "stop", "continue"]


@dataclass(frozen=True)
class ExperimentSpec:
    """One online experiment, as its start recorded it (registry tags of the challenger)."""

    experiment_id: str
    started_at: datetime
    champion_version: str
    challenger_version: str
    # The share of users in the challenger arm (serving.challenger_traffic).
    challenger_traffic: float
    max_experiment_days: float
    alpha: float = 0.05
    # tau / champion CTR, the mixing standard deviation of the mSPRT (see `msprt`).
    mixing_relative_sd: float = DEFAULT_MIXING_RELATIVE_SD

    def __post_init__(self) -> None:
        where = f"experiment {self.experiment_id!r}"
        if self.started_at.tzinfo is None:
            raise ValueError(f"{where}: started_at must be timezone-aware (UTC), got naive")
        if not 0.0 < self.challenger_traffic < 1.0:
            raise ValueError(
                f"{where}: challenger_traffic must be in (0, 1), got {self.challenger_traffic}"
            )
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"{where}: alpha must be in (0, 1), got {self.alpha}")
        if not self.max_experiment_days > 0:
            raise ValueError(
                f"{where}: max_experiment_days must be > 0, got {self.max_experiment_days}"
            )
        if self.mixing_relative_sd <= 0:
            raise ValueError(
                f"{where}: mixing_relative_sd must be > 0, got {self.mixing_relative_sd}"
            )

    def version_of(self, arm: str) -> str:
        return self.challenger_version if arm == CHALLENGER_ARM else self.champion_version


@dataclass(frozen=True)
class Guardrails:
    """What a challenger must not break, and how much data a verdict needs."""

    # The challenger arm's fallback ratio may exceed the champion arm's by at most this.
    max_fallback_excess: float = 0.01
    # The same for the error ratio: failed requests / (answered + failed) requests.
    max_error_excess: float = 0.01
    # No verdict (promote or stop, except on expiry) before each arm has this many users: the
    # variance and the test are large-sample approximations.
    min_users_per_arm: int = 100


@dataclass
class ArmData:
    """The experiment's requests, one row each: request_id, user_id, arm (recomputed from the
    salt), model_version and variant as served, and booleans fallback, clicked, converted."""

    spec: ExperimentSpec
    requests: pd.DataFrame
    impressions: int = 0
    # Feedback naming one of the experiment's requests whose user or item matches no
    # impression (left out, as everywhere the feedback rules apply).
    unmatched_feedback: int = 0
    # Per arm, the experiment's requests that failed after their arm was chosen.
    errors: dict[str, int] = field(default_factory=dict)


REQUEST_COLUMNS = (
    "request_id",
    "user_id",
    "arm",
    "model_version",
    "variant",
    "fallback",
    "clicked",
    "converted",
)


def read_experiment_events(lake_uri: str, spec: ExperimentSpec, now: datetime) -> ArmData:
    """The experiment's requests in the lake at `lake_uri` (file:// or abfs://): impressions
    with its `experiment_id` from `spec.started_at` to `now`, and their matched feedback up to
    `now`. An empty lake or an experiment without traffic yet gives no rows, not an error."""
    start, end = _utc(spec.started_at), _utc(now)
    fs, root = open_lake(lake_uri)
    days = [
        (start.date() + timedelta(days=i)).isoformat()
        for i in range((end.date() - start.date()).days + 1)
    ]
    impressions = read_events(
        fs,
        root,
        IMPRESSIONS_DIR,
        days,
        IMPRESSION_SCHEMA,
        ("event_id", "request_id", "ts", "user_id", "item_id", "variant"),
        ("model_version", "experiment_id"),
    )
    impressions.drop_duplicate_events()
    rows = impressions.table
    seconds = _seconds(rows)
    mine = (
        pc.equal(rows["experiment_id"], spec.experiment_id)
        .fill_null(False)
        .to_numpy(zero_copy_only=False)
        & (seconds >= start.timestamp())
        & (seconds <= end.timestamp())
    )
    rows = rows.filter(pa.array(mine))

    feedback = read_events(fs, root, FEEDBACK_DIR, days, FEEDBACK_SCHEMA, FEEDBACK_COLUMNS)
    events = feedback.table
    events = events.filter(pa.array(first_of_each_event(events)))
    events = events.filter(pa.array(_seconds(events) <= end.timestamp()))
    matched = matches_an_impression(events, rows)
    ours = pc.is_in(events["request_id"], value_set=rows["request_id"]).to_numpy(
        zero_copy_only=False
    )
    unmatched = int((ours & ~matched).sum())
    events = events.filter(pa.array(matched))

    failed = read_events(
        fs, root, ERRORS_DIR, days, RANK_ERROR_SCHEMA, ("ts", "user_id"), ("experiment_id",)
    ).table
    in_window = _seconds(failed)
    failed = failed.filter(
        pa.array(
            pc.equal(failed["experiment_id"], spec.experiment_id)
            .fill_null(False)
            .to_numpy(zero_copy_only=False)
            & (in_window >= start.timestamp())
            & (in_window <= end.timestamp())
        )
    )
    errors = dict.fromkeys(ARMS, 0)
    for user in failed["user_id"].to_pylist():
        errors[_arm_of(spec, user)] += 1

    return ArmData(
        spec=spec,
        requests=_requests(rows, events, spec),
        impressions=rows.num_rows,
        unmatched_feedback=unmatched,
        errors=errors,
    )


def _arm_of(spec: ExperimentSpec, user: str) -> str:
    """The arm the experiment's salted assignment puts `user` in."""
    return experiment_arm(spec.experiment_id, user, spec.challenger_traffic)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()}: expected a timezone-aware (UTC) time")
    return moment.astimezone(UTC)


def _seconds(events: pa.Table) -> np.ndarray:
    """Each row's `ts` in epoch seconds."""
    return pc.cast(pc.cast(events["ts"], TIMESTAMP), pa.int64()).to_numpy() / 1e6


def _requests(impressions: pa.Table, feedback: pa.Table, spec: ExperimentSpec) -> pd.DataFrame:
    """One row per request of the impressions (REQUEST_COLUMNS)."""
    if impressions.num_rows == 0:
        return _empty_requests()
    shown = impressions.select(["request_id", "user_id", "model_version", "variant"]).to_pandas()
    requests = shown.groupby("request_id", sort=True).first().reset_index()
    users = requests["user_id"].unique()
    arm_of = {user: _arm_of(spec, user) for user in users}
    requests["arm"] = requests["user_id"].map(arm_of)
    requests["fallback"] = requests["variant"] == FALLBACK_VARIANT
    for column, kind in (("clicked", CLICK), ("converted", CONVERSION)):
        ids = feedback.filter(pc.field("type") == kind)["request_id"].unique()
        requests[column] = requests["request_id"].isin(ids.to_pylist())
    return requests[list(REQUEST_COLUMNS)]


def _empty_requests() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": pd.Series(dtype=object),
            "user_id": pd.Series(dtype=object),
            "arm": pd.Series(dtype=object),
            "model_version": pd.Series(dtype=object),
            "variant": pd.Series(dtype=object),
            "fallback": pd.Series(dtype=bool),
            "clicked": pd.Series(dtype=bool),
            "converted": pd.Series(dtype=bool),
        }
    )


@dataclass(frozen=True)
class ArmStats:
    """One arm's sample and rates; `ctr` and `conversion_rate` are per request, with
    user-clustered standard errors."""

    arm: str
    model_version: str
    users: int
    requests: int
    clicked_requests: int
    converted_requests: int
    fallback_requests: int
    # Requests of this arm's users that another version served (a pod on an old version).
    other_version_requests: int
    ctr: ClusteredRatio
    conversion_rate: ClusteredRatio
    # Requests that failed (500) after the arm was chosen: not in `requests`.
    error_requests: int = 0

    @property
    def fallback_ratio(self) -> float:
        return self.fallback_requests / self.requests if self.requests else 0.0

    @property
    def error_ratio(self) -> float:
        attempted = self.requests + self.error_requests
        return self.error_requests / attempted if attempted else 0.0

    def figures(self) -> dict[str, float]:
        """Flat numbers for logs and MLflow metrics, prefixed with the arm's name."""
        low, high = self.ctr.interval()
        values = {
            "users": self.users,
            "requests": self.requests,
            "clicked_requests": self.clicked_requests,
            "converted_requests": self.converted_requests,
            "fallback_requests": self.fallback_requests,
            "fallback_ratio": self.fallback_ratio,
            "error_requests": self.error_requests,
            "error_ratio": self.error_ratio,
            "other_version_requests": self.other_version_requests,
            "ctr": self.ctr.estimate,
            "ctr_se": self.ctr.standard_error,
            "ctr_ci_low": low,
            "ctr_ci_high": high,
            "conversion_rate": self.conversion_rate.estimate,
            "conversion_rate_se": self.conversion_rate.standard_error,
        }
        return {f"{self.arm}.{name}": float(value) for name, value in values.items()}


def arm_statistics(data: ArmData) -> dict[str, ArmStats]:
    """Per arm (both always present, empty arms with zeros): the sample and the rates."""
    requests = data.requests
    result: dict[str, ArmStats] = {}
    for arm in ARMS:
        rows = requests[requests["arm"] == arm]
        version = data.spec.version_of(arm)
        per_user = (
            rows.assign(one=1).groupby("user_id", sort=False)[["one", "clicked", "converted"]].sum()
        )
        served = rows["model_version"]
        other = (~rows["fallback"]) & served.notna() & (served != version)
        result[arm] = ArmStats(
            arm=arm,
            model_version=version,
            users=len(per_user),
            requests=len(rows),
            clicked_requests=int(rows["clicked"].sum()),
            converted_requests=int(rows["converted"].sum()),
            fallback_requests=int(rows["fallback"].sum()),
            other_version_requests=int(other.sum()),
            ctr=clustered_ratio(per_user["clicked"].to_numpy(), per_user["one"].to_numpy()),
            conversion_rate=clustered_ratio(
                per_user["converted"].to_numpy(), per_user["one"].to_numpy()
            ),
            error_requests=data.errors.get(arm, 0),
        )
    return result


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
    elapsed_days = (_utc(now) - _utc(spec.started_at)).total_seconds() / 86_400
    figures = {
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
    interval = (
        f"CTR difference {test.difference:+.4f}, {1 - spec.alpha:.0%} confidence sequence "
        f"[{test.low:+.4f}, {test.high:+.4f}]"
    )
    enough = min(champion.users, challenger.users) >= rails.min_users_per_arm
    excess = challenger.fallback_ratio - champion.fallback_ratio
    error_excess = challenger.error_ratio - champion.error_ratio
    expired = elapsed_days > spec.max_experiment_days

    if enough and excess > rails.max_fallback_excess:
        reason = (
            f"guardrail: the challenger arm's fallback ratio {challenger.fallback_ratio:.3f} "
            f"exceeds the champion arm's {champion.fallback_ratio:.3f} by more than "
            f"{rails.max_fallback_excess}"
        )
        return Decision("stop", reason, figures)
    if enough and error_excess > rails.max_error_excess:
        reason = (
            f"guardrail: the challenger arm's error ratio {challenger.error_ratio:.3f} "
            f"exceeds the champion arm's {champion.error_ratio:.3f} by more than "
            f"{rails.max_error_excess}"
        )
        return Decision("stop", reason, figures)
    if enough and test.low > 0:
        return Decision(
            "promote", f"challenger v{spec.challenger_version} wins: {interval}", figures
        )
    if enough and test.high < 0:
        return Decision("stop", f"challenger v{spec.challenger_version} loses: {interval}", figures)
    if expired:
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


def evaluate(
    lake_uri: str, spec: ExperimentSpec, now: datetime, guardrails: Guardrails | None = None
) -> tuple[dict[str, ArmStats], Decision]:
    """Read, summarise and decide in one call: what `ranking-experiments evaluate` runs."""
    stats = arm_statistics(read_experiment_events(lake_uri, spec, now))
    return stats, decide(stats, spec, now, guardrails)

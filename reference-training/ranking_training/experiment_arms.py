"""The online experiment's arms: its requests read from the lake, and per-arm statistics.

- `read_experiment_events`: the impressions that carry the experiment's id, from its start to
  `now`, and the feedback that matches them under the lake's feedback rules
  (`ranking_features.events`), as one row per ranking request. A user's arm is recomputed from
  the salted bucket (`ranking_features.assignment`), so a request the fallback answered counts
  against the arm whose model failed it.
- `arm_statistics`: per arm, users, requests, requests with a click or a conversion, fallback
  answers, failed requests (`events/errors`: answered 500 after the arm was chosen), and CTR
  and conversion rate with user-clustered (delta-method) standard errors
  (`ranking_features.statistics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from ranking_features.assignment import ARMS, experiment_arm
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

from ranking_training.data import FEEDBACK_COLUMNS, EventFiles, read_events
from ranking_training.experiment_spec import ExperimentSpec, as_utc

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

FALLBACK_VARIANT = "fallback"


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
    window = _Window(spec, as_utc(spec.started_at), as_utc(now))
    lake = _LakeDays(*open_lake(lake_uri), window.days())
    impressions = lake.read(
        IMPRESSIONS_DIR,
        IMPRESSION_SCHEMA,
        ("event_id", "request_id", "ts", "user_id", "item_id", "variant"),
        ("model_version", "experiment_id"),
    )
    impressions.drop_duplicate_events()
    rows = window.of_experiment(impressions.table)
    events, unmatched = _matched_feedback(lake, rows, window.end)
    failed = window.of_experiment(
        lake.read(ERRORS_DIR, RANK_ERROR_SCHEMA, ("ts", "user_id"), ("experiment_id",)).table
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


@dataclass(frozen=True)
class _LakeDays:
    """The lake's event files of the experiment's days."""

    fs: AbstractFileSystem
    root: str
    days: list[str]

    def read(
        self,
        events_dir: str,
        schema: pa.Schema,
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
    ) -> EventFiles:
        return read_events(self.fs, self.root, events_dir, self.days, schema, required, optional)


@dataclass(frozen=True)
class _Window:
    """The experiment from its start to `end`, both UTC."""

    spec: ExperimentSpec
    start: datetime
    end: datetime

    def days(self) -> list[str]:
        """Every day (YYYY-MM-DD) the window touches."""
        count = (self.end.date() - self.start.date()).days + 1
        return [(self.start.date() + timedelta(days=i)).isoformat() for i in range(count)]

    def of_experiment(self, rows: pa.Table) -> pa.Table:
        """The rows with the experiment's id and start <= ts <= end."""
        seconds = _seconds(rows)
        mine = (
            pc.equal(rows["experiment_id"], self.spec.experiment_id)
            .fill_null(False)
            .to_numpy(zero_copy_only=False)
            & (seconds >= self.start.timestamp())
            & (seconds <= self.end.timestamp())
        )
        return rows.filter(pa.array(mine))


def _matched_feedback(lake: _LakeDays, rows: pa.Table, end: datetime) -> tuple[pa.Table, int]:
    """The feedback up to `end` that matches the impressions `rows`, and how many events named
    one of their requests but matched no impression."""
    events = lake.read(FEEDBACK_DIR, FEEDBACK_SCHEMA, FEEDBACK_COLUMNS).table
    events = events.filter(pa.array(first_of_each_event(events)))
    events = events.filter(pa.array(_seconds(events) <= end.timestamp()))
    matched = matches_an_impression(events, rows)
    ours = pc.is_in(events["request_id"], value_set=rows["request_id"]).to_numpy(
        zero_copy_only=False
    )
    return events.filter(pa.array(matched)), int((ours & ~matched).sum())


def _arm_of(spec: ExperimentSpec, user: str) -> str:
    """The arm the experiment's salted assignment puts `user` in."""
    return experiment_arm(spec.experiment_id, user, spec.challenger_traffic)


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

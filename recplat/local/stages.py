"""What the user sees while the local platform works: one line per stage with its duration.

Each stage prints what it is about to do, then how long it took (or that it failed); long
stages get a rich progress bar. Output goes to the given console, so tests can capture it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

if TYPE_CHECKING:
    from datetime import datetime

    from ranking_features.brand import Brand

    from recplat.local.batch_jobs import DriftOutcome, ExperimentsOutcome
    from recplat.local.brand_runs import RunningPlatform
    from recplat.local.simulator import ClientSessions, TrafficOptions
    from recplat.local.workloads import WorkloadWiring
    from recplat.synthetic import GroundTruth


class StageReporter:
    """Prints stage starts and ends with wall-clock durations, and keeps them for the report."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.durations: dict[str, float] = {}

    @contextmanager
    def stage(self, title: str) -> Iterator[None]:
        """Announce `title`, run the block, then print its duration (or that it failed)."""
        self.console.print(f"[bold cyan]==>[/] {title} ...")
        started = time.monotonic()
        try:
            yield
        except BaseException:
            elapsed = time.monotonic() - started
            self.durations[title] = elapsed
            self.console.print(f"[bold red]  x[/] {title}: failed after {elapsed:.1f} s")
            raise
        elapsed = time.monotonic() - started
        self.durations[title] = elapsed
        self.console.print(f"[green]  ok[/] {title} ({elapsed:.1f} s)")

    def progress(self) -> Progress:
        """A progress bar for a long stage; use as a context manager and add tasks to it."""
        return Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )


def evaluate_experiments_stage(
    reporter: StageReporter,
    brands: Mapping[str, tuple[Brand, str]],
    wiring: WorkloadWiring,
    log_dir: Path,
    *,
    until_expiry_within_s: float = 0.0,
    title: str = "evaluate each brand's online experiment",
) -> dict[str, ExperimentsOutcome]:
    """The stage after traffic: `ranking-experiments evaluate` for each brand (its `Brand` and
    lake URI), brands in parallel; prints each brand's report, or why it failed.

    On AKS the evaluator is an hourly CronJob, so an experiment that has no verdict yet is
    evaluated again later. `until_expiry_within_s` does the same here: a brand whose experiment
    is still running (decision `continue`) and reaches `promotion.max_experiment_days` within
    that many seconds is evaluated once more when it has, so the run shows its decision."""
    outcomes: dict[str, ExperimentsOutcome] = {}
    stage = reporter.stage(title)
    with stage, ThreadPoolExecutor(max_workers=max(len(brands), 1)) as pool:
        futures = {
            name: pool.submit(
                _evaluate_until_decided, brand, lake_uri, wiring, log_dir, until_expiry_within_s
            )
            for name, (brand, lake_uri) in brands.items()
        }
        for name, future in futures.items():
            evaluations = future.result()
            outcomes[name] = evaluations[-1]
            for outcome in evaluations:
                prefix = "" if outcome.succeeded else f"{name}: failed: "
                # Plain text: the report's intervals look like rich markup ("[0.1, 0.2]").
                for line in (prefix + outcome.report).splitlines():
                    reporter.console.print(f"     {line}", markup=False, highlight=False)
    return outcomes


def _evaluate_until_decided(
    brand: Brand, lake_uri: str, wiring: WorkloadWiring, log_dir: Path, within_s: float
) -> list[ExperimentsOutcome]:
    """One evaluation, and a second one once the experiment has expired when that is at most
    `within_s` seconds away and the first found no verdict."""
    from recplat.local.batch_jobs import run_experiments

    first = run_experiments("evaluate", brand, lake_uri, wiring, log_dir, as_json=True)
    expires_in = seconds_to_expiry(first.result)
    if expires_in is None or expires_in > within_s:
        return [first]
    # The deadline is a known instant, not a guess: wait for it to pass, then judge again.
    time.sleep(expires_in)
    return [first, run_experiments("evaluate", brand, lake_uri, wiring, log_dir, as_json=True)]


def seconds_to_expiry(result: dict[str, object] | None) -> float | None:
    """Seconds until a running, undecided experiment passes its maximum duration (0 when it
    already has), or None when nothing is left to decide."""
    if not result or not result.get("running") or result.get("decision") != "continue":
        return None
    started = datetime.fromisoformat(str(result["started_at"]))
    days = float(str(result["max_experiment_days"]))
    deadline = started + timedelta(days=days)
    return max((deadline - datetime.now(UTC)).total_seconds(), 0.0) + 1.0


def feature_drift_stage(
    reporter: StageReporter,
    brands: Mapping[str, tuple[Brand, str]],
    wiring: WorkloadWiring,
    log_dir: Path,
    *,
    since: datetime | None = None,
    title: str = "judge each champion's feature drift",
) -> dict[str, DriftOutcome]:
    """`ranking-experiments drift` for each brand (its `Brand` and lake URI), as the hourly
    CronJob runs it on AKS, on the rows sampled since `since` (default: the brand's window);
    prints each verdict, or why it failed."""
    from recplat.local.batch_jobs import run_drift

    outcomes: dict[str, DriftOutcome] = {}
    # Brands in parallel: each run is a process that mostly waits on MLflow and the lake.
    with reporter.stage(title), ThreadPoolExecutor(max_workers=max(len(brands), 1)) as pool:
        futures = {
            name: pool.submit(run_drift, brand, lake_uri, wiring, log_dir, since=since)
            for name, (brand, lake_uri) in brands.items()
        }
        for name, future in futures.items():
            outcome = outcomes[name] = future.result()
            prefix = "" if outcome.succeeded else "failed: "
            reporter.console.print(
                f"     {name}: {prefix}{outcome.report}", markup=False, highlight=False
            )
    return outcomes


DRIFT_ALERT = "RecplatFeatureDrift"
DRIFT_SHIFT_NEW_USERS = 0.6
DRIFT_ALERT_TIMEOUT_S = 180.0
"""The alert rules' deployed interval is a minute; the service polls the verdict every
`ServiceOptions.reload_interval_s` and Prometheus scrapes every 5 s."""


def traffic_shift_drift_stage(
    reporter: StageReporter,
    platform: RunningPlatform,
    clients: Mapping[str, tuple[GroundTruth, ClientSessions]],
    traffic: TrafficOptions,
    unshifted_since: datetime,
) -> dict[str, list[str]]:
    """The demo's drift step: judge the drift of the traffic served since `unshifted_since`,
    then send traffic of which `DRIFT_SHIFT_NEW_USERS` comes from users nobody has seen (a
    campaign's newcomers), judge it, and wait for the local Prometheus to fire the brand's
    `RecplatFeatureDrift`. Returns the features each brand's alert fired for."""
    import dataclasses
    from datetime import UTC, datetime

    brands = {
        name: (platform.brands[name], platform.state.brands[name].lake_uri) for name in clients
    }
    args = (platform.wiring, platform.log_dir)
    feature_drift_stage(
        reporter, brands, *args, since=unshifted_since, title="feature drift of that traffic"
    )
    shifted_since = datetime.now(UTC)
    shifted = dataclasses.replace(
        traffic, seed=traffic.seed + 100, new_user_share=DRIFT_SHIFT_NEW_USERS
    )
    _send_shifted_traffic(reporter, platform, clients, shifted)
    wanted = {
        name
        for name, outcome in feature_drift_stage(
            reporter, brands, *args, since=shifted_since, title="feature drift of shifted traffic"
        ).items()
        if outcome.drifted
    }
    url = platform.state.prometheus_url
    if not wanted or url is None:
        return {}
    return _wait_for_drift_alerts(reporter, url, wanted)


def _send_shifted_traffic(
    reporter: StageReporter,
    platform: RunningPlatform,
    clients: Mapping[str, tuple[GroundTruth, ClientSessions]],
    shifted: TrafficOptions,
) -> None:
    """Every brand's shifted traffic, brands side by side, each until its feedback is in the
    lake."""
    from recplat.local.lake_events import missing_event_ids
    from recplat.local.processes import wait_until
    from recplat.local.simulator import simulate_brand
    from recplat.local.workloads import read_api_key

    def shift(name: str, truth: GroundTruth, sessions: ClientSessions) -> int:
        record = platform.state.brands[name]
        assert record.service_url is not None and record.api_key_file is not None
        key = read_api_key(Path(record.api_key_file))
        result = simulate_brand(name, record.service_url, key, truth, shifted, sessions)
        # Its last feedback is shipped in the round that ships the last sampled vectors.
        wait_until(
            lambda lake=record.lake_uri, sent=result.feedback_event_ids: (  # type: ignore[misc]
                not missing_event_ids(lake, sent)
            ),
            timeout_s=90.0,
            what=f"{name}'s shifted traffic to land in its lake",
            interval_s=1.0,
        )
        return result.requests

    # Brands side by side, as in the other traffic phases.
    with (
        reporter.stage(f"shift the traffic: {DRIFT_SHIFT_NEW_USERS:.0%} of users are new"),
        ThreadPoolExecutor(max_workers=max(len(clients), 1)) as pool,
    ):
        futures = {
            name: pool.submit(shift, name, truth, sessions)
            for name, (truth, sessions) in clients.items()
        }
        for name, future in futures.items():
            reporter.console.print(f"     {name}: {future.result()} requests, in the lake")


def _wait_for_drift_alerts(
    reporter: StageReporter, prometheus_url: str, wanted: set[str]
) -> dict[str, list[str]]:
    """The features `DRIFT_ALERT` fires for, per brand, once it fires for every brand in
    `wanted` (or the timeout passes: the demo goes on and says so)."""
    from recplat.local.processes import LocalPlatformError, wait_until
    from recplat.local.prometheus_api import PrometheusApi

    fired: dict[str, list[str]] = {}
    api = PrometheusApi(prometheus_url)
    with reporter.stage(f"wait for the local Prometheus to fire {DRIFT_ALERT}"):

        def firing() -> bool:
            for alert in api.alerts():
                if alert.name == DRIFT_ALERT and alert.state == "firing":
                    brand = alert.labels.get("brand", "")
                    fired.setdefault(brand, [])
                    if alert.labels.get("feature") not in fired[brand]:
                        fired[brand].append(alert.labels.get("feature", "?"))
            return wanted <= set(fired)

        try:
            wait_until(firing, timeout_s=DRIFT_ALERT_TIMEOUT_S, what=f"{DRIFT_ALERT} to fire")
        except LocalPlatformError as error:  # the demo goes on to its report; it says so
            reporter.console.print(f"     {error}", markup=False, highlight=False)
        for name in sorted(fired):
            features = ", ".join(sorted(fired[name]))
            reporter.console.print(f"     {name}: {DRIFT_ALERT} firing for {features}")
    return fired

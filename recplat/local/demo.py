"""`recplat local demo` (and `make demo`): the whole feedback loop, once, with a report.

Stages: start the platform; send traffic (ranking requests, clicks from each brand's hidden
world, `recplat.synthetic.GroundTruth`, by a simulated client that remembers its users' clicks
and sends them as `recent_items`); wait until the feedback is in the lake; retrain every brand
on it; read the counterfactual gate's decision and figures from the new version's tags
(docs/architecture.md, "Promotion gate"); wait until each running service serves the version
the gate aliased, if any (without a restart); send traffic again; evaluate each running online
experiment (`ranking-experiments evaluate`, docs/architecture.md, "Online experiments"); read
online CTR per version and variant from the lake; write the report; stop everything. Any
failure or Ctrl-C stops all processes the demo started.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ranking_features.mlflow_names import (
    CHALLENGER,
    CHAMPION,
    registered_model_name,
)

from recplat.local.brand_runs import RunningPlatform, train_all
from recplat.local.demo_gate import GateRecord, gate_record
from recplat.local.demo_report import dashboard_images_stage
from recplat.local.lake_events import missing_event_ids
from recplat.local.model_registry import alias_summary, latest_version
from recplat.local.platform import UpOptions, stop_all, up, wipe_data
from recplat.local.processes import LocalPlatformError, wait_until
from recplat.local.simulator import (
    ClientSessions,
    TrafficOptions,
    TrafficResult,
    simulate_brand,
)
from recplat.local.stages import (
    StageReporter,
    evaluate_experiments_stage,
    seconds_to_expiry,
    traffic_shift_drift_stage,
)
from recplat.local.status import service_model
from recplat.local.workloads import read_api_key

if TYPE_CHECKING:
    from recplat.synthetic import GroundTruth

FEEDBACK_LANDING_TIMEOUT_S = 90.0
MODEL_SWITCH_TIMEOUT_S = 90.0


# The gate's outcomes (the version tag `gate`) and the alias each one moves.
ALIAS_OF_OUTCOME = {CHAMPION: CHAMPION, CHALLENGER: CHALLENGER}
# An experiment whose promotion.max_experiment_days ends this soon after the first evaluation
# is evaluated again when it has (the example newsroom's dev experiment lasts ~43 s).
EXPERIMENT_EXPIRY_WAIT_S = 90.0


@dataclass
class BrandOutcome:
    """What happened to one brand during the demo; the report is made of these."""

    brand: str
    first_training: str = ""
    champion_before: str | None = None
    ndcg_before: float | None = None
    traffic: list[TrafficResult] = field(default_factory=list)
    feedback_sent: int = 0
    feedback_in_lake: int = 0
    retraining: str = ""
    new_version: str | None = None
    new_version_ndcg: float | None = None
    challenger: str | None = None
    champion_after: str | None = None
    # The first training's gate (its champion, or why none) and the retrain's.
    first_gate: GateRecord | None = None
    retrain_gate: GateRecord | None = None
    gate: str = ""
    switched_alias: str | None = None
    switch_seconds: float | None = None
    online_ctr: list[dict[str, object]] = field(default_factory=list)
    # The online experiment's last evaluation (`ranking-experiments evaluate --json`).
    experiment: dict[str, object] | None = None
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DemoOptions:
    """The demo's platform options and how much traffic each phase sends."""

    up: UpOptions
    traffic: TrafficOptions = field(default_factory=TrafficOptions)
    fresh: bool = True


def run_demo(options: DemoOptions, reporter: StageReporter) -> list[BrandOutcome]:
    """Run the loop once; return one outcome per brand. Always stops what it started."""
    if options.fresh:
        wipe_data(options.up.state_dir.resolve())
    platform = up(options.up, reporter)
    try:
        return _loop(platform, options, reporter)
    finally:
        with reporter.stage("stop every process the demo started"):
            stop_all(platform.state)


def _loop(
    platform: RunningPlatform, options: DemoOptions, reporter: StageReporter
) -> list[BrandOutcome]:
    state = platform.state
    outcomes = _first_outcomes(platform)
    serving = [name for name, record in state.brands.items() if record.service_url]
    # The day the traffic starts: online CTR counts the served models' events from it on.
    traffic_day = datetime.now(UTC).date()
    clients = _clients(platform, serving, reporter)

    _traffic_phase(platform, clients, outcomes, options.traffic, reporter, "before retraining")
    _wait_for_feedback(platform, serving, outcomes, reporter)
    _retrain(platform, options, outcomes, reporter)
    _wait_for_switch(platform, serving, outcomes, reporter)
    after = TrafficOptions(
        requests=options.traffic.requests,
        candidates=options.traffic.candidates,
        shown=options.traffic.shown,
        seed=options.traffic.seed + 1,
    )
    unshifted_since = datetime.now(UTC)
    _traffic_phase(platform, clients, outcomes, after, reporter, "after the switch")
    _wait_for_feedback(platform, serving, outcomes, reporter)
    _experiments_and_drift(platform, clients, outcomes, after, unshifted_since, reporter)
    with reporter.stage("online CTR per variant from the lake"):
        from recplat.online_ctr import online_ctr_rows

        for name in serving:
            outcomes[name].online_ctr = online_ctr_rows(state.brands[name].lake_uri, traffic_day)
    dashboard_images_stage(reporter, state, platform.brands)
    return list(outcomes.values())


def _first_outcomes(platform: RunningPlatform) -> dict[str, BrandOutcome]:
    """Each brand's outcome with what `up`'s first training did: its message, champion and
    the gate's decision on its newest version."""
    tracking_uri = platform.wiring.tracking_uri
    outcomes = {name: BrandOutcome(brand=name) for name in platform.state.brands}
    for name, record in platform.state.brands.items():
        outcomes[name].first_training = record.training_message
        outcomes[name].champion_before = record.model_version
        outcomes[name].ndcg_before = record.ndcg_at_10
        first = latest_version(tracking_uri, registered_model_name(name))
        outcomes[name].first_gate = gate_record(tracking_uri, name, first) if first else None
    return outcomes


def _retrain(
    platform: RunningPlatform,
    options: DemoOptions,
    outcomes: dict[str, BrandOutcome],
    reporter: StageReporter,
) -> None:
    """Retrain every brand on a window up to today, and read the gate's decision."""
    tracking_uri = platform.wiring.tracking_uri
    previous = {
        name: latest_version(tracking_uri, registered_model_name(name))
        for name in platform.state.brands
    }
    # The window must end today: that is where the services logged the traffic's impressions
    # and clicks. Said explicitly, so the retrain cannot silently stop at yesterday.
    today = datetime.now(UTC).date()
    trainings = train_all(
        platform,
        reporter,
        options.up.training_concurrency,
        title=f"retrain every brand on a window up to today ({today})",
        data_to=today,
    )
    for name, outcome in trainings.items():
        result = outcomes[name]
        result.retraining = outcome.message
        _read_gate(tracking_uri, name, previous[name], result)
        if result.retrain_gate is not None:
            reporter.console.print(f"     {name}: gate {result.retrain_gate.summary()}")


def _experiments_and_drift(
    platform: RunningPlatform,
    clients: dict[str, _Client],
    outcomes: dict[str, BrandOutcome],
    traffic: TrafficOptions,
    unshifted_since: datetime,
    reporter: StageReporter,
) -> None:
    """Judge the online experiments, run the drift stages, and judge again the experiments
    that reach their maximum duration meanwhile."""
    state = platform.state
    # What the hourly CronJob does on AKS: judge each running online experiment on the lake,
    # and once more when one reaches its promotion.max_experiment_days within the demo.
    judged = {name: (platform.brands[name], state.brands[name].lake_uri) for name in state.brands}
    experiments = evaluate_experiments_stage(reporter, judged, platform.wiring, platform.log_dir)
    # Issue 19: that traffic's feature drift, then a shift (new users) firing the drift alert.
    traffic_shift_drift_stage(
        reporter,
        platform,
        {name: (client.truth, client.sessions) for name, client in clients.items()},
        traffic,
        unshifted_since,
    )
    # An experiment without a verdict that reaches its maximum duration meanwhile (the brands'
    # dev settings are a minute or so) is judged again when it has, as the next CronJob run
    # would: the drift stages above run while it gets there.
    expiring = {
        name: judged[name]
        for name, evaluation in experiments.items()
        if (seconds := seconds_to_expiry(evaluation.result)) is not None
        and seconds <= EXPERIMENT_EXPIRY_WAIT_S
    }
    if expiring:
        experiments |= evaluate_experiments_stage(
            reporter,
            expiring,
            platform.wiring,
            platform.log_dir,
            until_expiry_within_s=EXPERIMENT_EXPIRY_WAIT_S,
            title="evaluate again the experiments that reached their maximum duration",
        )
    for name, evaluation in experiments.items():
        if name in outcomes:
            outcomes[name].experiment = evaluation.result
            if not evaluation.succeeded:
                outcomes[name].problems.append(f"experiment evaluation: {evaluation.report}")


@dataclass
class _Client:
    """One brand's simulated client: its world, and its record of the users' clicks (kept
    across the demo's traffic phases, as a real client's would be)."""

    truth: GroundTruth
    sessions: ClientSessions


def _clients(
    platform: RunningPlatform, serving: list[str], reporter: StageReporter
) -> dict[str, _Client]:
    from recplat.synthetic import GroundTruth

    clients = {}
    with reporter.stage("load each brand's simulated world and its users' clicks so far"):
        for name in serving:
            lake = platform.state.brands[name].lake_uri
            clients[name] = _Client(GroundTruth.load(lake), ClientSessions.from_lake(lake))
    return clients


def _traffic_phase(
    platform: RunningPlatform,
    clients: dict[str, _Client],
    outcomes: dict[str, BrandOutcome],
    traffic: TrafficOptions,
    reporter: StageReporter,
    label: str,
) -> None:
    # Brands side by side: each client mostly waits for its own service.
    with (
        reporter.stage(f"simulate traffic {label}"),
        reporter.progress() as bar,
        ThreadPoolExecutor(max_workers=max(len(clients), 1)) as pool,
    ):
        futures = {}
        for name, client in clients.items():
            record = platform.state.brands[name]
            assert record.service_url is not None and record.api_key_file is not None
            task = bar.add_task(f"{name}: /rank + /feedback", total=traffic.requests)
            futures[name] = pool.submit(
                simulate_brand,
                name,
                record.service_url,
                read_api_key(Path(record.api_key_file)),
                client.truth,
                traffic,
                client.sessions,
                on_request=lambda task=task: bar.advance(task),  # type: ignore[misc]
            )
        for name, future in futures.items():
            result = future.result()
            outcomes[name].traffic.append(result)
            outcomes[name].feedback_sent += len(result.feedback_event_ids)
            if result.failed_requests:
                outcomes[name].problems.extend(result.failures)
            ctr = ", ".join(
                f"{key}: CTR {tally.ctr:.3f}" for key, tally in sorted(result.by_variant.items())
            )
            clicks = sum(tally.clicks for tally in result.by_variant.values())
            conversions = sum(tally.conversions for tally in result.by_variant.values())
            bar.console.print(
                f"     {name}: {result.requests} requests in {result.seconds:.1f} s, "
                f"{result.failed_requests} failed, {clicks} clicks, {conversions} conversions; "
                f"{ctr}"
            )


def _wait_for_feedback(
    platform: RunningPlatform,
    serving: list[str],
    outcomes: dict[str, BrandOutcome],
    reporter: StageReporter,
) -> None:
    with reporter.stage("wait until the services have shipped the feedback to the lake"):
        for name in serving:
            lake = platform.state.brands[name].lake_uri
            sent = [i for result in outcomes[name].traffic for i in result.feedback_event_ids]
            wait_until(
                lambda lake=lake, sent=sent: not missing_event_ids(lake, sent),  # type: ignore[misc]
                timeout_s=FEEDBACK_LANDING_TIMEOUT_S,
                what=f"{name}'s {len(sent)} acknowledged feedback events to land in {lake}",
                interval_s=1.0,
            )
            outcomes[name].feedback_in_lake = len(sent)
            reporter.console.print(f"     {name}: {len(sent)} feedback events in the lake")


def _read_gate(tracking_uri: str, name: str, previous: str | None, result: BrandOutcome) -> None:
    """The retrain's version, the gate's decision on it (its tags), and where the aliases are."""
    model = registered_model_name(name)
    newest = latest_version(tracking_uri, model)
    challenger = alias_summary(tracking_uri, model, CHALLENGER)
    champion = alias_summary(tracking_uri, model, CHAMPION)
    result.challenger = challenger.version if challenger else None
    result.champion_after = champion.version if champion else None
    if newest is None or newest == previous:
        result.gate = f"no new version registered ({result.retraining})"
        return
    result.new_version = newest
    gate = gate_record(tracking_uri, name, newest)
    result.retrain_gate = gate
    kept = f"champion v{champion.version}" if champion else "no champion"
    if gate is None:
        result.gate = f"v{newest} has no gate tag; {kept}"
        result.problems.append(
            f"{model} v{newest}: no `gate` tag; was it trained by ranking-train?"
        )
        return
    alias = ALIAS_OF_OUTCOME.get(gate.outcome)
    aliased = {CHAMPION: result.champion_after, CHALLENGER: result.challenger}
    if alias is not None and aliased[alias] != newest:
        result.problems.append(f"gate {gate.outcome}, but the {alias} alias is not on v{newest}")
        alias = None
    if alias is not None:
        summary = challenger if alias == CHALLENGER else champion
        result.new_version_ndcg = summary.ndcg_at_10 if summary else None
    result.switched_alias = alias
    # The counterfactual gate registers every version; only champion and challenger serve.
    served = f"v{newest} serves as {alias}" if alias else f"v{newest} is not served"
    result.gate = f"{gate.outcome}: {served}; {kept}. {gate.reason}"


def _wait_for_switch(
    platform: RunningPlatform,
    serving: list[str],
    outcomes: dict[str, BrandOutcome],
    reporter: StageReporter,
) -> None:
    with reporter.stage("wait until each running service serves its new model (no restart)"):
        for name in serving:
            result = outcomes[name]
            alias, version = result.switched_alias, result.new_version
            url = platform.state.brands[name].service_url
            if alias is None or version is None or url is None:
                continue
            started = time.monotonic()
            try:
                wait_until(
                    lambda url=url, alias=alias, version=version: (  # type: ignore[misc]
                        service_model(url).get(alias) == version
                    ),
                    timeout_s=MODEL_SWITCH_TIMEOUT_S,
                    what=f"{name}'s service to serve v{version} as {alias}",
                    interval_s=0.5,
                )
            except LocalPlatformError as error:
                result.problems.append(str(error))
                continue
            result.switch_seconds = time.monotonic() - started
            reporter.console.print(
                f"     {name}: serving v{version} as {alias} after {result.switch_seconds:.1f} s"
            )

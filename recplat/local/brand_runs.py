"""The per-brand steps of `recplat local up`: synthetic history for brands with an empty lake,
one training run per brand, and one ranking service per trained brand.

`recplat.local.platform` starts the shared parts (storage, MLflow, Prometheus) and calls these
in order; the demo calls `train_all` again for its retrain. Every process started is recorded
in the platform's state at once, so `down` stops exactly those.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ranking_features.brand import Brand
from ranking_features.mlflow_names import CHAMPION, registered_model_name

from recplat.local.model_registry import alias_summary
from recplat.local.processes import LocalPlatformError, StartedProcess
from recplat.local.prometheus import PrometheusFiles, add_scrape_target
from recplat.local.stages import StageReporter
from recplat.local.state import PlatformState
from recplat.local.workloads import (
    ServiceOptions,
    TrainingOutcome,
    WorkloadWiring,
    finish_training,
    service_url,
    start_service,
    start_training,
    wait_service_ready,
)


@dataclass(frozen=True)
class SynthSize:
    """How much synthetic history a brand with an empty lake gets, and how it was served.

    The history, ending yesterday, is served by a popularity ranker that explores the brand's
    `serving.exploration` share of requests as the service does (`recplat.synthetic`). Its
    volume is set by the counterfactual gate, not by training (LightGBM fits it in seconds):
    the first training's gate judges on the explore requests of the history's last day, and
    needs `promotion.min_exploration_requests` of them with intervals narrow enough to decide:
    10 000 requests a day explored at 0.2 (the example brands' dev share) give about 2000.
    """

    users: int = 1000
    items: int = 200
    # Train, early-stopping and gate windows: one day each, and a day of warm-up.
    days: int = 4
    requests_per_user_per_day: float = 10.0
    # As the simulator sends them (`TrafficOptions`): candidates per request, items shown.
    candidates: int = 30
    list_size: int = 10


@dataclass
class RunningPlatform:
    """A platform `up` started: its state, brands and the wiring its workloads share."""

    state: PlatformState
    brands: dict[str, Brand]
    wiring: WorkloadWiring
    trainings: dict[str, TrainingOutcome] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return Path(self.state.state_dir)

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"


def synthesise_missing(platform: RunningPlatform, size: SynthSize, reporter: StageReporter) -> None:
    import pyarrow.compute as pc
    from ranking_features.events import CATALOG_PATH
    from ranking_features.lake import open_lake

    from recplat.synthetic import LoggingPolicy, SynthParams, default_end_date, generate, write_lake

    empty = []
    for name, record in platform.state.brands.items():
        fs, root = open_lake(record.lake_uri)
        if not fs.exists(f"{root}/{CATALOG_PATH}"):
            empty.append(name)
    if not empty:
        reporter.console.print("     every brand has lake data; no synthetic data needed")
        return
    with reporter.stage(f"write synthetic data for {', '.join(empty)}"), reporter.progress() as bar:
        task = bar.add_task("synthetic data", total=len(empty))
        for name in empty:
            params = SynthParams(
                brand=name,
                users=size.users,
                items=size.items,
                days=size.days,
                # A different but reproducible world per brand.
                seed=zlib.crc32(name.encode()) % 10_000,
                end_date=default_end_date(),
                requests_per_user_per_day=size.requests_per_user_per_day,
                list_size=size.list_size,
                logging_policy=LoggingPolicy.POPULARITY.value,
                candidates=size.candidates,
                exploration=platform.brands[name].serving.exploration,
            )
            data = generate(params)
            write_lake(data, platform.state.brands[name].lake_uri)
            oracle = data.oracle.get("ndcg@10")
            explored = pc.sum(pc.equal(data.impressions["policy"], "explore")).as_py() or 0
            bar.console.print(
                f"     {name}: {data.impressions.num_rows} impressions "
                f"({explored // size.list_size} explore requests, share "
                f"{params.exploration}), {data.feedback.num_rows} feedback events, "
                f"{data.catalog.num_rows} items"
                + (f", oracle NDCG@10 {oracle:.3f}" if oracle is not None else "")
            )
            bar.advance(task)


def train_all(
    platform: RunningPlatform,
    reporter: StageReporter,
    concurrency: int,
    *,
    title: str,
    data_to: date | None = None,
) -> dict[str, TrainingOutcome]:
    """One `ranking-train` run per brand, `concurrency` at a time; failures are outcomes.

    `data_to` is the window's last day (default: the job's own, today).
    """
    outcomes: dict[str, TrainingOutcome] = {}
    queue = list(platform.brands.values())
    running: dict[str, tuple[StartedProcess, float]] = {}
    with reporter.stage(title), reporter.progress() as bar:
        task = bar.add_task("training", total=len(queue))
        while queue or running:
            while queue and len(running) < concurrency:
                brand = queue.pop(0)
                record = platform.state.brands[brand.name]
                process = start_training(
                    brand, record.lake_uri, platform.wiring, platform.log_dir, data_to
                )
                platform.state.add_process(process)
                running[brand.name] = (process, time.monotonic())
            finished = _first_finished(running)
            if finished is None:
                time.sleep(0.2)
                continue
            process, started = running.pop(finished)
            outcome = finish_training(finished, process, started)
            platform.state.processes = [p for p in platform.state.processes if p.pid != process.pid]
            _record_training(platform, outcome)
            outcomes[finished] = outcome
            colour = "green" if outcome.succeeded else "red"
            bar.console.print(
                f"     [{colour}]{finished}: {outcome.message}[/] ({outcome.seconds:.1f} s, "
                f"log {outcome.log_path})"
            )
            bar.advance(task)
    platform.trainings = outcomes
    return outcomes


def _first_finished(running: dict[str, tuple[StartedProcess, float]]) -> str | None:
    from recplat.local.processes import exit_code

    for name, (process, _) in running.items():
        if exit_code(process.pid) is not None:
            return name
    return None


def _record_training(platform: RunningPlatform, outcome: TrainingOutcome) -> None:
    record = platform.state.brands[outcome.brand]
    record.training_status = "ok" if outcome.succeeded else "failed"
    record.training_message = outcome.message
    champion = alias_summary(
        platform.wiring.tracking_uri, registered_model_name(outcome.brand), CHAMPION
    )
    if champion is not None:
        record.model_version = champion.version
        record.ndcg_at_10 = champion.ndcg_at_10
    platform.state.save()


def start_services(
    platform: RunningPlatform, options: ServiceOptions, reporter: StageReporter
) -> None:
    # A brand whose training ran serves even before its first champion: the service answers
    # with its popularity fallback and picks the champion up once the gate promotes one.
    servable = [
        platform.brands[name]
        for name, record in platform.state.brands.items()
        if record.training_status == "ok" or record.model_version is not None
    ]
    if not servable:
        raise LocalPlatformError(
            f"every brand's training failed, so no service can start; see the training logs in "
            f"{platform.log_dir}"
        )
    with reporter.stage(f"start {len(servable)} ranking service(s)"), reporter.progress() as bar:
        task = bar.add_task("services ready", total=len(servable))
        started = []
        for brand in servable:
            record = platform.state.brands[brand.name]
            process, key_file = start_service(
                brand,
                record.lake_uri,
                platform.wiring,
                state_dir=platform.state_dir,
                log_dir=platform.log_dir,
                options=options,
            )
            platform.state.add_process(process)
            record.service_url = service_url(process)
            record.api_key_file = str(key_file)
            assert process.port is not None
            add_scrape_target(PrometheusFiles.of(platform.state_dir), process.name, process.port)
            started.append(process)
        platform.state.save()
        for process in started:
            wait_service_ready(process)
            bar.advance(task)

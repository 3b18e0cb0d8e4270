"""`recplat local up` and `down`: start the whole platform on this machine, and stop it.

`up` starts, in order: the storage (a local folder, or Azurite), one MLflow tracking server,
one Prometheus with the brands' alert rules (`recplat.local.prometheus`), synthetic data for
brands whose lake is empty, one training run per brand (a failed brand is reported and the
others continue), and one ranking service per trained brand, each added to Prometheus's
scrape targets as it starts. Every process it starts is recorded in the state file at once,
so `down` (or Ctrl-C, or a failure half-way) stops exactly those, by process id.
"""

from __future__ import annotations

import os
import shutil
import time
import zlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ranking_features.brand import (
    Brand,
    BrandFileError,
    Environment,
    brands_for_environment,
    load_brands,
)
from ranking_features.mlflow_names import CHAMPION, registered_model_name

from recplat.local import azurite as azurite_storage
from recplat.local.commands import recplat_command
from recplat.local.mlflow_tracking import start_mlflow_server, wait_mlflow_ready
from recplat.local.model_registry import alias_summary
from recplat.local.processes import (
    LocalPlatformError,
    StartedProcess,
    is_same_process,
    stop_processes,
)
from recplat.local.prometheus import (
    PrometheusFiles,
    add_scrape_target,
    prometheus_url,
    start_prometheus,
    wait_prometheus_ready,
)
from recplat.local.stages import StageReporter
from recplat.local.state import (
    BrandRecord,
    PlatformState,
    StorageMode,
    load_state,
    remove_state,
)
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

MLFLOW_CONTAINER = "mlflow"


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


@dataclass(frozen=True)
class UpOptions:
    """Everything `up` needs to know."""

    brands_dir: Path
    storage: StorageMode = StorageMode.LOCAL
    state_dir: Path = Path(".scratch/local")
    project_root: Path = Path()
    synth: SynthSize = field(default_factory=SynthSize)
    service: ServiceOptions = field(default_factory=ServiceOptions)
    # Single-threaded jobs that also wait on MLflow and the lake: one more than the cores keeps
    # them all busy (with three brands on two cores, no brand trains alone at the end).
    training_concurrency: int = field(default_factory=lambda: (os.cpu_count() or 1) + 1)


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


def up(options: UpOptions, reporter: StageReporter) -> RunningPlatform:
    """Start the platform; on any failure or Ctrl-C, stop what was started and re-raise."""
    state_dir = options.state_dir.resolve()
    _refuse_if_running(state_dir)
    state = PlatformState(
        state_dir=str(state_dir),
        storage=options.storage.value,
        brands_dir=str(options.brands_dir.resolve()),
    )
    state.save()
    try:
        return _start(options, state, reporter)
    except BaseException:
        reporter.console.print("[yellow]stopping everything started so far ...[/]")
        stop_all(state)
        raise


def _start(options: UpOptions, state: PlatformState, reporter: StageReporter) -> RunningPlatform:
    state_dir = Path(state.state_dir)
    log_dir = state_dir / "logs"
    with reporter.stage(f"load brands with a dev environment from {options.brands_dir}"):
        brands = _dev_brands(options.brands_dir)
        reporter.console.print(f"     brands: {', '.join(brands)}")

    storage_env: dict[str, str] = {}
    artifacts_destination = None
    if options.storage is StorageMode.AZURITE:
        with reporter.stage("start Azurite (blob storage emulator)"):
            emulator = azurite_storage.start_azurite(
                project_root=options.project_root.resolve(),
                data_dir=state_dir / "azurite",
                log_dir=log_dir,
            )
            state.add_process(emulator.process)
            state.azurite_blob_endpoint = emulator.blob_endpoint
            azurite_storage.create_containers(emulator.blob_endpoint, [*brands, MLFLOW_CONTAINER])
            storage_env = {"AZURE_STORAGE_CONNECTION_STRING": emulator.connection_string}
            # The platform itself writes synthetic data and reads the lake back.
            os.environ.update(storage_env)
            artifacts_destination = azurite_storage.artifacts_uri(MLFLOW_CONTAINER)
    for name in brands:
        state.brands[name] = BrandRecord(name=name, lake_uri=lake_uri(state, name))
    state.save()

    with reporter.stage("start the MLflow tracking server (it boots while data is written)"):
        server = start_mlflow_server(
            data_dir=state_dir / "mlflow",
            log_dir=log_dir,
            artifacts_destination=artifacts_destination,
            env=storage_env,
            wait=False,
        )
        state.add_process(server.process)
        state.mlflow_url = server.tracking_uri
        state.save()
    with reporter.stage("start Prometheus with every brand's alert rules"):
        prometheus = start_prometheus(PrometheusFiles.of(state_dir), brands, log_dir)
        state.add_process(prometheus)
        state.prometheus_url = prometheus_url(prometheus)
        state.save()

    platform = RunningPlatform(
        state=state,
        brands=brands,
        wiring=WorkloadWiring(
            environment=Environment.DEV.value,
            tracking_uri=server.tracking_uri,
            storage_env=storage_env,
        ),
    )
    _synthesise_missing(platform, options.synth, reporter)
    with reporter.stage("wait for the MLflow tracking server and Prometheus"):
        wait_mlflow_ready(server)
        reporter.console.print(f"     MLflow UI: {server.tracking_uri}")
        wait_prometheus_ready(prometheus)
        reporter.console.print(f"     Prometheus: {state.prometheus_url}")
    train_all(platform, reporter, options.training_concurrency, title="train every brand")
    _start_services(platform, options.service, reporter)
    return platform


def attach(state_dir: Path) -> RunningPlatform:
    """The platform running from `state_dir` (started with `--detach`), to work with it."""
    state = load_state(state_dir.resolve())
    if state is None or state.mlflow_url is None:
        up_command = recplat_command("local", "up", "--detach", state_dir=state_dir)
        raise LocalPlatformError(
            f"no local platform is running from {state_dir}; start one with `{up_command}`"
        )
    brands = _dev_brands(Path(state.brands_dir))
    storage_env: dict[str, str] = {}
    if state.azurite_blob_endpoint:
        storage_env = {
            "AZURE_STORAGE_CONNECTION_STRING": azurite_storage.connection_string(
                state.azurite_blob_endpoint
            )
        }
        os.environ.update(storage_env)
    wiring = WorkloadWiring(
        environment=Environment.DEV.value,
        tracking_uri=state.mlflow_url,
        storage_env=storage_env,
    )
    return RunningPlatform(
        state=state, brands={name: brands[name] for name in state.brands}, wiring=wiring
    )


def lake_uri(state: PlatformState, brand: str) -> str:
    """The lake of `brand`: a folder under the state dir, or the brand's Azurite container."""
    if state.storage == StorageMode.AZURITE.value:
        return azurite_storage.lake_uri(brand)
    return (Path(state.state_dir) / "lake" / brand).as_uri()


def _dev_brands(brands_dir: Path) -> dict[str, Brand]:
    if not brands_dir.is_dir():
        raise LocalPlatformError(
            f"--brands-dir {brands_dir}: not a directory; point it at the folder of brand files"
        )
    try:
        brands = brands_for_environment(load_brands(brands_dir), Environment.DEV)
    except BrandFileError as error:
        raise LocalPlatformError(f"invalid brand files:\n{error}") from None
    if not brands:
        raise LocalPlatformError(
            f"{brands_dir}: no brand file lists `dev` in its environments; "
            "add one with `recplat brands new`"
        )
    return {brand.name: brand for brand in brands}


def _refuse_if_running(state_dir: Path) -> None:
    previous = load_state(state_dir)
    if previous is None:
        return
    alive = [p for p in previous.processes if is_same_process(p.pid, p.create_time)]
    if alive:
        names = ", ".join(f"{p.name} (pid {p.pid})" for p in alive)
        down_command = recplat_command("local", "down", state_dir=state_dir)
        raise LocalPlatformError(
            f"a local platform is already running from {state_dir}: {names}; "
            f"stop it with `{down_command}` first"
        )
    remove_state(state_dir)


def _synthesise_missing(
    platform: RunningPlatform, size: SynthSize, reporter: StageReporter
) -> None:
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


def _start_services(
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


def stop_all(state: PlatformState) -> list[str]:
    """Stop every process in `state`, newest first; return the names stopped.

    They stop side by side (a service's grace period overlaps the others'), storage last:
    the services flush their feedback to the lake, which may be Azurite, on the way out."""
    alive = [p for p in reversed(state.processes) if is_same_process(p.pid, p.create_time)]
    storage = [p for p in alive if p.name == azurite_storage.PROCESS_NAME]
    for wave in ([p for p in alive if p not in storage], storage):
        stop_processes([p.pid for p in wave])
    stopped = [p.name for p in alive]
    state.processes = []
    remove_state(Path(state.state_dir))
    return stopped


def down(state_dir: Path) -> list[str]:
    """Stop the platform started from `state_dir`; return what was stopped (empty if nothing)."""
    state = load_state(state_dir.resolve())
    if state is None:
        return []
    return stop_all(state)


def wipe_data(state_dir: Path) -> None:
    """Forget lakes, registry and logs of a stopped platform, for a fresh start (the demo)."""
    _refuse_if_running(state_dir.resolve())
    for part in ("lake", "mlflow", "azurite", "logs", "services", "keys", "report", "prometheus"):
        shutil.rmtree(state_dir / part, ignore_errors=True)

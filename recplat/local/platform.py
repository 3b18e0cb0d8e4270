"""`recplat local up` and `down`: start the whole platform on this machine, and stop it.

`up` starts, in order: the storage (a local folder, or Azurite), one MLflow tracking server,
one Prometheus with the brands' alert rules (`recplat.local.prometheus`), synthetic data for
brands whose lake is empty, one training run per brand (a failed brand is reported and the
others continue), and one ranking service per trained brand, each added to Prometheus's
scrape targets as it starts. Every process it starts is recorded in the state file at once,
so `down` (or Ctrl-C, or a failure half-way) stops exactly those, by process id. The
per-brand steps (data, training, services) are in `recplat.local.brand_runs`.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ranking_features.brand import (
    Brand,
    BrandFileError,
    Environment,
    brands_for_environment,
    load_brands,
)

from recplat.local import azurite as azurite_storage
from recplat.local.brand_runs import (
    RunningPlatform,
    SynthSize,
    start_services,
    synthesise_missing,
    train_all,
)
from recplat.local.commands import recplat_command
from recplat.local.mlflow_tracking import start_mlflow_server, wait_mlflow_ready
from recplat.local.processes import LocalPlatformError, is_same_process, stop_processes
from recplat.local.prometheus import (
    PrometheusFiles,
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
from recplat.local.workloads import ServiceOptions, WorkloadWiring

MLFLOW_CONTAINER = "mlflow"


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
    storage_env, artifacts_destination = _start_storage(options, state, brands, reporter)
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
    synthesise_missing(platform, options.synth, reporter)
    with reporter.stage("wait for the MLflow tracking server and Prometheus"):
        wait_mlflow_ready(server)
        reporter.console.print(f"     MLflow UI: {server.tracking_uri}")
        wait_prometheus_ready(prometheus)
        reporter.console.print(f"     Prometheus: {state.prometheus_url}")
    train_all(platform, reporter, options.training_concurrency, title="train every brand")
    start_services(platform, options.service, reporter)
    return platform


def _start_storage(
    options: UpOptions, state: PlatformState, brands: dict[str, Brand], reporter: StageReporter
) -> tuple[dict[str, str], str | None]:
    """Azurite with a container per brand and one for MLflow, when the storage is Azurite:
    the environment that reaches it and MLflow's artifact root. A local folder needs neither."""
    if options.storage is not StorageMode.AZURITE:
        return {}, None
    state_dir = Path(state.state_dir)
    with reporter.stage("start Azurite (blob storage emulator)"):
        emulator = azurite_storage.start_azurite(
            project_root=options.project_root.resolve(),
            data_dir=state_dir / "azurite",
            log_dir=state_dir / "logs",
        )
        state.add_process(emulator.process)
        state.azurite_blob_endpoint = emulator.blob_endpoint
        azurite_storage.create_containers(emulator.blob_endpoint, [*brands, MLFLOW_CONTAINER])
        storage_env = {"AZURE_STORAGE_CONNECTION_STRING": emulator.connection_string}
        # The platform itself writes synthetic data and reads the lake back.
        os.environ.update(storage_env)
        return storage_env, azurite_storage.artifacts_uri(MLFLOW_CONTAINER)


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

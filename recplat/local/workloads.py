"""A brand's two workloads on the local platform: its training job and its ranking service.

Both run as the same programs AKS runs (`ranking-train`, `ranking-serve`), configured by the
same environment variables infra sets on the CronJob and the Deployment (docs/architecture.md,
"Contracts"), so the local platform proves that contract. The API key
is generated into a 0600 file under the state directory and only its path is passed on.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
from ranking_features.brand import Brand, ranking_train_flags
from ranking_features.mlflow_names import registered_model_name
from ranking_features.workload_env import ServiceEnv, WorkloadEnv

from recplat.local.processes import (
    LOOPBACK,
    LocalPlatformError,
    StartedProcess,
    exit_code,
    free_port,
    start_process,
    stop_process,
    tail,
    wait_for_exit,
    wait_until,
)

TRAINING_TIMEOUT_S = 600.0
SERVICE_READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class WorkloadWiring:
    """What every workload of the platform shares: the tracking server and storage access."""

    environment: str
    tracking_uri: str
    # Extra variables for storage access: the Azurite connection string, or nothing.
    storage_env: Mapping[str, str]
    threads_per_job: int = 1


def common_env(brand: Brand, lake_uri: str, wiring: WorkloadWiring) -> dict[str, str]:
    """The variables infra gives both workloads of a brand (infra/brand_pods.py)."""
    threads = str(wiring.threads_per_job)
    return {
        **WorkloadEnv.variables(
            brand=brand.name,
            env=wiring.environment,
            tracking_uri=wiring.tracking_uri,
            model_name=registered_model_name(brand.name),
            lake_uri=lake_uri,
        ),
        # Two cores, several jobs: oversubscribed OpenMP threads would only fight each other.
        # (LightGBM's own num_threads comes from `ranking-train --num-threads`.)
        "OMP_NUM_THREADS": threads,
        "PYTHONUNBUFFERED": "1",
        **wiring.storage_env,
    }


def training_env(brand: Brand, lake_uri: str, wiring: WorkloadWiring) -> dict[str, str]:
    """The training CronJob's environment (infra/brand_training.py), for one local run."""
    return common_env(brand, lake_uri, wiring)


def training_args(brand: Brand, wiring: WorkloadWiring, data_to: date | None = None) -> list[str]:
    """`ranking-train` flags from the brand file, as the CronJob passes them.

    `ranking-train` reads its settings from flags, not from variables, so the brand's lookback,
    label delay, gate settings and LightGBM parameters reach it only this way (`brand` is the
    brand merged for the platform's environment, so its overrides apply). `data_to` pins the
    window's last day; without it the job's default (today) applies, as on AKS.
    """
    args = [
        *ranking_train_flags(brand.training),
        # Locally there is no Dask cluster: every brand trains in its own process.
        "--workers", "0",
        "--num-threads", str(wiring.threads_per_job),
    ]  # fmt: skip
    if data_to is not None:
        args += ["--to", data_to.isoformat()]
    return args


@dataclass(frozen=True)
class ServiceOptions:
    """Local knobs of a ranking service; the demo keeps reload and shipping fast."""

    reload_interval_s: float = 2.0
    ship_interval_s: float = 2.0


def service_env(
    brand: Brand,
    lake_uri: str,
    wiring: WorkloadWiring,
    *,
    api_key_file: Path,
    event_log_dir: Path,
    options: ServiceOptions,
) -> dict[str, str]:
    """The ranking Deployment's environment (infra/brand_service.py), for one local service."""
    serving = brand.serving
    return {
        **common_env(brand, lake_uri, wiring),
        **ServiceEnv.variables(
            api_key_file=api_key_file,
            max_candidates=serving.max_candidates,
            challenger_traffic=serving.challenger_traffic,
            exploration=serving.exploration,
            default_k=serving.default_k,
            feature_sample=brand.monitoring.feature_sample,
            reload_interval_s=options.reload_interval_s,
            event_log_dir=event_log_dir,
            ship_interval_s=options.ship_interval_s,
        ),
    }


def write_api_key(keys_dir: Path, brand: str) -> Path:
    """Generate a random API key for `brand` into `<keys_dir>/<brand>.key`, readable by us only."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    path = keys_dir / f"{brand}.key"
    path.unlink(missing_ok=True)
    # Created 0600 from the start, so the key is never readable by others even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32))
    return path


def read_api_key(path: Path) -> str:
    """The API key a local client (the simulator, a test) sends to the brand's service."""
    return path.read_text().strip()


@dataclass(frozen=True)
class TrainingOutcome:
    """How one training run ended."""

    brand: str
    succeeded: bool
    message: str
    seconds: float
    log_path: Path


def program(name: str) -> list[str]:
    """The argv prefix of a console script of this project, from the running environment."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    found = shutil.which(name)
    if found is None:
        raise LocalPlatformError(
            f"program {name!r} not found next to {sys.executable} or on PATH; "
            "run `uv sync --all-extras` (or `make setup`) first"
        )
    return [found]


def start_training(
    brand: Brand, lake_uri: str, wiring: WorkloadWiring, log_dir: Path, data_to: date | None = None
) -> StartedProcess:
    """Start one `ranking-train` run for `brand`; wait for it with `finish_training`."""
    return start_process(
        f"training-{brand.name}",
        [*program("ranking-train"), *training_args(brand, wiring, data_to)],
        log_path=log_dir / f"training-{brand.name}.log",
        env=training_env(brand, lake_uri, wiring),
    )


def finish_training(
    brand: str, process: StartedProcess, started: float, timeout_s: float = TRAINING_TIMEOUT_S
) -> TrainingOutcome:
    """Wait for a training run; a failure or time-out is an outcome, never an exception."""
    code = wait_for_exit(process.pid, timeout_s)
    seconds = time.monotonic() - started
    if code is None and exit_code(process.pid) is None:
        stop_process(process.pid)
        return TrainingOutcome(
            brand, False, f"timed out after {timeout_s:.0f} s", seconds, process.log_path
        )
    if code == 0:
        # The job's own one-line gate decision, e.g. "... as challenger; PROMOTED to champion".
        decision = next(
            (
                line.strip()
                for line in reversed(tail(process.log_path, 60).splitlines())
                if " registered " in line
            ),
            "trained",
        )
        return TrainingOutcome(brand, True, decision, seconds, process.log_path)
    last_line = next(
        (line for line in reversed(tail(process.log_path, 30).splitlines()) if line.strip()),
        "no output",
    )
    return TrainingOutcome(
        brand, False, f"exit code {code}: {last_line.strip()}", seconds, process.log_path
    )


def start_service(
    brand: Brand,
    lake_uri: str,
    wiring: WorkloadWiring,
    *,
    state_dir: Path,
    log_dir: Path,
    options: ServiceOptions,
) -> tuple[StartedProcess, Path]:
    """Start `ranking-serve` for `brand` on a free loopback port; return it and its key file."""
    api_key_file = write_api_key(state_dir / "keys", brand.name)
    port = free_port()
    env = service_env(
        brand,
        lake_uri,
        wiring,
        api_key_file=api_key_file,
        event_log_dir=state_dir / "services" / brand.name / "event-log",
        options=options,
    )
    process = start_process(
        f"service-{brand.name}",
        [*program("ranking-serve"), "--host", LOOPBACK, "--port", str(port)],
        log_path=log_dir / f"service-{brand.name}.log",
        env=env,
        port=port,
    )
    return process, api_key_file


def service_url(process: StartedProcess) -> str:
    return f"http://{LOOPBACK}:{process.port}"


def wait_service_ready(process: StartedProcess, timeout_s: float = SERVICE_READY_TIMEOUT_S) -> None:
    """Wait until the service answers /readyz with 200 (a model or its fallback is loaded)."""
    url = f"{service_url(process)}/readyz"

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout_s=timeout_s, what=f"{process.name} to be ready", process=process)

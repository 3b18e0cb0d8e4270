"""A brand's two workloads on the local platform: its training job and its ranking service.

Both run as the same programs AKS runs (`ranking-train`, `ranking-serve`), configured by the
same environment variables infra sets on the CronJob and the Deployment (docs/architecture.md,
"Contracts"), so the local platform proves that contract. The API key
is generated into a 0600 file under the state directory and only its path is passed on.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
from ranking_features.brand import Brand, ranking_drift_flags, ranking_train_flags
from ranking_features.mlflow_names import registered_model_name

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
        "RECPLAT_BRAND": brand.name,
        "RECPLAT_ENV": wiring.environment,
        "MLFLOW_TRACKING_URI": wiring.tracking_uri,
        "RECPLAT_MODEL_NAME": registered_model_name(brand.name),
        "RECPLAT_LAKE_URI": lake_uri,
        # Two cores, several jobs: oversubscribed OpenMP threads would only fight each other.
        "OMP_NUM_THREADS": threads,
        "RECPLAT_NUM_THREADS": threads,
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
        "RECPLAT_API_KEY_FILE": str(api_key_file),
        "RECPLAT_MAX_CANDIDATES": str(serving.max_candidates),
        "RECPLAT_CHALLENGER_TRAFFIC": str(serving.challenger_traffic),
        "RECPLAT_EXPLORATION": str(serving.exploration),
        "RECPLAT_DEFAULT_K": str(serving.default_k),
        "RECPLAT_FEATURE_SAMPLE": str(brand.monitoring.feature_sample),
        "RECPLAT_RELOAD_INTERVAL_S": str(options.reload_interval_s),
        "RECPLAT_EVENT_LOG_DIR": str(event_log_dir),
        "RECPLAT_SHIP_INTERVAL_S": str(options.ship_interval_s),
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


EXPERIMENTS_TIMEOUT_S = 300.0


def experiments_args(brand: Brand) -> list[str]:
    """`ranking-experiments` flags from the brand file, as the evaluator CronJob passes them."""
    return [
        "--challenger-traffic", str(brand.serving.challenger_traffic),
        "--max-experiment-days", str(brand.training.promotion.max_experiment_days),
    ]  # fmt: skip


@dataclass(frozen=True)
class ExperimentsOutcome:
    """How one `ranking-experiments` run ended: its report, or why it failed."""

    brand: str
    succeeded: bool
    report: str
    log_path: Path
    # With `as_json`: what the evaluator returned (`ranking_training.experiment_job.run`).
    result: dict[str, Any] | None = None


def run_experiments(
    command: str,
    brand: Brand,
    lake_uri: str,
    wiring: WorkloadWiring,
    log_dir: Path,
    *,
    timeout_s: float = EXPERIMENTS_TIMEOUT_S,
    as_json: bool = False,
) -> ExperimentsOutcome:
    """Run `ranking-experiments <command>` (evaluate or status) for `brand` with the training
    job's environment, to its end; a failure is an outcome, never an exception. Its output is
    also appended to `<log_dir>/experiments-<brand>.log`. With `as_json` the outcome also
    carries the evaluator's result as data."""
    import subprocess

    log_path = log_dir / f"experiments-{brand.name}.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [*program("ranking-experiments"), command, *experiments_args(brand)]
    if as_json:
        argv.append("--json")
    try:
        completed = subprocess.run(
            argv,
            env={**os.environ, **training_env(brand, lake_uri, wiring)},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ExperimentsOutcome(brand.name, False, f"timed out after {timeout_s:.0f} s", log_path)
    with log_path.open("a", encoding="utf-8") as log:
        log.write(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        message = completed.stderr.strip() or f"exit code {completed.returncode}"
        return ExperimentsOutcome(brand.name, False, message, log_path)
    if not as_json:
        return ExperimentsOutcome(brand.name, True, completed.stdout.rstrip(), log_path)
    from ranking_training.experiment_job import describe

    try:
        result = json.loads(completed.stdout)
    except ValueError:
        message = f"ranking-experiments {command} --json printed no JSON; see {log_path}"
        return ExperimentsOutcome(brand.name, False, message, log_path)
    return ExperimentsOutcome(brand.name, True, describe(result), log_path, result)


DRIFT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class DriftOutcome:
    """How one `ranking-experiments drift` run ended: its verdict as data, or why it failed."""

    brand: str
    succeeded: bool
    report: str
    log_path: Path
    # `ranking-experiments drift --json`: psi per feature, drifted, sample_rows, ...
    result: dict[str, Any] | None = None

    @property
    def drifted(self) -> list[str]:
        return list((self.result or {}).get("drifted", []))


def run_drift(
    brand: Brand,
    lake_uri: str,
    wiring: WorkloadWiring,
    log_dir: Path,
    *,
    since: datetime | None = None,
    timeout_s: float = DRIFT_TIMEOUT_S,
) -> DriftOutcome:
    """Run `ranking-experiments drift` for `brand` with the training job's environment and the
    brand's monitoring flags, as its CronJob does (`since` narrows the window to the rows
    sampled from then on); a failure is an outcome, never an exception. Its output is appended
    to `<log_dir>/drift-<brand>.log`."""
    import subprocess

    log_path = log_dir / f"drift-{brand.name}.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [*program("ranking-experiments"), "drift", *ranking_drift_flags(brand.monitoring)]
    if since is not None:
        argv += ["--since", since.isoformat()]
    try:
        completed = subprocess.run(
            [*argv, "--json"],
            env={**os.environ, **training_env(brand, lake_uri, wiring)},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return DriftOutcome(brand.name, False, f"timed out after {timeout_s:.0f} s", log_path)
    with log_path.open("a", encoding="utf-8") as log:
        log.write(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        message = completed.stderr.strip() or f"exit code {completed.returncode}"
        return DriftOutcome(brand.name, False, message, log_path)
    result: dict[str, Any] = json.loads(completed.stdout)
    return DriftOutcome(brand.name, True, drift_summary(result), log_path, result)


def drift_summary(result: Mapping[str, Any]) -> str:
    """A drift verdict in a line or two: the features past the threshold and the largest PSI."""
    if not result.get("judged"):
        return str(result.get("message", "no verdict"))
    psi: dict[str, float] = result["psi"]
    top = sorted(psi.items(), key=lambda item: -item[1])[:3]
    drifted = result.get("drifted") or []
    verdict = f"DRIFTED: {', '.join(drifted)}" if drifted else "no drift"
    return (
        f"v{result['model_version']} on {result['sample_rows']} sampled rows: {verdict} "
        f"(threshold {result['psi_threshold']:g}; largest PSI "
        + ", ".join(f"{name} {value:.3f}" for name, value in top)
        + f"; noise alone ~{result['noise_psi']:.3f})"
    )

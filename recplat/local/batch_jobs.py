"""The brand's evaluator and drift jobs, run locally as their CronJobs run them on AKS:
`ranking-experiments evaluate|status` and `ranking-experiments drift`, with the training job's
environment (`recplat.local.workloads`) and the brand's flags. A failure is an outcome, never
an exception.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ranking_features.brand import Brand, ranking_drift_flags

from recplat.local.workloads import WorkloadWiring, program, training_env

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
    # With `as_json`: what the evaluator returned (`ranking_training.experiment_evaluation.run`).
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
    log_path = log_dir / f"experiments-{brand.name}.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [*program("ranking-experiments"), command, *experiments_args(brand)]
    if as_json:
        argv.append("--json")
    stdout, failure = _run_job(argv, training_env(brand, lake_uri, wiring), timeout_s, log_path)
    if failure is not None:
        return ExperimentsOutcome(brand.name, False, failure, log_path)
    if not as_json:
        return ExperimentsOutcome(brand.name, True, stdout.rstrip(), log_path)
    from ranking_training.experiment_evaluation import describe

    try:
        result = json.loads(stdout)
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
    log_path = log_dir / f"drift-{brand.name}.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [*program("ranking-experiments"), "drift", *ranking_drift_flags(brand.monitoring)]
    if since is not None:
        argv += ["--since", since.isoformat()]
    env = training_env(brand, lake_uri, wiring)
    stdout, failure = _run_job([*argv, "--json"], env, timeout_s, log_path)
    if failure is not None:
        return DriftOutcome(brand.name, False, failure, log_path)
    result: dict[str, Any] = json.loads(stdout)
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


def _run_job(
    argv: list[str], env: dict[str, str], timeout_s: float, log_path: Path
) -> tuple[str, str | None]:
    """Run a job to its end with `env` on top of this process's; its output is appended to
    `log_path`. Its stdout, and why it failed (None when it succeeded)."""
    import subprocess

    try:
        completed = subprocess.run(
            argv,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "", f"timed out after {timeout_s:.0f} s"
    with log_path.open("a", encoding="utf-8") as log:
        log.write(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        return completed.stdout, completed.stderr.strip() or f"exit code {completed.returncode}"
    return completed.stdout, None

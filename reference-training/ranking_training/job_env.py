"""What the training, experiment and drift jobs share on their command line: the workload
environment (`ranking_features.workload_env.TrainingEnv`) as flag defaults.

Each job takes the brand, environment, lake, tracking server and model name as flags; unset
flags fall back to the contract's variables, so on AKS the CronJob's environment configures
the job and a developer overrides it from the shell.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from ranking_features.workload_env import TrainingEnv, WorkloadEnvError

# A cron job should fail fast on a dead tracking server, not retry for minutes; and its stdout
# is the report (or JSON), so MLflow must not print run links into it.
MLFLOW_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
REQUIRED = ("brand", "lake_uri", "tracking_uri")
"""What every job needs, as a flag or its variable."""


def add_workload_arguments(parser: argparse.ArgumentParser) -> TrainingEnv:
    """`--brand`, `--env`, `--lake-uri`, `--tracking-uri`, `--model-name`, defaulting to the
    environment's variables; the environment as read (a bad value exits 2, naming it)."""
    try:
        env = TrainingEnv.read()
    except WorkloadEnvError as error:
        parser.error(str(error))
    for field, help_text in (
        ("brand", ""),
        ("env", ""),
        ("lake_uri", ""),
        ("tracking_uri", ""),
        ("model_name", "default: the brand's registered model name "),
    ):
        parser.add_argument(
            "--" + field.replace("_", "-"),
            default=getattr(env, field),
            help=f"{help_text}[{TrainingEnv.variable(field)}]",
        )
    return env


def iso_utc(moment: datetime) -> str:
    """A time as the jobs record it in MLflow: ISO 8601, UTC, whole seconds."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def mlflow_unreachable(tracking_uri: str, error: Exception) -> str:
    """Why a job could not talk to MLflow, and what to check."""
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return (
        f"MLflow at {tracking_uri} is unreachable or refused the request ({detail[:300]}); "
        f"check {TrainingEnv.variable('tracking_uri')} (or --tracking-uri) and the credentials"
    )


def missing_workload_argument(args: argparse.Namespace) -> str | None:
    """What a job lacks of `REQUIRED`, as an error message naming flag and variable; or None."""
    for field in REQUIRED:
        if not getattr(args, field):
            flag = "--" + field.replace("_", "-")
            return f"{flag} (or {TrainingEnv.variable(field)}) is required"
    return None

"""How a workload signs in to MLflow: its brand's user, with the password read from a file.

On AKS the tracking server runs MLflow's ``basic-auth`` app. Infra gives the ranking
service and the training job ``MlflowAuthEnv`` (``ranking_features.workload_env``): a user
name (``brand-<name>``) and a password file (the brand's Key Vault secret, mounted by the CSI
driver). MLflow's client reads ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD`` from the process environment, so both workloads call
``configure_mlflow_credentials`` once at start-up: the password lives in the process
only, never in the pod spec, and is never logged. With neither variable set (the local
platform) nothing changes and the client sends no credentials.

Shared by serving and training so that both read the same contract the same way.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from ranking_features.workload_env import MlflowAuthEnv

USERNAME_VARIABLE = MlflowAuthEnv.variable("mlflow_username")
PASSWORD_FILE_VARIABLE = MlflowAuthEnv.variable("mlflow_password_file")


class MlflowCredentialsError(ValueError):
    """The MLflow credentials in the environment are unusable; the message names the variable."""


def configure_mlflow_credentials(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set MLflow's basic-auth variables from the RECPLAT ones; the user name, or None if unset."""
    env = os.environ if environ is None else environ
    username = env.get(USERNAME_VARIABLE, "").strip()
    password_file = env.get(PASSWORD_FILE_VARIABLE, "").strip()
    if not username and not password_file:
        return None
    if not password_file:
        raise MlflowCredentialsError(
            f"{USERNAME_VARIABLE} is set to {username!r} but {PASSWORD_FILE_VARIABLE} is not; "
            "set it to the file holding that user's MLflow password, or unset both"
        )
    if not username:
        raise MlflowCredentialsError(
            f"{PASSWORD_FILE_VARIABLE} is set but {USERNAME_VARIABLE} is not; "
            "set it to the MLflow user the password belongs to (brand-<name>)"
        )
    path = Path(password_file)
    try:
        password = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise MlflowCredentialsError(
            f"{PASSWORD_FILE_VARIABLE}: cannot read {path}: {reason}; "
            "mount the brand's MLflow password secret there"
        ) from None
    if not password:
        raise MlflowCredentialsError(
            f"{PASSWORD_FILE_VARIABLE}: {path} is empty; "
            "it must hold the MLflow password of " + username
        )
    env["MLFLOW_TRACKING_USERNAME"] = username
    env["MLFLOW_TRACKING_PASSWORD"] = password
    return username

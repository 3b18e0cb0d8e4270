"""Service settings: the environment contract (docs/architecture.md, "Contracts"), read
once at start.

Every value comes from the environment, as `ranking_features.workload_env.ServiceEnv` names
and types it. The API key itself never sits in an environment variable: `api_key_file` points
at a file (a mounted Kubernetes or Key Vault secret), and placeholder or too-short keys are
refused so a default never reaches prod.
"""

from __future__ import annotations

import re

from ranking_features.mlflow_names import registered_model_name
from ranking_features.workload_env import ServiceEnv, WorkloadEnvError

MIN_API_KEY_LENGTH = 16
# Values people paste into examples; a key that contains one is a placeholder, not a secret.
PLACEHOLDER_KEYS = ("changeme", "change-me", "changethis", "secret", "password", "example", "xxxx")
API_KEY_FILE = ServiceEnv.variable("api_key_file")


class SettingsError(ValueError):
    """The service cannot start with this environment; the message says what to fix."""


class Settings(ServiceEnv):
    """The environment a ranking service runs with (one brand per deployment); its variables
    are the contract's (`ranking_features.workload_env.ServiceEnv`)."""

    @property
    def registered_model(self) -> str:
        """The MLflow registered model to serve: `model_name` if set, else `<brand>-ranker`."""
        return self.model_name or registered_model_name(self.brand)

    def read_api_key(self) -> bytes:
        """The API key from `api_key_file`, refusing missing, placeholder or weak keys."""
        path = self.api_key_file
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SettingsError(
                f"{API_KEY_FILE}: cannot read {path}: {error.strerror}; "
                "mount the brand's API key secret there"
            ) from error
        if len(key) < MIN_API_KEY_LENGTH:
            raise SettingsError(
                f"{API_KEY_FILE}: the key in {path} has {len(key)} characters; "
                f"use a random key of at least {MIN_API_KEY_LENGTH} "
                "(e.g. `openssl rand -hex 32`)"
            )
        lowered = key.lower()
        if any(p in lowered for p in PLACEHOLDER_KEYS) or len(set(key)) < 4:
            raise SettingsError(
                f"{API_KEY_FILE}: the key in {path} is a placeholder; "
                "generate a random one (e.g. `openssl rand -hex 32`)"
            )
        return key.encode("utf-8")


def load_settings() -> Settings:
    """Settings from the environment, with errors that name the variable to fix."""
    try:
        return Settings.read()
    except WorkloadEnvError as error:
        raise SettingsError(str(error)) from None


def redact(uri: str) -> str:
    """A URI safe to log: userinfo and query strings (SAS tokens) removed."""
    uri = re.sub(r"//[^/@:]*:[^/@]*@", "//***@", uri)
    return uri.split("?", 1)[0]

"""Service settings: the environment contract (docs/architecture.md, "Contracts"), read
once at start.

Every value comes from the environment (`RECPLAT_*`, plus `MLFLOW_TRACKING_URI` and the
optional `APPLICATIONINSIGHTS_CONNECTION_STRING`). The API key itself never sits in an
environment variable: `RECPLAT_API_KEY_FILE` points at a file (a mounted Kubernetes or Key
Vault secret), and placeholder or too-short keys are refused so a default never reaches prod.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from ranking_features.brand.fields import BrandName
from ranking_features.mlflow_names import registered_model_name

MIN_API_KEY_LENGTH = 16
# Values people paste into examples; a key that contains one is a placeholder, not a secret.
PLACEHOLDER_KEYS = ("changeme", "change-me", "changethis", "secret", "password", "example", "xxxx")


class SettingsError(ValueError):
    """The service cannot start with this environment; the message says what to fix."""


class Settings(BaseSettings):
    """The environment a ranking service runs with (one brand per deployment)."""

    # python-re: the brand name pattern (the brand file's own) needs a look-ahead.
    model_config = SettingsConfigDict(
        env_prefix="RECPLAT_", extra="ignore", frozen=True, regex_engine="python-re"
    )

    brand: BrandName
    env: str = "dev"
    model_name: str = ""
    tracking_uri: str = Field(
        default="",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "RECPLAT_TRACKING_URI"),
    )
    lake_uri: str
    api_key_file: Path
    max_candidates: Annotated[int, Field(ge=1, le=10_000)] = 100
    challenger_traffic: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    # The brand file's `serving.exploration` and `serving.default_k`, with its defaults
    # (ranking_features.brand.model.Serving; a test keeps the two equal).
    exploration: Annotated[float, Field(ge=0.0, le=0.2)] = 0.05
    default_k: Annotated[int, Field(ge=1, le=2000)] = 20
    # Seeds the exploration draws, so a test can replay them; unset in production (OS entropy).
    exploration_seed: int | None = None
    # The brand file's `monitoring.feature_sample`: the share of returned items whose feature
    # vector is logged for drift monitoring (ranking_service.feature_sample).
    feature_sample: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    reload_interval_s: Annotated[float, Field(gt=0)] = 30.0
    # Local append-only event log; on AKS an emptyDir, which outlives container restarts.
    event_log_dir: Path = Path("event-log")
    ship_interval_s: Annotated[float, Field(gt=0)] = 10.0
    max_body_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024
    max_feedback_batch: Annotated[int, Field(ge=1)] = 1000
    # A FeatureSnapshot JSON (local path or fsspec URL) for the popularity fallback.
    fallback_snapshot: str = ""
    # Bounded registry calls, so a registry outage cannot stall a reload for minutes.
    registry_timeout_s: Annotated[int, Field(ge=1)] = 10
    registry_max_retries: Annotated[int, Field(ge=0)] = 2
    applicationinsights_connection_string: SecretStr | None = Field(
        default=None, validation_alias="APPLICATIONINSIGHTS_CONNECTION_STRING"
    )

    @property
    def registered_model(self) -> str:
        """The MLflow registered model to serve: RECPLAT_MODEL_NAME or `<brand>-ranker`."""
        return self.model_name or registered_model_name(self.brand)

    def read_api_key(self) -> bytes:
        """The API key from `api_key_file`, refusing missing, placeholder or weak keys."""
        path = self.api_key_file
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SettingsError(
                f"RECPLAT_API_KEY_FILE: cannot read {path}: {error.strerror}; "
                "mount the brand's API key secret there"
            ) from error
        if len(key) < MIN_API_KEY_LENGTH:
            raise SettingsError(
                f"RECPLAT_API_KEY_FILE: the key in {path} has {len(key)} characters; "
                f"use a random key of at least {MIN_API_KEY_LENGTH} "
                "(e.g. `openssl rand -hex 32`)"
            )
        lowered = key.lower()
        if any(p in lowered for p in PLACEHOLDER_KEYS) or len(set(key)) < 4:
            raise SettingsError(
                f"RECPLAT_API_KEY_FILE: the key in {path} is a placeholder; "
                "generate a random one (e.g. `openssl rand -hex 32`)"
            )
        return key.encode("utf-8")


def load_settings() -> Settings:
    """Settings from the environment, with errors that name the variable to fix."""
    try:
        return Settings()
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = "_".join(str(part) for part in item["loc"]).upper()
            if not name.startswith(("MLFLOW_", "APPLICATIONINSIGHTS_")):
                name = "RECPLAT_" + name
            problems.append(f"{name}: {item['msg']}")
        raise SettingsError("invalid service environment: " + "; ".join(problems)) from None


def redact(uri: str) -> str:
    """A URI safe to log: userinfo and query strings (SAS tokens) removed."""
    uri = re.sub(r"//[^/@:]*:[^/@]*@", "//***@", uri)
    return uri.split("?", 1)[0]

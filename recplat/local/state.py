"""The local platform's state file: what `up` started, so `down` and `status` can find it.

One JSON file, `.scratch/local/state.json`, holds process ids (with their create times),
ports and URLs. It never holds a secret: API keys live in 0600 files next to it and only
their paths are recorded here. Writes are atomic (temp file, then rename), so a reader
never sees half a file even when `up` is interrupted.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recplat.local.processes import LocalPlatformError, StartedProcess


class StorageMode(StrEnum):
    """Where the lake and MLflow artifacts live locally (``recplat local up --storage``)."""

    LOCAL = "local"
    AZURITE = "azurite"


DEFAULT_STATE_DIR = Path(".scratch/local")
STATE_FILE_NAME = "state.json"


class ProcessRecord(BaseModel):
    """One program the platform started."""

    model_config = ConfigDict(extra="forbid")

    name: str
    pid: int
    create_time: float
    log_path: str
    port: int | None = None

    @classmethod
    def of(cls, process: StartedProcess) -> ProcessRecord:
        return cls(
            name=process.name,
            pid=process.pid,
            create_time=process.create_time,
            log_path=str(process.log_path),
            port=process.port,
        )


class BrandRecord(BaseModel):
    """One brand on the local platform: where its lake is and where its service listens."""

    model_config = ConfigDict(extra="forbid")

    name: str
    lake_uri: str
    service_url: str | None = None
    api_key_file: str | None = None
    model_version: str | None = None
    ndcg_at_10: float | None = None
    training_status: str = "pending"
    training_message: str = ""


class PlatformState(BaseModel):
    """Everything `up` started, in start order."""

    model_config = ConfigDict(extra="forbid")

    state_dir: str
    storage: str
    brands_dir: str = ""
    mlflow_url: str | None = None
    prometheus_url: str | None = None
    azurite_blob_endpoint: str | None = None
    processes: list[ProcessRecord] = Field(default_factory=list)
    brands: dict[str, BrandRecord] = Field(default_factory=dict)

    @property
    def path(self) -> Path:
        return Path(self.state_dir) / STATE_FILE_NAME

    def add_process(self, process: StartedProcess) -> None:
        self.processes.append(ProcessRecord.of(process))
        self.save()

    def save(self) -> None:
        """Write the state atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")
        temporary.replace(self.path)


def load_state(state_dir: Path) -> PlatformState | None:
    """The state of the platform started from `state_dir`, or None if none was started."""
    path = state_dir / STATE_FILE_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return PlatformState.model_validate_json(text)
    except ValidationError as error:
        raise LocalPlatformError(
            f"{path}: not a recplat local state file ({error.error_count()} problem(s)); "
            "stop any platform processes by hand and delete the file"
        ) from None


def remove_state(state_dir: Path) -> None:
    """Forget the platform: called once everything it started has stopped."""
    (state_dir / STATE_FILE_NAME).unlink(missing_ok=True)

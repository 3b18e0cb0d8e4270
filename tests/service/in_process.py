"""The ranking service in the test's own process: `create_app(settings)` under FastAPI's
TestClient, with its lifespan (event log, lake shipper, model reloader) running for real.

Used as a context manager: entering starts the app and waits until `/readyz` answers 200 (the
reloader's first registry load is done, or there is no registry and the fallback serves);
leaving runs the app's shutdown, which ships the event log to the lake, so `lake_rows()` then
reads what a deployment would have written.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pyarrow.dataset as ds
from fastapi.testclient import TestClient
from ranking_service.app import create_app
from ranking_service.settings import Settings

from recplat.testing.servers import wait_until
from recplat.testing.service_process import metric_sample

# The service sets these for its registry client (bounded retries) in the process it runs in;
# here that is the test run's, so they are put back when the app stops.
_MLFLOW_CLIENT_VARIABLES = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
)


class InProcessService:
    """One brand's app. `client` sends no API key unless given `headers=auth`; `rank()` and
    `feedback()` send it."""

    def __init__(
        self, workdir: Path, *, brand: str, tracking_uri: str = "", **settings: Any
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.lake = workdir / "lake"
        self.api_key = secrets.token_hex(24)
        key_file = workdir / "api-key"
        key_file.write_text(self.api_key + "\n", encoding="utf-8")
        key_file.chmod(0o600)
        self.settings = Settings(
            brand=brand,
            lake_uri=self.lake.as_uri(),
            api_key_file=key_file,
            tracking_uri=tracking_uri,
            event_log_dir=workdir / "event-log",
            **settings,
        )
        self.auth = {"Authorization": f"Bearer {self.api_key}"}
        self._saved_environment: dict[str, str | None] = {}
        self.client = TestClient(create_app(self.settings))

    def __enter__(self) -> InProcessService:
        self._saved_environment = {name: os.environ.get(name) for name in _MLFLOW_CLIENT_VARIABLES}
        self.client.__enter__()
        wait_until(
            lambda: self.client.get("/readyz").status_code == 200,
            60,
            f"the {self.settings.brand} app's first model load (/readyz 200)",
        )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.client.__exit__(kind, error, traceback)
        finally:
            for name, value in self._saved_environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def rank(self, **body: Any) -> httpx.Response:
        """POST /rank with the brand's API key."""
        return self.client.post("/rank", json=body, headers=self.auth)

    def feedback(self, body: dict[str, Any]) -> httpx.Response:
        """POST /feedback with the brand's API key."""
        return self.client.post("/feedback", json=body, headers=self.auth)

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample in /metrics (0 if absent)."""
        return metric_sample(self.client.get("/metrics").text, name, **labels)

    def lake_rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of `events/<table>` in the lake (after the app stopped and shipped)."""
        folder = self.lake / "events" / table
        assert folder.is_dir(), f"nothing was shipped to {folder}"
        rows: list[dict[str, Any]] = ds.dataset(folder, format="parquet").to_table().to_pylist()
        return rows

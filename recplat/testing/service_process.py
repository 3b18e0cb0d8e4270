"""A real `ranking-serve` process on a free loopback port, as tests and benchmarks drive it:
the environment a deployment gives it, an API key file, start (waits for /readyz), SIGTERM,
SIGKILL, its log and its /metrics samples."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from ranking_features.workload_env import ServiceEnv

from recplat.testing.servers import free_port, wait_until

SERVE = Path(sys.executable).with_name("ranking-serve")


class RankingService:
    """One brand's service; `start()` waits for /readyz, `stop()`/`kill()` end it."""

    def __init__(
        self,
        workdir: Path,
        *,
        brand: str,
        lake_uri: str,
        tracking_uri: str = "",
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ) -> None:
        """`command` runs instead of `ranking-serve` (it gets `--host` and `--port`), e.g. an
        older release's code for a benchmark."""
        self.workdir = workdir
        self.command = command or [str(SERVE)]
        workdir.mkdir(parents=True, exist_ok=True)
        self.api_key = secrets.token_hex(24)
        key_file = workdir / "api-key"
        key_file.write_text(self.api_key + "\n", encoding="utf-8")
        key_file.chmod(0o600)
        self.env = {
            **os.environ,
            **ServiceEnv.variables(
                brand=brand,
                env="dev",
                lake_uri=lake_uri,
                tracking_uri=tracking_uri,
                api_key_file=key_file,
                event_log_dir=workdir / "event-log",
                reload_interval_s="1",
                ship_interval_s="1",
            ),
            **(env or {}),
        }
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "service.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def start(self, timeout: float = 120.0) -> RankingService:
        self.port = free_port()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.command, "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(self._ready, timeout, f"ranking-serve ready on {self.url}")
        except TimeoutError as error:
            self.stop()
            raise AssertionError(f"{error}; log:\n{self.log()[-3000:]}") from None
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"ranking-serve exited early; log:\n{self.log()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self, timeout: float = 30, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.auth, timeout=timeout, **kwargs)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (graceful: the event log is shipped) and wait."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"ranking-serve ignored SIGTERM for {timeout:.0f} s") from None

    def kill(self) -> None:
        """SIGKILL: a crash, nothing gets flushed or shipped."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample in /metrics (0 if absent)."""
        return metric_sample(httpx.get(f"{self.url}/metrics", timeout=10).text, name, **labels)


def metric_sample(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples of metric `name` carrying `labels` in a Prometheus text
    exposition (0 if there are none)."""
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    total = 0.0
    for line in exposition.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        label_part = line[len(name) :].split(" ")[0].strip("{}")
        if wanted <= set(label_part.split(",")):
            total += float(line.rsplit(" ", 1)[1])
    return total

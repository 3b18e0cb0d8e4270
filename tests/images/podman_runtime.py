"""Podman as the image tests use it: recplat's own storage, labelled test containers.

The environment comes from `scripts/containers/podman-env.sh`, so every image, layer
and container lives under `.scratch/podman` and the machine's podman set-up is
untouched. Containers started here carry the label `recplat.test=true`, which
`scripts/containers/cleanup.sh` removes if a run dies before its own clean-up.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINER_UID = 10001
TEST_LABEL = "recplat.test=true"


@dataclass(frozen=True)
class BuiltImage:
    """An image `scripts/containers/build-images.sh` built, as its report line gives it."""

    ref: str
    seconds: float
    bytes: int
    cached: bool


@dataclass(frozen=True)
class MlflowContainer:
    """The tracking server running from the MLflow image, on host networking."""

    container: str
    port: int
    data_dir: Path

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class PodmanError(RuntimeError):
    """A podman command failed; the message holds the command and its output."""


def podman_environment() -> dict[str, str]:
    """os.environ plus CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and TMPDIR for recplat."""
    script = REPO_ROOT / "scripts" / "containers" / "podman-env.sh"
    printed = subprocess.run(
        ["bash", str(script)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    env = dict(os.environ)
    for line in printed.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0]
    return env


@dataclass(frozen=True)
class Podman:
    """Runs podman with recplat's configuration."""

    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        result = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise PodmanError(
                f"podman {shlex.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        return result.stdout

    def start(self, image: str, *options: str, command: tuple[str, ...] = ()) -> str:
        """`podman run -d` with the test label; returns the container id."""
        return self.run("run", "-d", "--label", TEST_LABEL, *options, image, *command).strip()

    def inspect(self, target: str) -> dict[str, Any]:
        return dict(json.loads(self.run("inspect", target))[0])

    def logs(self, container: str) -> str:
        result = subprocess.run(
            ["podman", "logs", container], env=self.env, capture_output=True, text=True, timeout=60
        )
        return result.stdout + result.stderr

    def exec(self, container: str, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", "exec", container, *command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def remove(self, container: str) -> None:
        self.run("rm", "-f", "-t", "0", container, check=False)

    def wait_exit(self, container: str, timeout: float) -> int:
        """Wait for the container to exit; returns its exit code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.inspect(container)["State"]
            if state["Status"] in ("exited", "stopped"):
                return int(state["ExitCode"])
            time.sleep(0.2)
        raise TimeoutError(f"container {container[:12]} still running after {timeout:.0f} s")


def writable_by_container(path: Path) -> Path:
    """Create `path` owned by the images' fixed UID, so a bind mount is writable inside."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, CONTAINER_UID, CONTAINER_UID)
    return path

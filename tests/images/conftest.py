"""Fixtures of the image tests: podman, the three images built once, and the MLflow
server running from its own image, all on loopback with host networking.

The tests skip, with the reason shown, only when podman cannot run on this machine at
all; under CI (CI=true) that is a failure instead, because CI installs podman.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from recplat.testing.servers import free_port, http_status, wait_until
from tests.images.podman_runtime import (
    REPO_ROOT,
    BuiltImage,
    MlflowContainer,
    Podman,
    podman_environment,
    writable_by_container,
)

IN_CI = os.environ.get("CI", "").lower() == "true"
BUILD_TIMEOUT_S = 1500


def _podman_problem(env: dict[str, str]) -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed (Debian: apt-get install podman runc debootstrap)"
    if os.geteuid() != 0:
        return "the image tests run podman as root (debootstrap and bind mounts need it)"
    info = subprocess.run(
        ["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if info.returncode != 0:
        return f"`podman info` fails: {info.stderr.strip()[-500:]}"
    return None


@pytest.fixture(scope="session")
def podman() -> Iterator[Podman]:
    """recplat's podman; its environment is also exported for testinfra's podman backend."""
    env = podman_environment()
    problem = _podman_problem(env)
    if problem is not None:
        if IN_CI:
            pytest.fail(f"container tests cannot run in CI: {problem}")
        pytest.skip(f"container tests skipped: {problem}")
    saved = {name: os.environ.get(name) for name in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF")}
    for name in saved:
        os.environ[name] = env[name]
    try:
        yield Podman(env)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def images(podman: Podman) -> dict[str, BuiltImage]:
    """service, training and mlflow, built by the same script users and CI run."""
    log = REPO_ROOT / ".scratch" / "images" / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        result = subprocess.run(
            ["bash", str(REPO_ROOT / "scripts" / "containers" / "build-images.sh")],
            env=podman.env,
            stdout=subprocess.PIPE,
            stderr=output,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
    assert result.returncode == 0, f"image build failed; see {log}:\n{log.read_text()[-4000:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return {name: BuiltImage(**entry) for name, entry in report.items()}


@pytest.fixture(scope="session")
def mlflow_container(
    podman: Podman, images: dict[str, BuiltImage], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowContainer]:
    """The tracking server from the MLflow image: read-only root, SQLite and artifacts on a
    volume, proxied artifacts (the way the platform runs it, minus PostgreSQL and Blob)."""
    data = writable_by_container(tmp_path_factory.mktemp("mlflow-data"))
    port = free_port()
    container = podman.start(
        images["mlflow"].ref,
        "--network=host",
        "--read-only",
        "--tmpfs=/tmp:rw,mode=1777",
        f"--volume={data}:/mlflow",
        "--env=MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
        f"--env=MLFLOW_PORT={port}",
        command=(
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", "sqlite:////mlflow/mlflow.db",
            "--serve-artifacts", "--artifacts-destination", "/mlflow/artifacts",
        ),
    )  # fmt: skip
    server = MlflowContainer(container, port, data)
    try:
        wait_until(
            lambda: (
                http_status(f"{server.tracking_uri}/health") == 200
                or podman.inspect(container)["State"]["Status"] != "running"
            ),
            180,
            f"MLflow container answering /health on port {port}",
        )
        assert http_status(f"{server.tracking_uri}/health") == 200, podman.logs(container)
        yield server
    finally:
        podman.remove(container)

"""The ranking service image, run the way AKS runs it: non-root, read-only root filesystem,
writable /tmp and event-log volume, a real champion model in the MLflow image's server.

The tests of one running container run in file order; the last one stops it with SIGTERM.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
import testinfra

from recplat.testing.rankers import register_ranker, tiny_snapshot, train_ranker
from recplat.testing.servers import free_port, http_status, wait_until
from tests.images.podman_runtime import (
    CONTAINER_UID,
    BuiltImage,
    MlflowContainer,
    Podman,
    writable_by_container,
)

pytestmark = pytest.mark.containers

BRAND = "imgsvc"
API_KEY = "9f2c4e7a1b3d5f60a8c2e4b6d8f0a1c3"
GRACE_PERIOD_S = 30
# The target for the service image (453 MB on the local base at the last build).
SIZE_TARGET_BYTES = 500_000_000


@dataclass(frozen=True)
class ServiceContainer:
    container: str
    port: int
    lake: Path
    event_log: Path
    champion_version: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = httpx.post(
        url, json=body, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    )
    return response.status_code, response.json()


@pytest.fixture(scope="module")
def service(
    podman: Podman,
    images: dict[str, BuiltImage],
    mlflow_container: MlflowContainer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceContainer]:
    version = register_ranker(
        mlflow_container.tracking_uri,
        f"{BRAND}-ranker",
        train_ranker(seed=1),
        tiny_snapshot(),
        ("champion",),
    )
    workdir = tmp_path_factory.mktemp("service-image")
    lake = writable_by_container(workdir / "lake")
    event_log = writable_by_container(workdir / "event-log")
    key_file = workdir / "api-key"
    key_file.write_text(API_KEY)
    key_file.chmod(0o444)
    port = free_port()
    container = podman.start(
        images["service"].ref,
        "--network=host",
        "--read-only",
        "--tmpfs=/tmp:rw,mode=1777",
        f"--volume={event_log}:/var/lib/recplat/event-log",
        f"--volume={lake}:/lake",
        f"--volume={key_file}:/run/secrets/recplat/api-key:ro",
        f"--stop-timeout={GRACE_PERIOD_S}",
        f"--env=RECPLAT_BRAND={BRAND}",
        "--env=RECPLAT_ENV=dev",
        f"--env=MLFLOW_TRACKING_URI={mlflow_container.tracking_uri}",
        "--env=RECPLAT_LAKE_URI=file:///lake",
        "--env=RECPLAT_API_KEY_FILE=/run/secrets/recplat/api-key",
        # Nothing ships on a timer during the test: what reaches the lake is the shutdown flush.
        "--env=RECPLAT_SHIP_INTERVAL_S=3600",
        f"--env=RECPLAT_PORT={port}",
        command=("ranking-serve", "--host", "127.0.0.1", "--port", str(port)),
    )
    running = ServiceContainer(container, port, lake, event_log, version)
    try:
        wait_until(
            lambda: (
                http_status(f"{running.url}/healthz") == 200
                or podman.inspect(container)["State"]["Status"] != "running"
            ),
            120,
            "the service container answering /healthz",
        )
        assert http_status(f"{running.url}/healthz") == 200, podman.logs(container)
        yield running
    finally:
        podman.remove(container)


@pytest.fixture(scope="module")
def host(service: ServiceContainer) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{service.container}")


def test_becomes_ready_with_the_registered_champion(service: ServiceContainer) -> None:
    wait_until(lambda: http_status(f"{service.url}/readyz") == 200, 120, "/readyz answering 200")
    served = httpx.get(f"{service.url}/model", timeout=5).text
    assert f"{BRAND}-ranker" in served
    assert service.champion_version in served


def test_ranks_with_the_champion(service: ServiceContainer) -> None:
    status, body = post(
        f"{service.url}/rank", {"user_id": "u-1", "candidates": ["i-1", "i-2", "i-3"], "k": 2}
    )
    assert status == 200
    assert body["fallback"] is False
    assert body["model"]["version"] == service.champion_version
    assert len(body["items"]) == 2


def test_runs_as_the_fixed_non_root_user(host: testinfra.host.Host, podman: Podman) -> None:
    assert host.check_output("id -u") == str(CONTAINER_UID)
    assert host.check_output("id -g") == str(CONTAINER_UID)
    # PID 1 (tini) and the server under it both run as that user.
    for status in host.check_output("cat /proc/1/status /proc/[0-9]*/status").split("Name:")[1:]:
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == [str(CONTAINER_UID)] * 4, status


def test_root_filesystem_is_read_only_and_only_tmp_and_the_event_log_are_writable(
    host: testinfra.host.Host,
) -> None:
    for path in ("/opt/venv/probe", "/etc/probe", "/probe"):
        result = host.run(f"touch {path}")
        assert result.rc != 0
        assert "Read-only file system" in result.stderr
    assert host.run("touch /tmp/probe && rm /tmp/probe").rc == 0
    assert (
        host.run("touch /var/lib/recplat/event-log/probe && rm /var/lib/recplat/event-log/probe").rc
        == 0
    )


def test_listens_on_the_configured_port(
    host: testinfra.host.Host, service: ServiceContainer
) -> None:
    assert host.socket(f"tcp://127.0.0.1:{service.port}").is_listening


def test_healthcheck_passes(podman: Podman, service: ServiceContainer) -> None:
    result = podman.run("healthcheck", "run", service.container, check=False)
    assert result.strip() in ("", "healthy"), result
    health = podman.inspect(service.container)["State"]["Health"]
    assert health["Status"] == "healthy", health


BUILD_TOOLS = (
    "gcc",
    "cc",
    "g++",
    "make",
    "ld",
    "as",
    "strip",
    "pip",
    "pip3",
    "git",
    "curl",
    "wget",
)
FOREIGN_PACKAGES = ("pulumi", "dask", "pandas", "sklearn", "ranking_training", "infra", "policies")


def test_no_build_tools_pip_or_other_images_dependencies(host: testinfra.host.Host) -> None:
    for tool in BUILD_TOOLS:
        assert not host.exists(tool), f"{tool} is in the service image"
    assert "No module named pip" in host.run("python3 -m pip --version").stderr
    assert not host.file("/wheels").exists
    for package in FOREIGN_PACKAGES:
        probe = (
            f"import importlib.util, sys; sys.exit(importlib.util.find_spec({package!r}) is None)"
        )
        assert host.run(f'python3 -c "{probe}"').rc == 1, f"{package} is in the service image"


def test_image_holds_no_secrets(
    podman: Podman, images: dict[str, BuiltImage], host: testinfra.host.Host
) -> None:
    config = podman.inspect(images["service"].ref)["Config"]
    names = [entry.split("=", 1)[0] for entry in config["Env"]]
    for name in names:
        assert not any(word in name for word in ("KEY", "SECRET", "PASSWORD", "TOKEN")), name
    history = podman.run(
        "history", "--no-trunc", "--format", "{{.CreatedBy}}", images["service"].ref
    )
    assert API_KEY not in history
    # No private key, credential file or baked API key anywhere on the image's filesystem.
    found = host.run(
        # (.py files are skipped: key-handling libraries name the PEM header in their code)
        "grep -rlIE --exclude='*.py' -e 'BEGIN ([A-Z]+ )?PRIVATE KEY' -e %s "
        "/etc /opt /root /usr /var /wheels 2>/dev/null; "
        "find / -xdev \\( -name .netrc -o -name .git-credentials -o -name .pypirc "
        "-o -name 'id_rsa*' -o -name .docker \\) -print",
        API_KEY,
    )
    assert found.stdout.strip() == ""


def test_image_size_and_build_time(images: dict[str, BuiltImage]) -> None:
    service = images["service"]
    print({name: (round(image.bytes / 1e6), image.seconds) for name, image in images.items()})
    assert service.bytes < SIZE_TARGET_BYTES, (
        f"service image is {service.bytes / 1e6:.0f} MB; target {SIZE_TARGET_BYTES / 1e6:.0f} MB"
    )


def test_sigterm_stops_within_the_grace_period_and_flushes_feedback(
    podman: Podman, service: ServiceContainer
) -> None:
    events = [
        {"event_id": str(uuid.uuid4()), "user_id": "u-1", "item_id": f"i-{n}", "type": "click"}
        for n in range(5)
    ]
    status, body = post(f"{service.url}/feedback", {"events": events})
    assert (status, body) == (202, {"accepted": 5})

    started = time.monotonic()
    # podman stop sends the image's stop signal (SIGTERM) and waits --stop-timeout before SIGKILL.
    podman.run("stop", service.container, timeout=GRACE_PERIOD_S + 30)
    elapsed = time.monotonic() - started
    state = podman.inspect(service.container)["State"]

    assert elapsed < GRACE_PERIOD_S, f"stop took {elapsed:.1f} s: SIGTERM was not handled"
    # uvicorn re-raises SIGTERM once its graceful shutdown is done, so a clean stop exits
    # 143 (128 + 15); 137 would mean podman had to SIGKILL it after the grace period.
    assert state["ExitCode"] in (0, 143), podman.logs(service.container)
    assert "event log flushed and shipped" in podman.logs(service.container)
    shipped = [
        event_id
        for path in sorted((service.lake / "events" / "feedback").rglob("*.parquet"))
        for event_id in pq.read_table(path, columns=["event_id"]).column("event_id").to_pylist()
    ]
    assert sorted(shipped) == sorted(event["event_id"] for event in events)
    leftovers = [path for path in service.event_log.rglob("*.jsonl")]
    assert leftovers == [], f"segments left unshipped: {leftovers}"

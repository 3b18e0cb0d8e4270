"""The MLflow server image: serves as the tracking server of the other image tests; here,
what the platform relies on besides answering: non-root, read-only root, its HEALTHCHECK,
the PostgreSQL and Azure Blob drivers that the official image lacks, and the two programs
the pods run from it (the server's start script and the brands' access job)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import testinfra

from infra.database import BACKEND_STORE_URI_SECRET
from infra.mlflow_access import ACCESS_JOB_PATH, ADMIN_PASSWORD_FILE
from infra.mlflow_access import SECRETS_DIR as ACCESS_SECRETS_DIR
from infra.mlflow_server import ADMIN_PASSWORD_SECRET, FLASK_KEY_SECRET
from infra.mlflow_server_pod import AUTH_CONFIG, SECRETS_DIR, START_SCRIPT
from recplat.testing.servers import free_port, http_status, wait_until
from tests.images.podman_runtime import (
    CONTAINER_UID,
    BuiltImage,
    MlflowContainer,
    Podman,
    writable_by_container,
)

pytestmark = pytest.mark.containers


@pytest.fixture(scope="module")
def host(mlflow_container: MlflowContainer) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{mlflow_container.container}")


def test_runs_non_root_on_a_read_only_root(
    host: testinfra.host.Host, podman: Podman, mlflow_container: MlflowContainer
) -> None:
    assert host.check_output("id -u") == str(CONTAINER_UID)
    assert podman.inspect(mlflow_container.container)["HostConfig"]["ReadonlyRootfs"] is True
    assert "Read-only file system" in host.run("touch /opt/venv/probe").stderr


def test_listens_on_its_port_and_passes_its_healthcheck(
    host: testinfra.host.Host, podman: Podman, mlflow_container: MlflowContainer
) -> None:
    assert host.socket(f"tcp://127.0.0.1:{mlflow_container.port}").is_listening
    result = podman.run("healthcheck", "run", mlflow_container.container, check=False)
    assert result.strip() in ("", "healthy"), result
    assert podman.inspect(mlflow_container.container)["State"]["Health"]["Status"] == "healthy"


def test_has_the_backend_and_artifact_drivers_and_no_pip(host: testinfra.host.Host) -> None:
    drivers = (
        "import psycopg, sqlalchemy.dialects.postgresql.psycopg, azure.identity, azure.storage.blob"
    )
    result = host.run(f'python3 -c "{drivers}"')
    assert result.rc == 0, result.stderr
    assert "No module named pip" in host.run("python3 -m pip --version").stderr
    for tool in ("gcc", "make", "pip", "git"):
        assert not host.exists(tool), f"{tool} is in the MLflow image"


def test_the_pods_start_the_server_and_reserve_a_brand_from_the_image(
    podman: Podman, images: dict[str, BuiltImage], tmp_path: Path
) -> None:
    """The Deployment's command (infra.mlflow_server_pod) and an access Job's
    (infra.mlflow_access), run in the image as the pods run them: read-only root, secrets as
    read-only files; the Job has no writable /tmp."""
    admin = secrets.token_hex(16)
    server_secrets, job_secrets = tmp_path / "server-secrets", tmp_path / "job-secrets"
    data = writable_by_container(tmp_path / "data")
    for folder, files in (
        (server_secrets, {BACKEND_STORE_URI_SECRET: "sqlite:////mlflow/mlflow.db",
                          ADMIN_PASSWORD_SECRET: admin, FLASK_KEY_SECRET: secrets.token_hex(32)}),
        (job_secrets, {ADMIN_PASSWORD_FILE: admin, "brand-acme": secrets.token_hex(20),
                       "brand-acme-reader": secrets.token_hex(20)}),
    ):  # fmt: skip
        folder.mkdir()
        for name, value in files.items():
            (folder / name).write_text(value)
            (folder / name).chmod(0o644)
    port = free_port()
    server = podman.start(
        images["mlflow"].ref,
        "--network=host", "--read-only", "--tmpfs=/tmp:rw,mode=1777",
        f"--volume={server_secrets}:{SECRETS_DIR}:ro", f"--volume={data}:/mlflow",
        f"--env=MLFLOW_AUTH_CONFIG_PATH={AUTH_CONFIG}", f"--env=MLFLOW_PORT={port}",
        "--env=MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false", f"--entrypoint={START_SCRIPT}",
        command=(SECRETS_DIR, "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                 "--serve-artifacts", "--artifacts-destination", "/mlflow/artifacts"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: (
                http_status(f"{url}/health") == 200
                or podman.inspect(server)["State"]["Status"] != "running"
            ),
            300,
            f"the start script's MLflow answering /health on port {port}",
        )
        assert http_status(f"{url}/health") == 200, podman.logs(server)
        assert http_status(f"{url}/api/2.0/mlflow/experiments/search?max_results=1") == 401
        job = podman.run(
            "run", "--rm", "--network=host", "--read-only",
            f"--volume={job_secrets}:{ACCESS_SECRETS_DIR}:ro", "--entrypoint=python3",
            images["mlflow"].ref, ACCESS_JOB_PATH, url, ACCESS_SECRETS_DIR, "acme",
            timeout=600,
        )  # fmt: skip
        assert "mlflow-access: acme: reserved registered model acme-ranker" in job, job
        assert admin not in job + podman.logs(server)
    finally:
        podman.remove(server)

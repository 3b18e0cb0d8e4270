"""The MLflow server image: serves as the tracking server of the other image tests; here,
what the platform relies on besides answering: non-root, read-only root, its HEALTHCHECK,
and the PostgreSQL and Azure Blob drivers that the official image lacks."""

from __future__ import annotations

import pytest
import testinfra

from tests.images.podman_runtime import CONTAINER_UID, MlflowContainer, Podman

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

"""The brands' MLflow users: the planned Job and its secrets, and its script against real MLflow.

The script the Job runs is executed here, unchanged, against a real ``mlflow server
--app-name basic-auth`` with ``default_permission = NO_PERMISSIONS`` (as on AKS), and
the brand users it creates are used through ``configure_mlflow_credentials`` and
MLflow's own client: a brand owns what it creates, and another brand cannot see it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from infra.brand_names import brand_names
from infra.mlflow_users import SET_USERS_SCRIPT, job_name
from recplat.brand import brands_for_environment, load_brands
from recplat.plan import Plan
from recplat.plan_cli import kubernetes_manifest, write_manifests
from tests.conftest import free_port, wait_until
from tests.infra.conftest import REPO_ROOT, kubernetes_version
from tests.infra.test_env_manifests import CHECKOV_SKIPS

USERS_COMPONENT = "recplat:mlflow:MlflowUsers$"


def _users_resources(plan: Plan) -> list[dict[str, Any]]:
    return [r for r in plan.resources if USERS_COMPONENT in str(r["urn"])]


@pytest.fixture(scope="module")
def brand_plans(plan_for: Callable[[str, Path | None], Plan]) -> dict[str, Plan]:
    return {stack: plan_for(stack, REPO_ROOT / "brands") for stack in ("dev", "prod")}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_job_sets_every_brand_user_from_mounted_secrets(
    brand_plans: dict[str, Plan], stack: str
) -> None:
    brands = brands_for_environment(load_brands(REPO_ROOT / "brands"), stack)
    users = sorted(f"brand-{brand.name}" for brand in brands)
    manifests = {
        m["kind"]: m
        for r in _users_resources(brand_plans[stack])
        if (m := kubernetes_manifest(r)) is not None
    }
    assert set(manifests) == {"Job", "SecretProviderClass", "NetworkPolicy"}
    job = manifests["Job"]
    assert job["metadata"]["namespace"] == "mlflow"
    # Named by the brand set and the password secrets' versions (see the test below).
    assert re.fullmatch(r"mlflow-users-[0-9a-f]{10}", job["metadata"]["name"])
    assert job["metadata"]["name"] != job_name([brand_names(b.name, stack) for b in brands])
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:2] == ["python3", "-c"]
    assert container["command"][3:] == [
        "http://mlflow.mlflow.svc.cluster.local:5000", "/mnt/secrets", *users
    ]  # fmt: skip
    assert "env" not in container, "no credential may travel as an env value"
    assert pod["serviceAccountName"] == "mlflow-server"
    assert pod["volumes"][0]["csi"]["volumeAttributes"] == {"secretProviderClass": "mlflow-users"}
    provider = manifests["SecretProviderClass"]
    assert "secretObjects" not in provider["spec"], "nothing may be synced to a Kubernetes Secret"
    listed = yaml.safe_load(provider["spec"]["parameters"]["objects"])["array"]
    objects = [yaml.safe_load(item) for item in listed]
    assert [(o["objectName"], o["objectAlias"]) for o in objects] == [
        ("mlflow-admin-password", "admin-password"),
        *((f"{user}-mlflow-password", user) for user in users),
    ]
    for kind in ("Job", "NetworkPolicy"):
        kubernetes_validate.validate(manifests[kind], kubernetes_version(stack), strict=True)
    egress = manifests["NetworkPolicy"]["spec"]["egress"]
    assert [rule["ports"][0]["port"] for rule in egress] == [53, 5000]
    assert "ingress" not in manifests["NetworkPolicy"]["spec"]


def test_the_mlflow_server_lets_the_job_in(brand_plans: dict[str, Plan]) -> None:
    (policy,) = [
        m for r in brand_plans["prod"].resources
        if (m := kubernetes_manifest(r)) and m["kind"] == "NetworkPolicy"
        and m["metadata"]["namespace"] == "mlflow" and m["metadata"]["name"] == "mlflow"
    ]  # fmt: skip
    peers = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert {"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "mlflow-users", "app.kubernetes.io/part-of": "recplat"
    }}} in peers  # fmt: skip


def test_the_job_passes_checkov(brand_plans: dict[str, Plan], tmp_path: Path) -> None:
    uvx = shutil.which("uvx")
    assert uvx, "uvx (from uv) runs checkov in its own environment; install uv"
    written = write_manifests(_users_resources(brand_plans["prod"]), tmp_path)
    assert len(written) == 3
    result = subprocess.run(
        [uvx, "--from", "checkov", "checkov", "--directory", str(tmp_path),
         "--framework", "kubernetes", "--output", "json", "--quiet", "--compact",
         "--skip-download", "--skip-check", ",".join(sorted(CHECKOV_SKIPS))],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout or "{}")
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{check['check_id']} {check['check_name']}"
        for entry in reports
        for check in entry.get("results", {}).get("failed_checks", [])
    ]
    assert reports[0].get("summary", {}).get("passed", 0) > 20, result.stderr[-2000:]
    assert failed == [], "\n".join(failed)


def test_the_job_name_changes_with_the_brand_set_and_rotated_passwords() -> None:
    a, b, c = (brand_names(name, "dev") for name in ("alpha", "beta", "gamma"))
    versions = ["https://kv/secrets/brand-alpha-mlflow/1", "https://kv/secrets/brand-beta-mlflow/1"]
    assert job_name([a, b], versions) == job_name([b, a], versions[::-1])
    assert len({job_name([a, b]), job_name([a, b, c]), job_name([a])}) == 3
    rotated = [versions[0], "https://kv/secrets/brand-beta-mlflow/2"]
    assert job_name([a, b], versions) != job_name([a, b], rotated)
    assert len(job_name([a, b], versions)) <= 63


@dataclass(frozen=True)
class AuthServer:
    url: str
    secrets: Path


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """A real basic-auth MLflow server configured like the one on AKS."""
    workdir = tmp_path_factory.mktemp("mlflow-auth")
    secrets_dir = workdir / "secrets"
    secrets_dir.mkdir()
    admin = secrets.token_hex(16)
    (secrets_dir / "admin-password").write_text(admin + "\n")
    config = workdir / "basic_auth.ini"
    config.write_text(
        textwrap.dedent(
            f"""\
            [mlflow]
            default_permission = NO_PERMISSIONS
            database_uri = sqlite:///{workdir / "auth.db"}
            admin_username = admin
            admin_password = {admin}
            authorization_function = mlflow.server.auth:authenticate_request_basic_auth
            """
        )
    )
    port = free_port()
    log = (workdir / "mlflow.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
         "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
         "--serve-artifacts", "--artifacts-destination", str(workdir / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(config),
             "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
             "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):  # noqa: S310 - loopback
                return True
        except OSError:
            return process.poll() is not None  # stop waiting; the assert below says why

    try:
        wait_until(healthy, 120, f"basic-auth MLflow on port {port} (log {workdir}/mlflow.log)")
        assert process.poll() is None, (workdir / "mlflow.log").read_text()[-2000:]
        yield AuthServer(url=url, secrets=secrets_dir)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


def _set_users(server: AuthServer, *users: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SET_USERS_SCRIPT, server.url, str(server.secrets), *users],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _as_brand(server: AuthServer, user: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run MLflow client ``code`` in a fresh process signed in the way workloads sign in."""
    program = textwrap.dedent(
        """\
        from mlflow import MlflowClient
        from ranking_features.mlflow_credentials import configure_mlflow_credentials
        configure_mlflow_credentials()
        client = MlflowClient()
        """
    ) + textwrap.dedent(code)
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_TRACKING")}
    env.update(
        MLFLOW_TRACKING_URI=server.url,
        RECPLAT_MLFLOW_USERNAME=user,
        RECPLAT_MLFLOW_PASSWORD_FILE=str(server.secrets / user),
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
    )
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
        check=False, env=env,
    )  # fmt: skip


def test_users_are_created_then_updated_and_each_brand_sees_only_its_own(
    auth_server: AuthServer,
) -> None:
    for user in ("brand-alpha", "brand-beta"):
        (auth_server.secrets / user).write_text(secrets.token_hex(20) + "\n")
    first = _set_users(auth_server, "brand-alpha", "brand-beta")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "mlflow-users: created brand-alpha", "mlflow-users: created brand-beta"
    ]  # fmt: skip

    old_alpha = (auth_server.secrets / "brand-alpha").read_text()
    (auth_server.secrets / "brand-alpha").write_text(secrets.token_hex(20))
    second = _set_users(auth_server, "brand-alpha", "brand-beta")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        "mlflow-users: updated brand-alpha", "mlflow-users: updated brand-beta"
    ]  # fmt: skip
    for password in (old_alpha.strip(), (auth_server.secrets / "brand-beta").read_text().strip()):
        assert password not in first.stdout + first.stderr + second.stdout + second.stderr

    owner = _as_brand(
        auth_server, "brand-alpha", 'print(client.create_experiment("recplat/alpha"))'
    )
    assert owner.returncode == 0, owner.stderr[-2000:]
    experiment_id = owner.stdout.strip()
    other = _as_brand(auth_server, "brand-beta", f'client.get_experiment("{experiment_id}")')
    assert other.returncode != 0
    assert "PERMISSION_DENIED" in other.stderr or "403" in other.stderr, other.stderr[-2000:]
    again = _as_brand(auth_server, "brand-alpha", f'client.get_experiment("{experiment_id}")')
    assert again.returncode == 0, again.stderr[-2000:]


def test_a_wrong_admin_password_fails_naming_the_users(
    auth_server: AuthServer, tmp_path: Path
) -> None:
    shutil.copytree(auth_server.secrets, tmp_path / "secrets")
    (tmp_path / "secrets" / "admin-password").write_text("not-the-admin-password")
    (tmp_path / "secrets" / "brand-gamma").write_text(secrets.token_hex(20))
    result = _set_users(AuthServer(auth_server.url, tmp_path / "secrets"), "brand-gamma")
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "mlflow-users: failed for brand-gamma (looked up: HTTP 401)"
    ), result.stderr

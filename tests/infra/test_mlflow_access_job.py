"""The MLflow access job and the server's start-up script, against a real basic-auth MLflow
server started the way the AKS pod starts it.

The server runs from ``images/mlflow/start-server.sh`` with a secrets directory holding the
files the pod's CSI volume holds. The job (``infra/mlflow_access_job.py``) runs as the Job runs
it (``python3 <file> URL SECRETS_DIR BRAND...``), and brand workloads are played by fresh
processes that sign in the way the service and the training job do
(``configure_mlflow_credentials`` and MLflow's own client). Each test uses its own brand
names, so they share one server.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra import mlflow_access
from infra.database import BACKEND_STORE_URI_SECRET
from infra.mlflow_server import ADMIN_PASSWORD_SECRET, FLASK_KEY_SECRET
from recplat.testing.servers import free_port, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
START_SCRIPT = REPO_ROOT / "images/mlflow/start-server.sh"
ACCESS_JOB = REPO_ROOT / "infra/mlflow_access_job.py"
# The job imports MLflow's auth client, which loads MLflow's server: 10 to 30 s here, and
# minutes when the machine is shared (the Job's deadline on AKS is 900 s).
JOB_TIMEOUT_S = 600


@dataclass(frozen=True)
class AuthServer:
    url: str
    secrets: Path
    """The access job's secrets directory: the admin's and the brands' passwords."""
    pid: int
    auth_config: Path


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """A real basic-auth MLflow server, started by the image's start script from a secrets
    directory laid out like the pod's CSI volume (the backend store doubles as the auth one,
    as on AKS)."""
    workdir = tmp_path_factory.mktemp("mlflow-auth")
    server_secrets, job_secrets = workdir / "server-secrets", workdir / "secrets"
    server_secrets.mkdir()
    job_secrets.mkdir()
    admin = secrets.token_hex(16)
    (server_secrets / BACKEND_STORE_URI_SECRET).write_text(f"sqlite:///{workdir / 'mlflow.db'}")
    (server_secrets / ADMIN_PASSWORD_SECRET).write_text(admin)
    (server_secrets / FLASK_KEY_SECRET).write_text(secrets.token_hex(32))
    # The name the Job mounts it under: the job reads it there, or every test here fails.
    (job_secrets / mlflow_access.ADMIN_PASSWORD_FILE).write_text(admin + "\n")
    auth_config = workdir / "tmp" / "mlflow" / "basic_auth.ini"
    port = free_port()
    log = (workdir / "mlflow.log").open("wb")
    process = subprocess.Popen(
        [str(START_SCRIPT), str(server_secrets),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--serve-artifacts", "--artifacts-destination", str(workdir / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
             "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
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
        wait_until(healthy, 300, f"basic-auth MLflow on port {port} (log {workdir}/mlflow.log)")
        assert process.poll() is None, (workdir / "mlflow.log").read_text()[-2000:]
        yield AuthServer(url=url, secrets=job_secrets, pid=process.pid, auth_config=auth_config)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


def _passwords(server: AuthServer, *brands: str) -> None:
    for brand in brands:
        for user in (f"brand-{brand}", f"brand-{brand}-reader"):
            if not (server.secrets / user).exists():
                (server.secrets / user).write_text(secrets.token_hex(20) + "\n")


def run_access_job(server: AuthServer, *brands: str) -> subprocess.CompletedProcess[str]:
    _passwords(server, *brands)
    return subprocess.run(
        [sys.executable, str(ACCESS_JOB), server.url, str(server.secrets), *brands],
        capture_output=True, text=True, timeout=JOB_TIMEOUT_S, check=False,
    )  # fmt: skip


def as_user(server: AuthServer, user: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run MLflow client ``code`` in a fresh process signed in the way workloads sign in."""
    program = textwrap.dedent(
        """\
        import mlflow
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


def outcomes(server: AuthServer, user: str, calls: list[str]) -> dict[str, str]:
    """Each MLflow client call as ``user`` (one process): ``denied``, ``ok`` or the error."""
    program = (
        "import json\nresults = {}\n"
        + "".join(
            f"try:\n    {call}\n    results[{call!r}] = 'ok'\n"
            "except Exception as error:\n"
            f"    results[{call!r}] = 'denied' if 'PERMISSION_DENIED' in str(error) "
            "or '403' in str(error) else repr(error)[:300]\n"
            for call in calls
        )
        + "print(json.dumps(results))\n"
    )
    result = as_user(server, user, program)
    assert result.returncode == 0, result.stderr[-2000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


# What a brand's training job does with its own names: a run, a version, the aliases.
TRAIN = """\
experiment = client.get_experiment_by_name("recplat/{brand}")
mlflow.set_experiment(experiment_id=experiment.experiment_id)
with mlflow.start_run() as run:
    mlflow.log_metric("ndcg", 0.5)
    mlflow.log_text("model", "model/model.txt")
version = client.create_model_version("{brand}-ranker", f"runs:/{{run.info.run_id}}/model",
                                      run_id=run.info.run_id)
client.set_registered_model_alias("{brand}-ranker", "champion", version.version)
print(version.version)
"""


def test_users_are_created_then_updated_and_passwords_never_printed(
    auth_server: AuthServer,
) -> None:
    first = run_access_job(auth_server, "alpha")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[:2] == [
        "mlflow-access: created brand-alpha", "mlflow-access: created brand-alpha-reader"
    ]  # fmt: skip
    (auth_server.secrets / "brand-alpha").write_text(secrets.token_hex(20))
    second = run_access_job(auth_server, "alpha")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        "mlflow-access: updated brand-alpha", "mlflow-access: updated brand-alpha-reader"
    ], "a second run changes nothing but passwords"  # fmt: skip
    for user in ("brand-alpha", "brand-alpha-reader", "admin-password"):
        password = (auth_server.secrets / user).read_text().strip()
        assert password not in first.stdout + first.stderr + second.stdout + second.stderr
    trained = as_user(auth_server, "brand-alpha", TRAIN.format(brand="alpha"))
    assert trained.returncode == 0, trained.stderr[-2000:]


def test_a_squatter_cannot_take_over_a_brand_that_is_added_later(
    auth_server: AuthServer,
) -> None:
    assert run_access_job(auth_server, "evil").returncode == 0
    # The squatting sequence: before acme exists, evil takes acme's names.
    squat = as_user(
        auth_server,
        "brand-evil",
        """\
        print(client.create_experiment("recplat/acme"))
        client.create_registered_model("acme-ranker")
        """,
    )
    assert squat.returncode == 0, squat.stderr[-2000:]
    squatted_experiment = squat.stdout.strip()

    onboarding = run_access_job(auth_server, "acme")
    assert onboarding.returncode == 1, "acme's workloads must not start on squatted names"
    assert "revoked brand-evil's MANAGE on experiment recplat/acme" in onboarding.stdout
    assert "revoked brand-evil's MANAGE on registered model acme-ranker" in onboarding.stdout
    assert "registered model acme-ranker is taken" in onboarding.stderr, onboarding.stderr
    assert "experiment recplat/acme is taken" in onboarding.stderr, onboarding.stderr

    # The squatter lost everything it held on acme's names.
    calls = [
        f'client.get_experiment("{squatted_experiment}")',
        'client.get_registered_model("acme-ranker")',
        'client.set_registered_model_alias("acme-ranker", "champion", "1")',
        'client.delete_registered_model("acme-ranker")',
    ]
    assert outcomes(auth_server, "brand-evil", calls) == dict.fromkeys(calls, "denied")
    # The refusal sticks until an admin has looked: a second run refuses again.
    again = run_access_job(auth_server, "acme")
    assert again.returncode == 1
    assert "acme-ranker is taken" in again.stderr


def test_names_reserved_first_cannot_be_squatted_and_brands_stay_apart(
    auth_server: AuthServer,
) -> None:
    result = run_access_job(auth_server, "north", "south")
    assert result.returncode == 0, result.stderr
    assert "mlflow-access: north: reserved registered model north-ranker" in result.stdout
    # Squatting after the reservation fails outright.
    squat = as_user(auth_server, "brand-south", 'client.create_registered_model("north-ranker")')
    assert squat.returncode != 0
    assert "RESOURCE_ALREADY_EXISTS" in squat.stderr or "already exists" in squat.stderr

    trained = as_user(auth_server, "brand-north", TRAIN.format(brand="north"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    # South, as writer or reader, can neither read, write nor move north's aliases.
    calls = [
        'client.get_experiment_by_name("recplat/north")',
        'client.get_registered_model("north-ranker")',
        'client.get_model_version_by_alias("north-ranker", "champion")',
        'client.set_registered_model_alias("north-ranker", "champion", "1")',
        'client.delete_registered_model_alias("north-ranker", "champion")',
        'client.create_model_version("north-ranker", "runs:/x/model")',
    ]
    for user in ("brand-south", "brand-south-reader"):
        assert outcomes(auth_server, user, calls) == dict.fromkeys(calls, "denied"), user
    # A brand cannot hand itself or anyone more: the writer holds EDIT, not MANAGE.
    grant = as_user(
        auth_server,
        "brand-north",
        """\
        import requests, os
        response = requests.post(
            os.environ["MLFLOW_TRACKING_URI"] + "/api/3.0/mlflow/users/permissions/grant",
            auth=("brand-north", os.environ["MLFLOW_TRACKING_PASSWORD"]),
            json={"username": "brand-south", "resource_type": "registered_model",
                  "resource_id": "north-ranker", "permission": "READ"},
            timeout=10,
        )
        print(response.status_code)
        """,
    )
    assert grant.stdout.strip() == "403", grant.stdout + grant.stderr[-1000:]


def test_serving_reads_its_model_and_cannot_write(auth_server: AuthServer) -> None:
    assert run_access_job(auth_server, "east").returncode == 0
    trained = as_user(auth_server, "brand-east", TRAIN.format(brand="east"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    version = trained.stdout.strip().splitlines()[-1]
    read = as_user(
        auth_server,
        "brand-east-reader",
        """\
        version = client.get_model_version_by_alias("east-ranker", "champion")
        path = mlflow.artifacts.download_artifacts(f"models:/east-ranker@champion")
        print(version.version)
        """,
    )
    assert read.returncode == 0, read.stderr[-2000:]
    assert read.stdout.strip().splitlines()[-1] == version
    experiment = 'client.get_experiment_by_name("recplat/east").experiment_id'
    calls = [
        f'client.set_registered_model_alias("east-ranker", "champion", "{version}")',
        'client.delete_registered_model_alias("east-ranker", "champion")',
        'client.create_model_version("east-ranker", "runs:/x/model")',
        f"client.create_run({experiment})",
        f'client.set_experiment_tag({experiment}, "k", "v")',
        'client.set_registered_model_tag("east-ranker", "k", "v")',
    ]
    assert outcomes(auth_server, "brand-east-reader", calls) == dict.fromkeys(calls, "denied")


def test_names_a_brand_created_itself_before_the_job_are_adopted(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before this job existed, brands created their own names and got MANAGE on them.
    from mlflow.server.auth.client import AuthServiceClient  # loads MLflow's server: only here

    _passwords(auth_server, "west")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    admin_password = (auth_server.secrets / "admin-password").read_text().strip()
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", admin_password)
    for user in ("brand-west", "brand-west-reader"):
        password = (auth_server.secrets / user).read_text().strip()
        AuthServiceClient(auth_server.url).create_user(user, password)
    legacy = as_user(
        auth_server,
        "brand-west",
        """\
        client.create_experiment("recplat/west")
        client.create_registered_model("west-ranker")
        """,
    )
    assert legacy.returncode == 0, legacy.stderr[-2000:]

    adopted = run_access_job(auth_server, "west")
    assert adopted.returncode == 0, adopted.stderr
    assert "granted brand-west EDIT on registered model west-ranker" in adopted.stdout
    # MANAGE is gone: the brand can still train and move its aliases, but not delete.
    trained = as_user(auth_server, "brand-west", TRAIN.format(brand="west"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    call = 'client.delete_registered_model("west-ranker")'
    assert outcomes(auth_server, "brand-west", [call]) == {call: "denied"}


def test_a_wrong_admin_password_fails_clearly(auth_server: AuthServer, tmp_path: Path) -> None:
    shutil.copytree(auth_server.secrets, tmp_path / "secrets")
    (tmp_path / "secrets" / "admin-password").write_text("not-the-admin-password")
    wrong = dataclasses.replace(auth_server, secrets=tmp_path / "secrets")
    result = run_access_job(wrong, "gamma")
    assert result.returncode == 1
    assert "user brand-gamma: HTTP 401" in result.stderr, result.stderr


@pytest.mark.fast
def test_the_start_script_parses_as_sh_and_bash_and_passes_shellcheck() -> None:
    for shell in ("sh", "bash"):
        checked = subprocess.run([shell, "-n", str(START_SCRIPT)], capture_output=True, text=True)
        assert checked.returncode == 0, f"{shell} -n {START_SCRIPT}: {checked.stderr}"
    assert START_SCRIPT.stat().st_mode & stat.S_IXUSR, f"{START_SCRIPT} is not executable"
    if shutil.which("shellcheck") is not None:
        linted = subprocess.run(["shellcheck", str(START_SCRIPT)], capture_output=True, text=True)
        assert linted.returncode == 0, linted.stdout


def test_the_start_script_writes_a_private_auth_config_and_execs_the_server(
    auth_server: AuthServer,
) -> None:
    # exec: the process the script started is the server itself (PID 1 in the pod).
    argv = Path(f"/proc/{auth_server.pid}/cmdline").read_bytes().split(b"\0")
    assert b"server" in argv and b"basic-auth" in argv, argv
    assert stat.S_IMODE(auth_server.auth_config.stat().st_mode) == 0o600
    admin = (auth_server.secrets / "admin-password").read_text().strip()
    assert admin.encode() not in b" ".join(argv), "the admin password is in the server's argv"
    search = f"{auth_server.url}/api/2.0/mlflow/experiments/search?max_results=1"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(search, timeout=10)  # noqa: S310 - loopback
    assert refused.value.code == 401, "the server answers without authentication"
    signed_in = urllib.request.Request(search)  # noqa: S310 - loopback
    token = base64.b64encode(f"admin:{admin}".encode()).decode()
    signed_in.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(signed_in, timeout=10) as response:  # noqa: S310 - loopback
        assert response.status == 200

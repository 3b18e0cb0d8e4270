"""The scripts the workflows run (scripts/ci), run here against stand-ins for what CI reaches.

`pulumi` is a recording stub (no Pulumi CLI here); `kubectl` is the real one, talking to a
small stand-in API server that serves discovery and the objects of one test. The drift
check's inputs come from the real program's offline plan, shaped as `pulumi stack export`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from infra.plan_mocks import PLACEHOLDER_SUBSCRIPTION
from recplat.plan import plan_stack

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts" / "ci"
SUBSCRIPTION = "0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3"

STUB_PULUMI = r"""#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG"
case "$1 $2" in
  "stack select")
    [ -n "${STUB_STACK_EXISTS:-}" ] || { echo "error: no stack named '$3' found" >&2; exit 255; } ;;
  "stack export")
    out=""; while [ $# -gt 0 ]; do [ "$1" = --file ] && out="$2"; shift; done
    if [ -n "$out" ]; then cp "$STUB_STATE" "$out"; else cat "$STUB_STATE"; fi ;;
  "config get")
    [ -n "${STUB_SUBSCRIPTION:-}" ] || { echo "error: configuration key not found" >&2; exit 255; }
    echo "$STUB_SUBSCRIPTION" ;;
  refresh*)
    echo "~ azure-native:storage:StorageAccount recplat-lake-account update"
    exit "${STUB_REFRESH_EXIT:-0}" ;;
esac
"""


def load_drift() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_drift", SCRIPTS / "drift.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ci_drift"] = module
    spec.loader.exec_module(module)
    return module


drift = load_drift()


@pytest.fixture
def stubs(tmp_path: Path) -> dict[str, str]:
    """PATH with a recording `pulumi` and a `uv` that runs this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(STUB_PULUMI)
    (bin_dir / "uv").write_text(
        f'#!/usr/bin/env bash\nshift\n[ "$1" = python ] && shift\nexec {sys.executable} "$@"\n'
    )
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STUB_", "PULUMI_", "GITHUB_"))
    }
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", STUB_LOG=str(tmp_path / "calls"))
    return env


def run(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS / script), *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def calls(env: dict[str, str]) -> list[str]:
    log = Path(env["STUB_LOG"])
    return log.read_text().splitlines() if log.exists() else []


# --- stack-settings.sh: the deploy jobs' stack and subscription -------------------------


def test_a_missing_stack_is_created_on_pulumi_cloud_in_the_environments_subscription(
    stubs: dict[str, str],
) -> None:
    env = {**stubs, "ARM_SUBSCRIPTION_ID": SUBSCRIPTION}
    result = run("stack-settings.sh", env, "registry", "dev")
    assert result.returncode == 0, result.stderr
    assert calls(env) == [
        "login",
        "stack select dev --cwd registry",
        "stack init dev --cwd registry",
        "config get azure-native:subscriptionId --cwd registry --stack dev",
        f"config set azure-native:subscriptionId {SUBSCRIPTION} --cwd registry --stack dev",
    ]


def test_a_missing_stack_in_a_diy_backend_stops_with_the_command_that_creates_it(
    stubs: dict[str, str],
) -> None:
    """An azblob stack created here would get the passphrase provider and no passphrase."""
    env = {
        **stubs,
        "ARM_SUBSCRIPTION_ID": SUBSCRIPTION,
        "PULUMI_BACKEND_URL": "azblob://pulumi-state?storage_account=stateacct",
    }
    result = run("stack-settings.sh", env, ".", "prod")
    assert result.returncode == 1
    assert "--secrets-provider azurekeyvault://" in result.stderr
    assert "commit ./Pulumi.prod.yaml" in result.stderr
    assert not any(call.startswith("stack init") for call in calls(env))


def test_a_committed_subscription_is_kept_and_a_different_one_stops_the_deploy(
    stubs: dict[str, str],
) -> None:
    same = {**stubs, "STUB_STACK_EXISTS": "1", "ARM_SUBSCRIPTION_ID": SUBSCRIPTION}
    same["STUB_SUBSCRIPTION"] = SUBSCRIPTION.upper()
    assert run("stack-settings.sh", same, ".", "dev").returncode == 0
    assert not any(call.startswith(("config set", "stack init")) for call in calls(same))

    other = {**same, "STUB_SUBSCRIPTION": PLACEHOLDER_SUBSCRIPTION}
    result = run("stack-settings.sh", other, ".", "dev")
    assert result.returncode == 1
    assert PLACEHOLDER_SUBSCRIPTION in result.stderr and SUBSCRIPTION in result.stderr


# --- stack-deployed.sh: read-only jobs skip what does not exist yet ----------------------


@pytest.mark.parametrize(("exists", "deployed"), [("1", "true"), ("", "false")])
def test_read_only_jobs_learn_whether_the_stack_exists(
    stubs: dict[str, str], tmp_path: Path, exists: str, deployed: str
) -> None:
    output = tmp_path / "github-output"
    env = {**stubs, "STUB_STACK_EXISTS": exists, "GITHUB_OUTPUT": str(output)}
    result = run("stack-deployed.sh", env, "registry", "prod")
    assert result.returncode == 0, result.stderr
    assert output.read_text() == f"deployed={deployed}\n"
    assert ("not deployed yet" in result.stdout) is (deployed == "false")


# --- the drift check's inputs, from the real program's plan -----------------------------


@pytest.fixture(scope="module")
def prod_state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The prod plan with its brands, shaped as `pulumi stack export` writes a state."""
    plan = plan_stack("prod", brands_dir=REPO_ROOT / "brands", repo_root=REPO_ROOT)
    resources = []
    for resource in plan.resources:
        entry = {
            "urn": resource["urn"],
            "custom": resource["custom"],
            "type": resource["type"],
            "inputs": resource["inputs"],
            "outputs": resource["inputs"],
        }
        if resource["type"] == "azure-native:containerservice:ManagedCluster":
            inputs = resource["inputs"]
            entry["id"] = (
                f"/subscriptions/{PLACEHOLDER_SUBSCRIPTION}/resourceGroups/"
                f"{inputs['resourceGroupName']}/providers/Microsoft.ContainerService/"
                f"managedClusters/{inputs['resourceName']}"
            )
        resources.append(entry)
    return {"version": 3, "deployment": {"resources": resources}}


def test_the_azure_targets_are_every_azure_resource_and_nothing_in_the_cluster(
    prod_state: dict[str, Any],
) -> None:
    targets = drift.azure_targets(prod_state)
    resources = prod_state["deployment"]["resources"]
    assert sorted(targets) == sorted(
        r["urn"] for r in resources if r["type"].startswith("azure-native:")
    )
    assert not [urn for urn in targets if "kubernetes:" in urn.rsplit("::", 2)[-2]]


def test_every_kubernetes_object_of_the_state_is_listed_with_its_api_version(
    prod_state: dict[str, Any],
) -> None:
    objects = drift.kubernetes_objects(prod_state)
    kinds = {ref.kind: ref.api_version for ref in objects}
    assert kinds["Namespace"] == "v1" and kinds["Deployment"] == "apps/v1"
    assert kinds["SecretProviderClass"] == "secrets-store.csi.x-k8s.io/v1"
    assert kinds["NginxIngressController"] == "approuting.kubernetes.azure.com/v1alpha1"
    objects_in_state = [
        r
        for r in prod_state["deployment"]["resources"]
        if r["type"].startswith("kubernetes:") and not r["type"].startswith("kubernetes:helm.sh/")
    ]
    assert len(objects) == len(objects_in_state)
    assert "Release" not in kinds, "a Helm release's objects are not in the state"
    assert all(ref.name for ref in objects)
    assert drift.cluster_of(prod_state) == (
        PLACEHOLDER_SUBSCRIPTION,
        "rg-recplat-prod",
        "aks-recplat-prod",
    )


def test_azure_drift_refreshes_only_the_azure_resources_as_a_preview(
    stubs: dict[str, str], prod_state: dict[str, Any], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps(prod_state))
    env = {**stubs, "STUB_STATE": str(state)}
    result = run("azure-drift.sh", env, ".", "prod")
    assert result.returncode == 0, result.stderr
    (refresh,) = [call for call in calls(env) if call.startswith("refresh")]
    assert refresh.startswith("refresh --preview-only --expect-no-changes")
    assert refresh.count("--target ") == len(drift.azure_targets(prod_state))
    assert "kubernetes:" not in refresh.replace("urn:pulumi", "")

    summary = tmp_path / "summary.md"
    failing = {**env, "STUB_REFRESH_EXIT": "255", "GITHUB_STEP_SUMMARY": str(summary)}
    assert run("azure-drift.sh", failing, ".", "prod").returncode == 255, "drift must fail"
    written = summary.read_text()
    assert "### Azure resources of . (prod) differ from the state" in written
    assert "recplat-lake-account update" in written, "the summary shows what differs"


# --- the Kubernetes half: the generated kubectl against a stand-in API server -------------

PULUMI = {"manager": "pulumi-kubernetes-5f3c1e2a", "operation": "Apply"}


def _object(api_version: str, kind: str, name: str, namespace: str | None, *managers: Any) -> Any:
    metadata: dict[str, Any] = {"name": name, "managedFields": [PULUMI, *managers]}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


LIVE = [
    # Someone ran `kubectl edit namespace acme`.
    _object("v1", "Namespace", "acme", None, {"manager": "kubectl-edit", "operation": "Update"}),
    # The HPA scaled it and the controller wrote status: no drift.
    _object(
        "apps/v1",
        "Deployment",
        "ranking-service",
        "acme",
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "scale"},
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status"},
    ),
    _object("secrets-store.csi.x-k8s.io/v1", "SecretProviderClass", "spc", "acme"),
]
# Deleted out of band: in the state, not in the cluster.
GONE = _object("v1", "Service", "ranking-service", "acme")
RESOURCES = {
    ("", "v1"): [("namespaces", "Namespace", False), ("services", "Service", True)],
    ("apps", "v1"): [("deployments", "Deployment", True)],
    ("secrets-store.csi.x-k8s.io", "v1"): [("secretproviderclasses", "SecretProviderClass", True)],
}


def _path_of(obj: dict[str, Any]) -> str:
    group, _, version = obj["apiVersion"].rpartition("/")
    plural = next(p for p, kind, _ in RESOURCES[(group, version)] if kind == obj["kind"])
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    namespace = obj["metadata"].get("namespace")
    return (
        f"{base}/namespaces/{namespace}/{plural}/{obj['metadata']['name']}"
        if namespace
        else (f"{base}/{plural}/{obj['metadata']['name']}")
    )


class StandInApiServer(BaseHTTPRequestHandler):
    """Discovery for RESOURCES and a GET for every LIVE object; 404 for anything else."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        groups = sorted({group for group, _ in RESOURCES if group})
        if path == "/api":
            self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        elif path == "/apis":
            self._send(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [
                        {
                            "name": group,
                            "versions": [{"groupVersion": f"{group}/v1", "version": "v1"}],
                            "preferredVersion": {"groupVersion": f"{group}/v1", "version": "v1"},
                        }
                        for group in groups
                    ],
                },
            )
        elif path in ("/api/v1", *(f"/apis/{group}/v1" for group in groups)):
            group = "" if path == "/api/v1" else path.split("/")[2]
            self._send(
                200,
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{group}/v1" if group else "v1",
                    "resources": [
                        {
                            "name": plural,
                            "singularName": kind.lower(),
                            "namespaced": namespaced,
                            "kind": kind,
                            "verbs": ["get", "list"],
                        }
                        for plural, kind, namespaced in RESOURCES[(group, "v1")]
                    ],
                },
            )
        else:
            live = {_path_of(obj): obj for obj in LIVE}
            if path in live:
                self._send(200, live[path])
            else:
                self._send(
                    404,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "code": 404,
                        "reason": "NotFound",
                        "message": f"{path} not found",
                    },
                )


@pytest.fixture
def api_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInApiServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _state_of(*objects: dict[str, Any]) -> dict[str, Any]:
    resources = []
    for obj in objects:
        group, _, version = obj["apiVersion"].rpartition("/")
        token = f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"
        manifest = {
            **obj,
            "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"},
        }
        resources.append(
            {
                "urn": f"urn:pulumi:dev::recplat::{token}::{obj['metadata']['name']}",
                "custom": True,
                "type": token,
                "inputs": manifest,
                "outputs": manifest,
            }
        )
    return {"version": 3, "deployment": {"resources": resources}}


def _kubectl_in_cluster(request: Path, server: str, tmp_path: Path) -> dict[str, Any]:
    """What `az aks command invoke --command "sh list-objects.sh" --file .` returns."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "stand-in", "cluster": {"server": server}}],
                "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "u"}}],
                "current-context": "stand-in",
                "users": [{"name": "u", "user": {}}],
            }
        )
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
    result = subprocess.run(
        ["sh", "list-objects.sh"], cwd=request, env=env, capture_output=True, text=True, timeout=60
    )
    return {"exitCode": result.returncode, "logs": result.stdout + result.stderr}


needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl here")


@needs_kubectl
def test_kubernetes_drift_reports_an_edited_and_a_deleted_object_and_nothing_else(
    api_server: str, tmp_path: Path
) -> None:
    state = _state_of(*LIVE, GONE)
    objects = drift.kubernetes_objects(state)
    drift.write_request(objects, tmp_path / "request")
    result = _kubectl_in_cluster(tmp_path / "request", api_server, tmp_path)
    assert result["exitCode"] == 0, result["logs"]

    code, markdown = drift.report(objects, result)
    assert code == 1, markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == [
        "| object | drift |",
        "| Namespace acme | changed by kubectl-edit (Update) |",
        "| Service acme/ranking-service | missing from the cluster |",
    ]


@needs_kubectl
def test_kubernetes_drift_is_clean_when_only_pulumi_and_controllers_wrote(
    api_server: str, tmp_path: Path
) -> None:
    state = _state_of(*LIVE[1:])
    objects = drift.kubernetes_objects(state)
    drift.write_request(objects, tmp_path / "request")
    code, markdown = drift.report(
        objects, _kubectl_in_cluster(tmp_path / "request", api_server, tmp_path)
    )
    assert code == 0, markdown
    assert "No drift" in markdown


def test_a_failed_command_in_the_cluster_is_not_reported_as_clean() -> None:
    objects = drift.kubernetes_objects(_state_of(*LIVE))
    forbidden = 'Error from server (Forbidden): namespaces "acme" is forbidden'
    code, markdown = drift.report(objects, {"exitCode": 1, "logs": forbidden})
    assert code == 2 and forbidden in markdown

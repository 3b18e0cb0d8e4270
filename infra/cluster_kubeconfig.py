"""The cluster's kubeconfig for the Kubernetes provider: the user one, signing in unattended.

Local accounts are off, so AKS has no admin kubeconfig; its *user* kubeconfig logs in with
``kubelogin``'s device code, which blocks a headless ``pulumi up``. It is rewritten to the
``kubelogin`` mode the stack configures (Azure CLI, workload identity in CI, ...).
"""

from __future__ import annotations

import base64

import pulumi
import yaml
from pulumi_azure_native import containerservice

from infra.config import KubeloginMode

# The Entra application every AKS cluster's API server accepts tokens for.
AKS_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"


def kubelogin_kubeconfig(kubeconfig: str, mode: KubeloginMode, tenant_id: str) -> str:
    """``kubeconfig`` with every user authenticating through ``kubelogin --login <mode>``.

    AKS returns a device-code login, which blocks a headless ``pulumi up``; Azure CLI,
    workload identity (CI) or a managed identity work unattended.
    """
    document = yaml.safe_load(kubeconfig)
    for user in document.get("users") or []:
        user["user"] = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "kubelogin",
                "args": [
                    "get-token",
                    "--login",
                    str(mode),
                    "--server-id",
                    AKS_SERVER_APP_ID,
                    "--environment",
                    "AzurePublicCloud",
                    "--tenant-id",
                    tenant_id,
                ],
                "interactiveMode": "Never",
                "provideClusterInfo": False,
            }
        }
    return str(yaml.safe_dump(document, sort_keys=False))


def user_kubeconfig(
    resource_group_name: pulumi.Input[str],
    cluster_name: pulumi.Input[str],
    tenant_id: pulumi.Input[str],
    mode: KubeloginMode,
) -> pulumi.Output[str]:
    """The user kubeconfig (local accounts are off), signing in through ``kubelogin``."""
    credentials = containerservice.list_managed_cluster_user_credentials_output(
        resource_group_name=resource_group_name, resource_name=cluster_name, format="exec"
    )
    raw_kubeconfig = credentials.kubeconfigs.apply(
        lambda configs: base64.b64decode(configs[0].value).decode()
    )
    return pulumi.Output.secret(
        pulumi.Output.all(raw_kubeconfig, tenant_id).apply(
            lambda parts: kubelogin_kubeconfig(parts[0], mode, parts[1])
        )
    )

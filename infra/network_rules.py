"""NetworkPolicy rules that several recplat workloads share.

Every namespace recplat creates denies traffic by default; each workload then allows what it
needs. Name resolution is the one rule they all need, so it is written once here.
"""

from __future__ import annotations

import pulumi_kubernetes as k8s

meta, networking = k8s.meta.v1, k8s.networking.v1


def namespace_selector(namespace: str) -> k8s.meta.v1.LabelSelectorArgs:
    """Selects a namespace by the name label Kubernetes sets on every namespace."""
    return meta.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": namespace})


def dns_egress_rule() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """Egress to the cluster's DNS (CoreDNS in kube-system), over UDP and TCP port 53."""
    return networking.NetworkPolicyEgressRuleArgs(
        to=[
            networking.NetworkPolicyPeerArgs(
                namespace_selector=namespace_selector("kube-system"),
                pod_selector=meta.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
            )
        ],
        ports=[
            networking.NetworkPolicyPortArgs(port=53, protocol="UDP"),
            networking.NetworkPolicyPortArgs(port=53, protocol="TCP"),
        ],
    )

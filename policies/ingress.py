"""Policies for Kubernetes Ingresses: the edge where clients' bearer API keys arrive.

An Ingress without TLS makes the controller serve its routes over plain HTTP, so
every ``Authorization: Bearer`` header crosses the network in cleartext. On AKS's
application routing add-on, TLS comes from a Key Vault certificate: the
``kubernetes.azure.com/tls-cert-keyvault-uri`` annotation plus a ``spec.tls`` entry
whose ``secretName`` is ``keyvault-<ingress name>``.
"""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, Severity

from policies.context import as_list, as_mapping, lookup, same_text
from policies.rule import Violations, resource_policy

INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
_SSL_REDIRECT = "nginx.ingress.kubernetes.io/ssl-redirect"
_FIX_TLS = (
    "add spec.tls with the rule hosts and a certificate secret (app routing: annotation "
    "kubernetes.azure.com/tls-cert-keyvault-uri and secretName keyvault-<ingress name>)"
)


@resource_policy(
    name="k8s-ingress-tls",
    description="Ingresses serve every host over TLS only, so API keys never cross in cleartext.",
    resource_types=[INGRESS],
    severity=Severity.HIGH,
)
def k8s_ingress_tls(args: ResourceValidationArgs, report: Violations) -> None:
    spec = as_mapping(args.props.get("spec"))
    tls = [as_mapping(entry) for entry in as_list(spec.get("tls"))]
    if not tls:
        report(f"has no spec.tls, so its routes are served over plain HTTP; {_FIX_TLS}")
        return
    covered = {host for entry in tls for host in as_list(entry.get("hosts"))}
    for index, rule in enumerate(as_mapping(rule) for rule in as_list(spec.get("rules"))):
        host = rule.get("host")
        if not host:
            report(
                f"has rule {index} without a host, which its TLS certificate cannot cover; "
                "set the host and list it under spec.tls[].hosts"
            )
        elif host not in covered:
            report(f"serves host {host} without TLS; list it under spec.tls[].hosts")
    annotations = as_mapping(lookup(args.props, "metadata.annotations"))
    if same_text(annotations.get(_SSL_REDIRECT), "false"):
        report(
            f"sets {_SSL_REDIRECT}=false, which answers plain HTTP; remove it or set "
            "nginx.ingress.kubernetes.io/force-ssl-redirect=true"
        )

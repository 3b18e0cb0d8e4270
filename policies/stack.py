"""Stack policies: rules about how resources relate, checked over the whole stack at once.

- every brand namespace has a default-deny NetworkPolicy;
- every Deployment has a PodDisruptionBudget and a HorizontalPodAutoscaler;
- every workload image comes from the environment's own container registry.

A value only known after ``pulumi up`` (an ``UnknownValueError`` from the
engine's proxy) makes that one resource unjudgeable, not the whole stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyResource, Severity, StackValidationArgs

from infra.pulumi_internals import UnknownValueError
from policies.context import as_list, as_mapping, lookup
from policies.identity import REGISTRY
from policies.rule import Violations, stack_policy
from policies.tags import BRAND_NAMESPACE_PREFIX, NAMESPACE
from policies.workloads import DEPLOYMENT, WORKLOAD_TYPES, containers, pod_spec_of

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
POD_DISRUPTION_BUDGET = "kubernetes:policy/v1:PodDisruptionBudget"
HORIZONTAL_POD_AUTOSCALER = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
ACR_SUFFIX = ".azurecr.io"


def _of_type(resources: Iterable[PolicyResource], resource_type: str) -> list[PolicyResource]:
    return [resource for resource in resources if resource.resource_type == resource_type]


def _name(resource: PolicyResource) -> str:
    name = lookup(resource.props, "metadata.name")
    return name if isinstance(name, str) and name else resource.name


def _namespace(resource: PolicyResource) -> str:
    namespace = lookup(resource.props, "metadata.namespace")
    return namespace if isinstance(namespace, str) and namespace else "default"


def is_default_deny(policy: PolicyResource) -> bool:
    """A NetworkPolicy selecting every pod, for both directions, allowing nothing."""
    spec = as_mapping(policy.props.get("spec"))
    selector = as_mapping(spec.get("podSelector"))
    selects_all = not selector.get("matchLabels") and not selector.get("matchExpressions")
    types = {str(kind) for kind in as_list(spec.get("policyTypes"))}
    no_rules = not as_list(spec.get("ingress")) and not as_list(spec.get("egress"))
    return selects_all and {"Ingress", "Egress"} <= types and no_rules


@stack_policy(
    name="brand-namespace-default-deny",
    description="Every brand namespace has a default-deny NetworkPolicy for ingress and egress.",
    severity=Severity.HIGH,
    benchmark="CIS AKS 4.3.2",
)
def brand_namespace_default_deny(args: StackValidationArgs, report: Violations) -> None:
    denied = set()
    for policy in _of_type(args.resources, NETWORK_POLICY):
        try:
            if is_default_deny(policy):
                denied.add(_namespace(policy))
        except UnknownValueError:
            continue
    for namespace in _of_type(args.resources, NAMESPACE):
        name = _name(namespace)
        if name.startswith(BRAND_NAMESPACE_PREFIX) and name not in denied:
            report(
                f"is brand namespace {name} without a default-deny NetworkPolicy; add one "
                "with podSelector {} and policyTypes [Ingress, Egress] and no rules",
                namespace.urn,
            )


def _template_labels(deployment: PolicyResource) -> Mapping[str, Any]:
    return as_mapping(lookup(deployment.props, "spec.template.metadata.labels"))


def _selects(pdb: PolicyResource, labels: Mapping[str, Any]) -> bool:
    wanted = as_mapping(lookup(pdb.props, "spec.selector.matchLabels"))
    return bool(wanted) and all(labels.get(key) == value for key, value in wanted.items())


@stack_policy(
    name="deployment-has-pdb",
    description="Every Deployment has a PodDisruptionBudget selecting its pods.",
    severity=Severity.MEDIUM,
)
def deployment_has_pdb(args: StackValidationArgs, report: Violations) -> None:
    budgets = _of_type(args.resources, POD_DISRUPTION_BUDGET)
    for deployment in _of_type(args.resources, DEPLOYMENT):
        try:
            labels = _template_labels(deployment)
            namespace = _namespace(deployment)
            covered = any(_namespace(pdb) == namespace and _selects(pdb, labels) for pdb in budgets)
        except UnknownValueError:
            continue
        if not covered:
            report(
                f"is Deployment {namespace}/{_name(deployment)} without a PodDisruptionBudget; "
                "add one whose selector matches the pod template labels",
                deployment.urn,
            )


@stack_policy(
    name="deployment-has-hpa",
    description="Every Deployment has a HorizontalPodAutoscaler targeting it.",
    severity=Severity.MEDIUM,
)
def deployment_has_hpa(args: StackValidationArgs, report: Violations) -> None:
    targets = set()
    for hpa in _of_type(args.resources, HORIZONTAL_POD_AUTOSCALER):
        try:
            target = as_mapping(lookup(hpa.props, "spec.scaleTargetRef"))
            if target.get("kind") == DEPLOYMENT.rsplit(":", 1)[-1]:
                targets.add((_namespace(hpa), target.get("name")))
        except UnknownValueError:
            continue
    for deployment in _of_type(args.resources, DEPLOYMENT):
        try:
            key = (_namespace(deployment), _name(deployment))
        except UnknownValueError:
            continue
        if key not in targets:
            report(
                f"is Deployment {key[0]}/{key[1]} without a HorizontalPodAutoscaler; add one "
                "with scaleTargetRef kind Deployment and this name",
                deployment.urn,
            )


def allowed_registries(args: StackValidationArgs) -> list[str]:
    """Registry hosts workloads may use: from config, else the stack's own ACRs."""
    configured = [str(host).lower() for host in as_list(args.get_config().get("allowedRegistries"))]
    if configured:
        return configured
    hosts = []
    for registry in _of_type(args.resources, REGISTRY):
        try:
            name = registry.props.get("registryName")
        except UnknownValueError:
            continue
        if isinstance(name, str) and name:
            hosts.append(f"{name.lower()}{ACR_SUFFIX}")
    return hosts


def _registry_host(image: str) -> str:
    first = image.split("/", 1)[0]
    # Docker's rule: the first segment is a registry only if it looks like a host.
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return "docker.io"


@stack_policy(
    name="k8s-image-from-environment-acr",
    description="Workload images come only from the environment's Azure Container Registry.",
    severity=Severity.HIGH,
    benchmark="CIS AKS 5.1.4",
)
def k8s_image_from_environment_acr(args: StackValidationArgs, report: Violations) -> None:
    allowed = allowed_registries(args)
    expected = ", ".join(allowed) if allowed else f"an *{ACR_SUFFIX} registry"
    for workload in args.resources:
        if workload.resource_type not in WORKLOAD_TYPES:
            continue
        try:
            images = [
                (str(container.get("name", "?")), str(container.get("image") or ""))
                for container in containers(pod_spec_of(workload.resource_type, workload.props))
            ]
        except UnknownValueError:
            continue
        for container_name, image in images:
            host = _registry_host(image)
            ok = host in allowed if allowed else host.endswith(ACR_SUFFIX)
            if not ok:
                report(
                    f"container {container_name} pulls {image} from {host}; "
                    f"push it to {expected} and reference it there",
                    workload.urn,
                )

"""Policies for Kubernetes workloads (Deployments, Jobs, CronJobs): pod security and operability.

The container rules follow the Pod Security Standards ``restricted`` profile, so
a workload that passes here is also admitted by a namespace that enforces it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from policies.context import as_list, as_mapping, is_true, lookup
from policies.rule import Violations, resource_policy, setting, show

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
CRON_JOB = "kubernetes:batch/v1:CronJob"
WORKLOAD_TYPES = (DEPLOYMENT, JOB, CRON_JOB)

_POD_SPEC_PATHS = {
    DEPLOYMENT: "spec.template.spec",
    JOB: "spec.template.spec",
    CRON_JOB: "spec.jobTemplate.spec.template.spec",
}
_ALLOWED_ADDED_CAPABILITIES = {"NET_BIND_SERVICE"}
_SECCOMP_TYPES = ("RuntimeDefault", "Localhost")
_RESOURCE_KEYS = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")


def pod_spec_of(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec inside a Deployment, Job or CronJob's inputs."""
    return as_mapping(lookup(props, _POD_SPEC_PATHS[resource_type]))


def pod_spec(args: ResourceValidationArgs) -> Mapping[str, Any]:
    """The pod spec of the workload being validated."""
    return pod_spec_of(args.resource_type, args.props)


def containers(spec: Mapping[str, Any], *, init: bool = True) -> Iterator[Mapping[str, Any]]:
    """Every container of a pod spec, init containers first."""
    keys = ("initContainers", "containers") if init else ("containers",)
    for key in keys:
        for container in as_list(spec.get(key)):
            yield as_mapping(container)


def _security(container: Mapping[str, Any], path: str) -> Any:
    return lookup(as_mapping(container.get("securityContext")), path)


def _name(container: Mapping[str, Any]) -> str:
    return f"container {container.get('name', '?')}"


@resource_policy(
    name="k8s-run-as-non-root",
    description="Workload containers run as a non-root user.",
    resource_types=WORKLOAD_TYPES,
    severity=Severity.HIGH,
    benchmark="CKV_K8S_23; PSS restricted: Running as Non-root",
)
def k8s_run_as_non_root(args: ResourceValidationArgs, report: Violations) -> None:
    spec = pod_spec(args)
    pod_context = as_mapping(spec.get("securityContext"))
    for container in containers(spec):
        non_root = _security(container, "runAsNonRoot")
        if non_root is None:
            non_root = pod_context.get("runAsNonRoot")
        user = _security(container, "runAsUser")
        if user is None:
            user = pod_context.get("runAsUser")
        if not is_true(non_root):
            report(f"{_name(container)} may run as root; set securityContext.runAsNonRoot=true")
        elif user == 0:
            report(f"{_name(container)} sets runAsUser=0; use a non-zero UID such as 10001")


@resource_policy(
    name="k8s-no-privilege-escalation",
    description="Workload containers are not privileged and cannot escalate privileges.",
    resource_types=WORKLOAD_TYPES,
    severity=Severity.HIGH,
    benchmark="CKV_K8S_20; PSS restricted: Privilege Escalation",
)
def k8s_no_privilege_escalation(args: ResourceValidationArgs, report: Violations) -> None:
    for container in containers(pod_spec(args)):
        if is_true(_security(container, "privileged")):
            report(f"{_name(container)} sets securityContext.privileged=true; set it to false")
        value = _security(container, "allowPrivilegeEscalation")
        if value is not False:
            path = "securityContext.allowPrivilegeEscalation"
            report(f"{_name(container)} {setting(path, value)}; set it to false")


@resource_policy(
    name="k8s-drop-all-capabilities",
    description="Workload containers drop ALL capabilities and add none but NET_BIND_SERVICE.",
    resource_types=WORKLOAD_TYPES,
    severity=Severity.HIGH,
    benchmark="CKV_K8S_37; PSS restricted: Capabilities",
)
def k8s_drop_all_capabilities(args: ResourceValidationArgs, report: Violations) -> None:
    for container in containers(pod_spec(args)):
        dropped = [str(cap) for cap in as_list(_security(container, "capabilities.drop"))]
        added = [str(cap) for cap in as_list(_security(container, "capabilities.add"))]
        if "ALL" not in dropped:
            report(
                f"{_name(container)} does not drop ALL capabilities; set capabilities.drop=[ALL]"
            )
        extra = sorted(set(added) - _ALLOWED_ADDED_CAPABILITIES)
        if extra:
            report(f"{_name(container)} adds capabilities {', '.join(extra)}; remove them")


@resource_policy(
    name="k8s-read-only-root-fs",
    description="Workload containers have a read-only root filesystem (write to emptyDir mounts).",
    resource_types=WORKLOAD_TYPES,
    severity=Severity.MEDIUM,
    benchmark="CKV_K8S_22",
)
def k8s_read_only_root_fs(args: ResourceValidationArgs, report: Violations) -> None:
    for container in containers(pod_spec(args)):
        value = _security(container, "readOnlyRootFilesystem")
        if not is_true(value):
            path = "securityContext.readOnlyRootFilesystem"
            report(f"{_name(container)} {setting(path, value)}; set it to true")


@resource_policy(
    name="k8s-seccomp-runtime-default",
    description="Workload containers run under the RuntimeDefault seccomp profile.",
    resource_types=WORKLOAD_TYPES,
    severity=Severity.MEDIUM,
    benchmark="CKV_K8S_31; PSS restricted: Seccomp",
)
def k8s_seccomp_runtime_default(args: ResourceValidationArgs, report: Violations) -> None:
    spec = pod_spec(args)
    pod_profile = lookup(spec, "securityContext.seccompProfile.type")
    for container in containers(spec):
        profile = _security(container, "seccompProfile.type") or pod_profile
        if profile not in _SECCOMP_TYPES:
            report(
                f"{_name(container)} {setting('seccompProfile.type', profile)}; "
                "set securityContext.seccompProfile.type=RuntimeDefault on the pod"
            )


@resource_policy(
    name="k8s-resources",
    description="Workload containers declare CPU and memory requests and limits.",
    resource_types=WORKLOAD_TYPES,
    severity=Severity.MEDIUM,
    benchmark="CKV_K8S_10; CKV_K8S_11; CKV_K8S_12; CKV_K8S_13",
)
def k8s_resources(args: ResourceValidationArgs, report: Violations) -> None:
    for container in containers(pod_spec(args)):
        resources = as_mapping(container.get("resources"))
        missing = [key for key in _RESOURCE_KEYS if lookup(resources, key) in (None, "")]
        if missing:
            report(f"{_name(container)} has no resources.{', resources.'.join(missing)}; set them")


@resource_policy(
    name="k8s-deployment-probes",
    description="Deployment containers have readiness and liveness probes.",
    resource_types=[DEPLOYMENT],
    severity=Severity.MEDIUM,
    benchmark="CKV_K8S_8; CKV_K8S_9",
)
def k8s_deployment_probes(args: ResourceValidationArgs, report: Violations) -> None:
    for container in containers(pod_spec(args), init=False):
        probes = ("readinessProbe", "livenessProbe")
        missing = [probe for probe in probes if not container.get(probe)]
        if missing:
            report(f"{_name(container)} has no {' and no '.join(missing)}; add them")


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None when it has a version tag or a digest."""
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag"
    if last.rsplit(":", 1)[-1] == "latest":
        return "uses the latest tag"
    return None


@resource_policy(
    name="k8s-image-pinned",
    description="Workload images are pinned by a version tag or digest, never latest or untagged.",
    resource_types=WORKLOAD_TYPES,
    severity=Severity.HIGH,
    benchmark="CKV_K8S_14; CKV_K8S_43",
)
def k8s_image_pinned(args: ResourceValidationArgs, report: Violations) -> None:
    for container in containers(pod_spec(args)):
        image = str(container.get("image") or "")
        problem = image_problem(image)
        if problem:
            report(
                f"{_name(container)} image {show(image or None)} {problem}; "
                "pin it with a version tag or @sha256 digest"
            )


@resource_policy(
    name="k8s-no-host-namespaces",
    description="Workload pods share no host namespace (network, PID, IPC).",
    resource_types=WORKLOAD_TYPES,
    severity=Severity.HIGH,
    benchmark="CKV_K8S_17; CKV_K8S_18; CKV_K8S_19; PSS baseline: Host Namespaces",
)
def k8s_no_host_namespaces(args: ResourceValidationArgs, report: Violations) -> None:
    spec = pod_spec(args)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if is_true(spec.get(key)):
            report(f"sets {key}=true; remove it")


@resource_policy(
    name="k8s-no-host-path",
    description="Workload pods mount no hostPath volume.",
    resource_types=WORKLOAD_TYPES,
    severity=Severity.HIGH,
    benchmark="PSS baseline: HostPath Volumes",
)
def k8s_no_host_path(args: ResourceValidationArgs, report: Violations) -> None:
    for volume in as_list(pod_spec(args).get("volumes")):
        volume = as_mapping(volume)
        if volume.get("hostPath") is not None:
            report(
                f"mounts hostPath volume {volume.get('name', '?')}; use emptyDir, a CSI "
                "secret or a persistent volume claim"
            )


@resource_policy(
    name="k8s-not-default-namespace",
    description="Workloads live in their own namespace, never default.",
    resource_types=WORKLOAD_TYPES,
    severity=Severity.MEDIUM,
    benchmark="CKV_K8S_21",
)
def k8s_not_default_namespace(args: ResourceValidationArgs, report: Violations) -> None:
    namespace = lookup(args.props, "metadata.namespace")
    if namespace in (None, "", "default"):
        report(
            f"{setting('metadata.namespace', namespace or None)}; put it in the brand's "
            "namespace (brand-<name>) or the component's own namespace"
        )


@resource_policy(
    name="k8s-dedicated-service-account",
    description="Workloads run as their own ServiceAccount, never default.",
    resource_types=WORKLOAD_TYPES,
    severity=Severity.MEDIUM,
    benchmark="CKV_K8S_41",
)
def k8s_dedicated_service_account(args: ResourceValidationArgs, report: Violations) -> None:
    account = pod_spec(args).get("serviceAccountName")
    if account in (None, "", "default"):
        report(
            f"{setting('serviceAccountName', account or None)}; run it as a dedicated "
            "ServiceAccount (the one federated to the workload identity)"
        )

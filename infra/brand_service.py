"""RankingService: a brand's ranking service on AKS, built for stability.

ServiceAccount (its own workload identity), the API key and the password of the brand's
read-only MLflow user mounted from Key Vault through the Secrets Store CSI driver,
Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget, the HTTPS ingress route
under ``https://<host>/brands/<name>/`` and the PodMonitor that managed Prometheus scrapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from ranking_features.workload_env import ServiceEnv

from infra.brand_names import BrandSecret
from infra.brand_namespace import SERVICE_PORT
from infra.brand_pods import (
    API_KEY_OBJECT,
    MLFLOW_PASSWORD_OBJECT,
    SECRETS_MOUNT,
    TMP_MOUNT,
    BrandWorkloadContext,
    container_security_context,
    pod_security_context,
    resources,
    scratch_volume,
    secret_provider_class,
    secrets_mount,
    workload_identity_labels,
)

core, meta = k8s.core.v1, k8s.meta.v1

EVENT_LOG_MOUNT = "/var/lib/recplat/events"
RELOAD_INTERVAL_S = 30
CPU_TARGET_PERCENT = 70
# The application routing add-on is AKS's managed NGINX: Microsoft patches and
# upgrades the controller, it integrates with Key Vault certificates and Azure DNS,
# and it needs no Helm release of our own. Only the keyed API is routed: /model (run
# ids, data windows, metrics), /metrics, /healthz and /readyz stay inside the cluster.
ROUTED_PATHS = ("rank", "feedback")
# The app-routing add-on syncs the Key Vault certificate into this Secret itself.
TLS_SECRET_PREFIX = "keyvault-"  # noqa: S105 - a name prefix, not a secret


@dataclass(frozen=True)
class RankingServiceArgs:
    """The brand's workload context, the service image and how its API is reached."""

    context: BrandWorkloadContext
    image: str
    key_vault_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    ingress_class_name: str
    """Class of the environment's HTTPS edge controller."""
    ingress_host: str
    """The one host every brand API is served on, under ``/brands/<name>/``."""
    tls_certificate_uri: pulumi.Input[str]


class RankingService(pulumi.ComponentResource):
    """Every Kubernetes object of the brand's ranking service; its API is served over HTTPS only."""

    def __init__(
        self, name: str, args: RankingServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("recplat:brand:RankingService", name, None, opts)
        context = args.context
        names, children = context.names, context.options(self)
        prefix = f"{context.brand.name}-ranking"
        account = core.ServiceAccount(
            f"{prefix}-sa",
            metadata=meta.ObjectMetaArgs(
                name=names.service_account,
                namespace=names.namespace,
                labels={**context.labels, **workload_identity_labels()},
                annotations={
                    "azure.workload.identity/client-id": context.service_identity_client_id
                },
            ),
            automount_service_account_token=False,
            opts=children,
        )
        # The service's own class, read with the service's identity: the API key and the
        # password of the brand's read-only MLflow user. The training job has its own class and
        # identity, so serving can never sign in to MLflow as a writer.
        provider_class = secret_provider_class(
            f"{prefix}-api-key",
            context.metadata(names.secret_provider_class),
            client_id=context.service_identity_client_id,
            key_vault_name=args.key_vault_name,
            tenant_id=args.tenant_id,
            secrets=[
                (context.secret_names[BrandSecret.API_KEY], API_KEY_OBJECT),
                (context.secret_names[BrandSecret.MLFLOW_READER_PASSWORD], MLFLOW_PASSWORD_OBJECT),
            ],
            opts=children,
        )
        _deployment(context, _container(context, args.image), account, provider_class, children)
        _scaling(context, children)
        _route(context, args, children)
        _pod_monitor(context, children)
        self.register_outputs({"deployment": names.deployment})


def _container(context: BrandWorkloadContext, image: str) -> core.ContainerArgs:
    """The ranking container: the environment contract, its secrets as files, three probes."""
    brand, names = context.brand, context.names
    env = [
        *context.common_env(),
        *context.mlflow_auth_env(names.mlflow_reader),
        *(
            core.EnvVarArgs(name=name, value=value)
            for name, value in ServiceEnv.variables(
                api_key_file=f"{SECRETS_MOUNT}/{API_KEY_OBJECT}",
                max_candidates=brand.serving.max_candidates,
                challenger_traffic=brand.serving.challenger_traffic,
                exploration=brand.serving.exploration,
                default_k=brand.serving.default_k,
                feature_sample=brand.monitoring.feature_sample,
                reload_interval_s=RELOAD_INTERVAL_S,
                event_log_dir=EVENT_LOG_MOUNT,
            ).items()
        ),
    ]

    def probe(path: str, period: int, failures: int) -> core.ProbeArgs:
        return core.ProbeArgs(
            http_get=core.HTTPGetActionArgs(path=path, port="http"),
            period_seconds=period,
            failure_threshold=failures,
            timeout_seconds=2,
        )

    container = core.ContainerArgs(
        name="ranking",
        image=context.image(image),
        image_pull_policy="Always",
        ports=[core.ContainerPortArgs(name="http", container_port=SERVICE_PORT)],
        env=env,
        resources=resources(brand.serving.cpu, brand.serving.memory),
        security_context=container_security_context(),
        # Loading a model from the registry can take a while; startup covers it, so
        # liveness never kills a pod that is still loading.
        startup_probe=probe("/healthz", 5, 60),
        readiness_probe=probe("/readyz", 5, 3),
        liveness_probe=probe("/healthz", 10, 3),
        volume_mounts=[
            secrets_mount(),
            core.VolumeMountArgs(name="tmp", mount_path=TMP_MOUNT),
            core.VolumeMountArgs(name="event-log", mount_path=EVENT_LOG_MOUNT),
        ],
    )
    return container


def _deployment(
    context: BrandWorkloadContext,
    container: core.ContainerArgs,
    account: pulumi.Resource,
    provider_class: pulumi.Resource,
    opts: pulumi.ResourceOptions,
) -> k8s.apps.v1.Deployment:
    """The Deployment, spread over zones and nodes, rolled one pod at a time."""
    names, selector = context.names, context.component_labels("ranking")
    prefix = f"{context.brand.name}-ranking"
    spread = [
        core.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key=key,
            # ScheduleAnyway: dev has a single zone, and a missing zone must not stop a rollout.
            when_unsatisfiable="ScheduleAnyway",
            label_selector=meta.LabelSelectorArgs(match_labels=selector),
        )
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]
    deployment = k8s.apps.v1.Deployment(
        f"{prefix}-deployment",
        metadata=context.metadata(names.deployment, "ranking"),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            # No `replicas`: the HPA owns the count; setting it here would fight the HPA
            # on every `pulumi up`.
            selector=meta.LabelSelectorArgs(match_labels=selector),
            strategy=k8s.apps.v1.DeploymentStrategyArgs(
                type="RollingUpdate",
                rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                    max_surge=1, max_unavailable=0
                ),
            ),
            template=core.PodTemplateSpecArgs(
                metadata=meta.ObjectMetaArgs(
                    labels={**context.labels, **selector, **workload_identity_labels()}
                ),
                spec=core.PodSpecArgs(
                    service_account_name=names.service_account,
                    # Workload identity projects its own token; the API token is not needed.
                    automount_service_account_token=False,
                    security_context=pod_security_context(),
                    containers=[container],
                    topology_spread_constraints=spread,
                    volumes=[
                        context.secrets_volume(names.secret_provider_class),
                        scratch_volume("tmp"),
                        scratch_volume("event-log", "1Gi"),
                    ],
                ),
            ),
        ),
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=[account, provider_class])
        ),
    )
    return deployment


def _scaling(context: BrandWorkloadContext, opts: pulumi.ResourceOptions) -> None:
    """The Service in front of the pods, the autoscaler and the disruption budget."""
    brand, names, selector = context.brand, context.names, context.component_labels("ranking")
    prefix = f"{brand.name}-ranking"
    core.Service(
        f"{prefix}-service",
        metadata=context.metadata(names.service, "ranking"),
        spec=core.ServiceSpecArgs(
            type="ClusterIP",
            selector=selector,
            ports=[core.ServicePortArgs(name="http", port=80, target_port="http")],
        ),
        opts=opts,
    )
    target = k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
        api_version="apps/v1", kind="Deployment", name=names.deployment
    )
    k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{prefix}-hpa",
        metadata=context.metadata(names.deployment, "ranking"),
        spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
            scale_target_ref=target,
            min_replicas=brand.serving.replicas.min,
            max_replicas=brand.serving.replicas.max,
            metrics=[
                k8s.autoscaling.v2.MetricSpecArgs(
                    type="Resource",
                    resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                        name="cpu",
                        target=k8s.autoscaling.v2.MetricTargetArgs(
                            type="Utilization", average_utilization=CPU_TARGET_PERCENT
                        ),
                    ),
                )
            ],
        ),
        opts=opts,
    )
    k8s.policy.v1.PodDisruptionBudget(
        f"{prefix}-pdb",
        metadata=context.metadata(names.deployment, "ranking"),
        # One pod at a time: node drains proceed even at one replica (dev), and a
        # multi-replica brand keeps serving through them.
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=1, selector=meta.LabelSelectorArgs(match_labels=selector)
        ),
        opts=opts,
    )


def _route(
    context: BrandWorkloadContext, args: RankingServiceArgs, opts: pulumi.ResourceOptions
) -> k8s.networking.v1.Ingress:
    """The HTTPS route to the keyed API under the brand's path on the shared host."""
    names, prefix = context.names, f"{context.brand.name}-ranking"
    ingress_class_name, ingress_host = args.ingress_class_name, args.ingress_host
    tls_certificate_uri = args.tls_certificate_uri
    route = k8s.networking.v1.Ingress(
        f"{prefix}-ingress",
        metadata=meta.ObjectMetaArgs(
            name=names.ingress,
            namespace=names.namespace,
            labels=context.labels,
            annotations={
                "nginx.ingress.kubernetes.io/use-regex": "true",
                "nginx.ingress.kubernetes.io/rewrite-target": "/$1",
                "nginx.ingress.kubernetes.io/proxy-body-size": "1m",
                "kubernetes.azure.com/tls-cert-keyvault-uri": tls_certificate_uri,
                # Plain HTTP gets a redirect and never reaches the service, even before the
                # certificate is synced (NGINX would otherwise answer on port 80).
                "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
            },
        ),
        spec=k8s.networking.v1.IngressSpecArgs(
            ingress_class_name=ingress_class_name,
            tls=[
                k8s.networking.v1.IngressTLSArgs(
                    hosts=[ingress_host], secret_name=f"{TLS_SECRET_PREFIX}{names.ingress}"
                )
            ],
            rules=[
                k8s.networking.v1.IngressRuleArgs(
                    host=ingress_host,
                    http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                        paths=[
                            k8s.networking.v1.HTTPIngressPathArgs(
                                path=f"{names.ingress_path}({'|'.join(ROUTED_PATHS)})$",
                                path_type="ImplementationSpecific",
                                backend=k8s.networking.v1.IngressBackendArgs(
                                    service=k8s.networking.v1.IngressServiceBackendArgs(
                                        name=names.service,
                                        port=k8s.networking.v1.ServiceBackendPortArgs(name="http"),
                                    )
                                ),
                            )
                        ]
                    ),
                )
            ],
        ),
        opts=opts,
    )
    return route


def _pod_monitor(
    context: BrandWorkloadContext, opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """What managed Prometheus scrapes: the pods' /metrics every 30 s."""
    selector, prefix = context.component_labels("ranking"), f"{context.brand.name}-ranking"
    pod_monitor = k8s.apiextensions.CustomResource(
        f"{prefix}-podmonitor",
        api_version="azmonitoring.coreos.com/v1",
        kind="PodMonitor",
        metadata=context.metadata("ranking"),
        spec={
            "selector": {"matchLabels": selector},
            "podMetricsEndpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
        },
        opts=opts,
    )
    return pod_monitor

"""A brand's training job on AKS: built for flexibility, never touching a serving pod.

A CronJob on the brand's ``training.schedule`` runs the training image with the
environment contract. With ``training.workers > 0`` it trains on the brand's Dask cluster
(``infra.brand_dask``): the job's pod is the driver that joins it, and the cluster's
workers, which run as training's identity too, read the lake and fit.
A second CronJob runs the online-experiment evaluator (``ranking-experiments evaluate``)
from the same image, as the same identity and with the same secret, every hour; a third, the
drift job (``ranking-experiments drift``), half an hour later, so the two never share the
quota's room for one of them beside a training run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s
from ranking_features.brand import Brand, ranking_drift_flags, ranking_train_flags

from infra.brand_dask import DaskPods, create_dask_cluster
from infra.brand_names import BrandSecret
from infra.brand_namespace import cpu_milli
from infra.brand_pods import (
    MLFLOW_PASSWORD_OBJECT,
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

core, meta, batch = k8s.core.v1, k8s.meta.v1, k8s.batch.v1

STARTING_DEADLINE_SECONDS = 600
"""A run missed by more than this (control plane down, node pool full) is skipped, not queued."""
ACTIVE_DEADLINE_SECONDS = 4 * 3600
BACKOFF_LIMIT = 2
JOB_TTL_SECONDS = 24 * 3600
EXPERIMENTS_SCHEDULE = "17 * * * *"
"""Hourly, off the hour: a verdict waits at most an hour, and the registry is quiet then."""
EXPERIMENTS_CRON_JOB = "training-experiments"
EXPERIMENTS_ACTIVE_DEADLINE_SECONDS = 1800
DRIFT_SCHEDULE = "47 * * * *"
"""Hourly, 30 minutes after the evaluator, whose deadline is 30 minutes: the namespace quota
holds one evaluator-sized job beside a training run (infra/brand_namespace.py), and these
two take turns in it. A late start only waits for the quota, it never fails."""
DRIFT_CRON_JOB = "training-drift"


def _training_args(context: BrandWorkloadContext) -> list[str]:
    """``ranking-train`` flags from the merged brand file, as the local platform passes them
    (``recplat.brand.ranking_train_flags``), plus how it runs here; the env contract carries
    the rest."""
    training = context.brand.training
    # The image's entrypoint is tini; these replace its CMD, so they name the command.
    args = [
        "ranking-train",
        *ranking_train_flags(training),
        "--workers", str(training.workers),
        # LightGBM defaults to every core of the node; pin it to what the pod may use.
        "--num-threads", str(max(1, math.ceil(cpu_milli(training.cpu) / 1000))),
    ]  # fmt: skip
    if training.workers:
        args += ["--dask-scheduler", context.names.dask_scheduler_address]
    return args


def _pod_spec(
    context: BrandWorkloadContext,
    container: core.ContainerArgs,
    restart_policy: str | None = None,
    extra_volumes: list[core.VolumeArgs] | None = None,
) -> core.PodSpecArgs:
    return core.PodSpecArgs(
        service_account_name=context.names.training_service_account,
        automount_service_account_token=False,
        security_context=pod_security_context(),
        restart_policy=restart_policy,
        containers=[container],
        volumes=[scratch_volume("tmp", "2Gi"), *(extra_volumes or [])],
    )


def _container(
    context: BrandWorkloadContext,
    name: str,
    image: str,
    env: list[core.EnvVarArgs],
    args: list[str] | None = None,
    ports: list[core.ContainerPortArgs] | None = None,
    sizing: core.ResourceRequirementsArgs | None = None,
    extra_mounts: list[core.VolumeMountArgs] | None = None,
) -> core.ContainerArgs:
    training = context.brand.training
    return core.ContainerArgs(
        name=name,
        image=context.image(image),
        image_pull_policy="Always",
        args=args,
        env=env,
        ports=ports,
        resources=sizing or resources(training.cpu, training.memory),
        security_context=container_security_context(),
        volume_mounts=[
            core.VolumeMountArgs(name="tmp", mount_path=TMP_MOUNT),
            *(extra_mounts or []),
        ],
    )


def image_revision(image: str) -> str:
    """What an image reference pins: its digest, else its tag, else ``unknown``."""
    if "@" in image:
        return image.split("@", 1)[1]
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else "unknown"


def create_training(
    context: BrandWorkloadContext,
    image: str,
    key_vault_name: pulumi.Input[str],
    tenant_id: pulumi.Input[str],
    dask_operator: Sequence[pulumi.Resource] = (),
) -> list[pulumi.Resource]:
    """The training ServiceAccount, its SecretProviderClass and CronJob, and the DaskCluster
    when the brand uses one (after ``dask_operator``, which installs the DaskCluster CRD)."""
    brand, names, opts = context.brand, context.names, context.k8s_opts
    prefix = f"{brand.name}-training"
    pod_labels = {
        **context.labels,
        **context.component_labels("training"),
        **workload_identity_labels(),
    }
    account = core.ServiceAccount(
        f"{prefix}-sa",
        metadata=meta.ObjectMetaArgs(
            name=names.training_service_account,
            namespace=names.namespace,
            labels={**context.labels, **workload_identity_labels()},
            annotations={"azure.workload.identity/client-id": context.training_identity_client_id},
        ),
        automount_service_account_token=False,
        opts=opts,
    )
    # Training's own class and identity: the MLflow writer's password only (no API key).
    provider_class = secret_provider_class(
        f"{prefix}-mlflow",
        context.metadata(names.training_secret_provider_class, "training"),
        client_id=context.training_identity_client_id,
        key_vault_name=key_vault_name,
        tenant_id=tenant_id,
        secrets=[(context.secret_names[BrandSecret.MLFLOW_PASSWORD], MLFLOW_PASSWORD_OBJECT)],
        opts=opts,
    )
    created: list[pulumi.Resource] = [account, provider_class]
    depends_on: list[pulumi.Resource] = [account, provider_class]
    if brand.training.workers:
        # The operator's Helm release installs the Dask CRDs; without them the objects fail.
        after_operator = pulumi.ResourceOptions(depends_on=list(dask_operator))
        dask = create_dask_cluster(
            context,
            DaskPods(
                container=functools.partial(_container, context, image=image),
                pod_spec=functools.partial(_pod_spec, context),
            ),
            pulumi.ResourceOptions.merge(opts, after_operator),
        )
        created += dask
        depends_on += dask

    # Model versions are tagged with the code that trained them; the image has no git, and
    # the deploy workflow tags images by commit, so the image's pin is that commit.
    revision = core.EnvVarArgs(name="RECPLAT_GIT_SHA", value=image_revision(image))
    # Only the job's own pod talks to MLflow (the Dask workers never do), so only it
    # mounts the brand's MLflow password.
    job_container = _container(
        context,
        "training",
        image,
        [*context.common_env(), *context.mlflow_auth_env(names.mlflow_user), revision],
        args=_training_args(context),
        extra_mounts=[secrets_mount()],
    )
    cron_job = batch.CronJob(
        f"{prefix}-cronjob",
        metadata=context.metadata(names.cron_job, "training"),
        spec=batch.CronJobSpecArgs(
            schedule=brand.training.schedule,
            time_zone="Etc/UTC",
            # Two trainings of one brand at once would race to register and promote.
            concurrency_policy="Forbid",
            starting_deadline_seconds=STARTING_DEADLINE_SECONDS,
            successful_jobs_history_limit=3,
            failed_jobs_history_limit=3,
            job_template=batch.JobTemplateSpecArgs(
                metadata=meta.ObjectMetaArgs(labels=pod_labels),
                spec=batch.JobSpecArgs(
                    backoff_limit=BACKOFF_LIMIT,
                    active_deadline_seconds=ACTIVE_DEADLINE_SECONDS,
                    ttl_seconds_after_finished=JOB_TTL_SECONDS,
                    template=core.PodTemplateSpecArgs(
                        metadata=meta.ObjectMetaArgs(labels=pod_labels),
                        spec=_pod_spec(
                            context,
                            job_container,
                            restart_policy="Never",
                            extra_volumes=[
                                context.secrets_volume(names.training_secret_provider_class)
                            ],
                        ),
                    ),
                ),
            ),
        ),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=depends_on)),
    )
    created.append(cron_job)
    hourly_env = [*context.common_env(), *context.mlflow_auth_env(names.mlflow_user)]
    hourly_opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=depends_on))
    created.append(_experiments_cron_job(context, image, hourly_env, hourly_opts))
    created.append(
        _evaluator_cron_job(
            context,
            image,
            hourly_env,
            hourly_opts,
            job=("drift", DRIFT_CRON_JOB, DRIFT_SCHEDULE),
            args=drift_args(context.brand),
        )
    )
    return created


def drift_args(brand: Brand) -> list[str]:
    """``ranking-experiments drift`` and the brand's flags (``recplat.brand.ranking_drift_flags``,
    which the local platform passes too)."""
    return ["ranking-experiments", "drift", *ranking_drift_flags(brand.monitoring)]


def _experiments_args(context: BrandWorkloadContext) -> list[str]:
    """``ranking-experiments evaluate`` flags: the service's share and the longest run."""
    brand = context.brand
    return [
        "ranking-experiments", "evaluate",
        "--challenger-traffic", str(brand.serving.challenger_traffic),
        "--max-experiment-days", str(brand.training.promotion.max_experiment_days),
    ]  # fmt: skip


def _experiments_cron_job(
    context: BrandWorkloadContext,
    image: str,
    env: list[core.EnvVarArgs],
    opts: pulumi.ResourceOptions,
) -> batch.CronJob:
    return _evaluator_cron_job(
        context,
        image,
        env,
        opts,
        job=("experiments", EXPERIMENTS_CRON_JOB, EXPERIMENTS_SCHEDULE),
        args=_experiments_args(context),
    )


def _evaluator_cron_job(
    context: BrandWorkloadContext,
    image: str,
    env: list[core.EnvVarArgs],
    opts: pulumi.ResourceOptions,
    *,
    job: tuple[str, str, str],
    args: list[str],
) -> batch.CronJob:
    """An hourly evaluator, ``job`` = (component, CronJob name, schedule): training's
    ServiceAccount (workload identity, to read the lake) and MLflow writer secret (to move
    aliases, tag versions and log runs), nothing else. Its own component label keeps it off
    the training-to-Dask network rule; the namespace-wide egress (DNS, MLflow, Azure) is what
    it needs."""
    component, cron_job_name, schedule = job
    names = context.names
    pod_labels = {
        **context.labels,
        **context.component_labels(component),
        **workload_identity_labels(),
    }
    container = _container(
        context, component, image, env, args=args, extra_mounts=[secrets_mount()]
    )
    return batch.CronJob(
        f"{context.brand.name}-{component}-cronjob",
        metadata=context.metadata(cron_job_name, component),
        spec=batch.CronJobSpecArgs(
            schedule=schedule,
            time_zone="Etc/UTC",
            # Two evaluations at once could both act on one verdict (promote twice, or promote
            # and stop), or tag one version twice: one at a time.
            concurrency_policy="Forbid",
            starting_deadline_seconds=STARTING_DEADLINE_SECONDS,
            successful_jobs_history_limit=3,
            failed_jobs_history_limit=3,
            job_template=batch.JobTemplateSpecArgs(
                metadata=meta.ObjectMetaArgs(labels=pod_labels),
                spec=batch.JobSpecArgs(
                    # The next hour's run retries; a failing one is seen in the job history.
                    backoff_limit=1,
                    active_deadline_seconds=EXPERIMENTS_ACTIVE_DEADLINE_SECONDS,
                    ttl_seconds_after_finished=JOB_TTL_SECONDS,
                    template=core.PodTemplateSpecArgs(
                        metadata=meta.ObjectMetaArgs(labels=pod_labels),
                        spec=_pod_spec(
                            context,
                            container,
                            restart_policy="Never",
                            extra_volumes=[
                                context.secrets_volume(names.training_secret_provider_class)
                            ],
                        ),
                    ),
                ),
            ),
        ),
        opts=opts,
    )

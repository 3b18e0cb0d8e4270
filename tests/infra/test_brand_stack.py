"""BrandStack under Pulumi's mock runtime: what each brand gets, and that brands stay apart.

The stacks are planned directly with a stand-in ``BrandPlatform`` of plain values, so
these tests need neither the environment layer nor any cloud: they pin down the brand
layer alone. The full program (environment + brands) is covered by
``test_brand_onboarding.py`` through ``recplat.plan``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ranking_features.brand import Brand, brands_for_environment

from infra.brand_names import NAME_LIMITS, SECRET_SUFFIX_BYTES, brand_names
from recplat.testing.checkov import run_checkov
from tests.infra.brand_plans import (
    BUILTIN_KINDS,
    DIGEST,
    EXAMPLE_BRANDS,
    KEY_VAULT_SECRETS_USER,
    KUBERNETES_VERSION,
    MLFLOW_PRINCIPAL,
    STORAGE_ID,
    SUBSCRIPTION,
    VAULT_ID,
    PlannedResource,
    manifests,
    plan_brands,
)


@pytest.fixture(scope="module")
def prod() -> dict[str, PlannedResource]:
    return plan_brands(brands_for_environment(EXAMPLE_BRANDS, "prod"), "prod")


@pytest.fixture(scope="module")
def dev() -> dict[str, PlannedResource]:
    return plan_brands(brands_for_environment(EXAMPLE_BRANDS, "dev"), "dev")


def owner_brand(resource: PlannedResource, brands: Iterable[str]) -> str:
    return max((b for b in brands if resource.name.startswith(f"{b}-")), key=len)


def of_type(planned: dict[str, PlannedResource], suffix: str) -> list[PlannedResource]:
    return [resource for resource in planned.values() if resource.type.endswith(suffix)]


def drawn_secret_name(brand: str, purpose: str, random_seed: str = "") -> str:
    """The Key Vault name ``BrandMocks`` makes a brand's secret of ``purpose`` get."""
    drawn = hashlib.sha256(f"{random_seed}/{brand}-secret-suffix".encode()).digest()
    return f"brand-{brand}-{purpose}-{drawn[:SECRET_SUFFIX_BYTES].hex()}"


def test_every_brand_gets_the_full_set_of_resources(prod: dict[str, PlannedResource]) -> None:
    per_brand = Counter(
        (owner_brand(r, ["newsroom", "streamly"]), r.kind)
        for r in prod.values()
        if r.brand in {"newsroom", "streamly"}
    )
    for brand in ("newsroom", "streamly"):
        for kind, count in {
            "UserAssignedIdentity": 2, "FederatedIdentityCredential": 2, "RoleAssignment": 7,
            "BlobContainer": 1, "RandomPassword": 3, "RandomId": 1, "Secret": 3,
            "PrometheusRuleGroup": 1,
            "Namespace": 1, "ResourceQuota": 1, "LimitRange": 1, "ServiceAccount": 2,
            "SecretProviderClass": 2, "MlflowAccess": 1, "Deployment": 1, "Service": 1,
            "HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 1, "Ingress": 1,
            "PodMonitor": 1, "CronJob": 3,
        }.items():  # fmt: skip
            assert per_brand[(brand, kind)] == count, f"{brand}: expected {count} {kind}"
    # streamly trains on 4 Dask workers in prod; newsroom trains in the job's pod.
    assert per_brand[("streamly", "DaskCluster")] == 1
    assert per_brand[("newsroom", "DaskCluster")] == 0


def test_only_brands_listing_the_environment_are_stamped(dev: dict[str, PlannedResource]) -> None:
    stacks = {r.name for r in of_type(dev, "BrandStack")}
    assert stacks == {"newsroom", "shopsmart", "streamly"}
    dask = [r for r in of_type(dev, "DaskCluster")]
    assert dask == [], "dev overrides streamly to workers: 0, so no DaskCluster in dev"


def test_service_and_training_sign_in_as_different_identities(
    prod: dict[str, PlannedResource],
) -> None:
    for brand in ("newsroom", "streamly"):
        service, training = (prod[f"{brand}-fic-{brand}-{sa}"] for sa in ("ranking", "training"))
        assert service.inputs["subject"] == f"system:serviceaccount:brand-{brand}:ranking"
        assert training.inputs["subject"] == f"system:serviceaccount:brand-{brand}:training"
        # One credential per identity, so none of Azure's concurrent-write 409s.
        assert service.inputs["resourceName"] == f"id-recplat-prod-{brand}-ranking"
        assert training.inputs["resourceName"] == f"id-recplat-prod-{brand}"
        accounts = {
            a.inputs["metadata"]["name"]: a.inputs["metadata"]["annotations"]
            for a in of_type(prod, "ServiceAccount")
            if a.inputs["metadata"]["namespace"] == f"brand-{brand}"
        }
        assert accounts["ranking"]["azure.workload.identity/client-id"] == (
            f"client-id-recplat-prod-{brand}-ranking"
        )
        assert accounts["training"]["azure.workload.identity/client-id"] == (
            f"client-id-recplat-prod-{brand}"
        )


def test_role_assignments_stay_inside_their_brand(dev: dict[str, PlannedResource]) -> None:
    assignments = of_type(dev, "RoleAssignment")
    assert len(assignments) == 21
    for assignment in assignments:
        brand = owner_brand(assignment, ["newsroom", "shopsmart", "streamly"])
        inputs = assignment.inputs
        assert inputs["principalType"] == "ServicePrincipal", assignment.name
        assert inputs["roleDefinitionId"].startswith(f"/subscriptions/{SUBSCRIPTION}/providers/")
        assert f"/secrets/brand-{brand}-" in inputs["scope"] or inputs["scope"].endswith(
            f"/containers/brand-{brand}"
        ), f"{assignment.name}: scope {inputs['scope']} is not {brand}'s"
    contributor, reader = (
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    )
    for brand in ("newsroom", "shopsmart", "streamly"):
        container = f"{STORAGE_ID}/blobServices/default/containers/brand-{brand}"

        def secret(purpose: str, brand: str = brand) -> str:
            return f"{VAULT_ID}/secrets/{drawn_secret_name(brand, purpose)}"

        held = {
            principal: sorted(
                (a.inputs["scope"], a.inputs["roleDefinitionId"].rsplit("/", 1)[-1])
                for a in assignments
                if a.inputs["principalId"] == principal and brand in a.name.split("-", 1)[0]
            )
            for principal in (
                f"principal-id-recplat-dev-{brand}-ranking",
                f"principal-id-recplat-dev-{brand}",
                MLFLOW_PRINCIPAL,
            )
        }
        # The internet-facing service: writes events, reads its API key and the password of
        # the read-only MLflow user. Never the writer's password.
        assert held[f"principal-id-recplat-dev-{brand}-ranking"] == sorted([
            (container, contributor),
            (secret("api-key"), KEY_VAULT_SECRETS_USER),
            (secret("mlflow-reader-password"), KEY_VAULT_SECRETS_USER),
        ]), brand  # fmt: skip
        # Training: reads the lake and the MLflow writer's password; no API key.
        assert held[f"principal-id-recplat-dev-{brand}"] == sorted([
            (container, reader),
            (secret("mlflow-password"), KEY_VAULT_SECRETS_USER),
        ]), brand  # fmt: skip
        # The MLflow server sets both users' passwords, so it reads both, nothing else.
        assert held[MLFLOW_PRINCIPAL] == sorted([
            (secret("mlflow-password"), KEY_VAULT_SECRETS_USER),
            (secret("mlflow-reader-password"), KEY_VAULT_SECRETS_USER),
        ]), brand  # fmt: skip


def _secret_objects(provider_class: PlannedResource) -> dict[str, str]:
    """A SecretProviderClass's Key Vault objects: file alias -> secret name."""
    array = yaml.safe_load(provider_class.inputs["spec"]["parameters"]["objects"])["array"]
    return {o["objectAlias"]: o["objectName"] for o in map(yaml.safe_load, array)}


def test_a_re_added_brand_gets_secret_names_key_vault_never_held() -> None:
    """Under purge protection a deleted secret's name stays taken for the retention period
    (issue 16): a brand removed and added again draws a new suffix, and every reference to its
    secrets (role scopes, SecretProviderClasses) follows the names it drew; pods don't change."""
    newsroom = next(b for b in EXAMPLE_BRANDS if b.name == "newsroom").for_environment("prod")
    first, again = (
        plan_brands([newsroom], "prod", random_seed=seed) for seed in ("first", "re-added")
    )
    drawn: list[set[str]] = []
    for planned in (first, again):
        secrets = {
            purpose: planned[f"newsroom-{purpose}-secret"].inputs["secretName"]
            for purpose in ("api-key", "mlflow-password", "mlflow-reader-password")
        }
        suffixes = {name.rsplit("-", 1)[1] for name in secrets.values()}
        assert len(suffixes) == 1 and re.fullmatch(r"[0-9a-f]{8}", suffixes.pop()), secrets
        for purpose, name in secrets.items():
            assert name.startswith(f"brand-newsroom-{purpose}-"), name
        scopes = {
            a.name.removeprefix("newsroom-"): a.inputs["scope"].split("/secrets/", 1)[1]
            for a in of_type(planned, "RoleAssignment")
            if "/secrets/" in a.inputs["scope"]
        }
        assert scopes == {
            "api-key-reader": secrets["api-key"],
            "mlflow-reader-password-reader": secrets["mlflow-reader-password"],
            "mlflow-password-reader": secrets["mlflow-password"],
            "mlflow-server-reads-password": secrets["mlflow-password"],
            "mlflow-server-reads-reader-password": secrets["mlflow-reader-password"],
        }
        classes = {c.name: _secret_objects(c) for c in of_type(planned, "SecretProviderClass")}
        assert classes == {
            "newsroom-ranking-api-key": {
                "api-key": secrets["api-key"],
                "mlflow-password": secrets["mlflow-reader-password"],
            },
            "newsroom-training-mlflow": {"mlflow-password": secrets["mlflow-password"]},
            "newsroom-mlflow-access-secret-provider": {
                "admin-password": "mlflow-admin-password",
                "brand-newsroom": secrets["mlflow-password"],
                "brand-newsroom-reader": secrets["mlflow-reader-password"],
            },
        }
        drawn.append(set(secrets.values()))
    assert not drawn[0] & drawn[1], f"a re-added brand reused a deleted secret name: {drawn}"
    for kind in ("apps/v1:Deployment", "CronJob"):
        for workload in of_type(first, kind):
            assert workload.inputs == again[workload.name].inputs, workload.name


def test_no_two_brands_share_a_name(dev: dict[str, PlannedResource]) -> None:
    fields = {
        "UserAssignedIdentity": "resourceName",
        "BlobContainer": "containerName",
        "Secret": "secretName",
        "PrometheusRuleGroup": "ruleGroupName",
        "FederatedIdentityCredential": "federatedIdentityCredentialResourceName",
        "RoleAssignment": "roleAssignmentName",
    }
    for kind, key in fields.items():
        values = [r.inputs[key] for r in dev.values() if r.kind == kind]
        assert len(values) == len(set(values)) >= 3, f"{kind} {key} repeated: {values}"
    namespaces = [r.inputs["metadata"]["name"] for r in of_type(dev, "Namespace")]
    assert sorted(namespaces) == ["brand-newsroom", "brand-shopsmart", "brand-streamly"]


def test_network_policies_deny_by_default_and_never_open_another_brand(
    dev: dict[str, PlannedResource],
) -> None:
    brand_namespaces = {f"brand-{b}" for b in ("newsroom", "shopsmart", "streamly")}
    policies = of_type(dev, "NetworkPolicy")
    for namespace in brand_namespaces:
        deny = [
            p for p in policies
            if p.inputs["metadata"]["namespace"] == namespace
            and p.inputs["metadata"]["name"] == "default-deny"
        ]  # fmt: skip
        assert len(deny) == 1, f"{namespace}: no default-deny policy"
        spec = deny[0].inputs["spec"]
        assert spec["podSelector"] == {} and sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
        assert "ingress" not in spec and "egress" not in spec
    cluster_ranges = [ipaddress.ip_network(cidr) for cidr in ("10.0.0.0/8", "172.16.0.0/12")]
    for policy in policies:
        spec = policy.inputs["spec"]
        peers = [
            peer
            for rule in spec.get("ingress", []) + spec.get("egress", [])
            for peer in rule.get("from", []) + rule.get("to", [])
        ]
        for peer in peers:
            selected = peer.get("namespaceSelector", {}).get("matchLabels", {})
            target = selected.get("kubernetes.io/metadata.name")
            assert target not in brand_namespaces, f"{policy.name} opens namespace {target}"
            assert peer.get("namespaceSelector") != {}, f"{policy.name} selects every namespace"
            if "ipBlock" in peer:
                excluded = [ipaddress.ip_network(c) for c in peer["ipBlock"].get("except", [])]
                for cluster_range in cluster_ranges:
                    assert cluster_range in excluded, f"{policy.name} reaches {cluster_range}"


def _secrets_file(pod: dict[str, Any], container: dict[str, Any], variable: str) -> str:
    """The file ``variable`` names, checked to lie in the pod's read-only CSI secrets mount."""
    env = {item["name"]: item for item in container["env"]}
    path = str(env[variable]["value"])
    mount = next(m for m in container["volumeMounts"] if m["name"] == "brand-secrets")
    assert path.startswith(mount["mountPath"] + "/") and mount["readOnly"], variable
    volume = next(v for v in pod["volumes"] if v["name"] == "brand-secrets")
    assert volume["csi"]["driver"] == "secrets-store.csi.k8s.io"
    own_class = "training-mlflow" if pod["serviceAccountName"] == "training" else "ranking-api-key"
    assert volume["csi"]["volumeAttributes"] == {"secretProviderClass": own_class}
    return path


def test_secrets_reach_service_and_training_only_as_mounted_files(
    prod: dict[str, PlannedResource],
) -> None:
    pods = [
        (d.name, d.inputs["spec"]["template"]["spec"]) for d in of_type(prod, "apps/v1:Deployment")
    ] + [
        (c.name, c.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"])
        for c in of_type(prod, "CronJob")
    ]
    # Per brand: the service, the training job, the experiment evaluator and the drift job.
    assert len(pods) == 8
    for name, pod in pods:
        container = pod["containers"][0]
        env = {item["name"]: item for item in container["env"]}
        assert all("valueFrom" not in item for item in env.values()), name
        assert not {"MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"} & set(env), name
        brand = name.split("-", 1)[0]
        password_file = _secrets_file(pod, container, "RECPLAT_MLFLOW_PASSWORD_FILE")
        assert password_file.endswith("/mlflow-password"), name
        if name.endswith("-deployment"):
            # Serving reads MLflow as the brand's read-only user.
            assert env["RECPLAT_MLFLOW_USERNAME"]["value"] == f"brand-{brand}-reader", name
            assert _secrets_file(pod, container, "RECPLAT_API_KEY_FILE").endswith("/api-key")
        else:
            assert env["RECPLAT_MLFLOW_USERNAME"]["value"] == f"brand-{brand}", name
            assert "RECPLAT_API_KEY_FILE" not in env, name
    classes = {
        (c.name.split("-", 1)[0], c.inputs["metadata"]["name"]): c.inputs["spec"]
        for c in of_type(prod, "SecretProviderClass")
        if c.inputs["metadata"]["namespace"].startswith("brand-")
    }
    assert len(classes) == 4
    for (brand, class_name), spec in classes.items():
        assert "secretObjects" not in spec, class_name
        objects = [
            yaml.safe_load(item) for item in yaml.safe_load(spec["parameters"]["objects"])["array"]
        ]
        if class_name == "ranking-api-key":
            assert spec["parameters"]["clientID"] == f"client-id-recplat-prod-{brand}-ranking"
            assert objects == [
                {"objectName": drawn_secret_name(brand, "api-key"), "objectType": "secret",
                 "objectAlias": "api-key"},
                {"objectName": drawn_secret_name(brand, "mlflow-reader-password"),
                 "objectType": "secret", "objectAlias": "mlflow-password"},
            ]  # fmt: skip
        else:
            assert class_name == "training-mlflow"
            assert spec["parameters"]["clientID"] == f"client-id-recplat-prod-{brand}"
            assert objects == [
                {"objectName": drawn_secret_name(brand, "mlflow-password"), "objectType": "secret",
                 "objectAlias": "mlflow-password"},
            ]  # fmt: skip
    for secret in of_type(prod, "keyvault:Secret"):
        assert set(secret.inputs["properties"]) <= {"value", "contentType"}


def test_azure_resources_carry_brand_and_environment_tags(prod: dict[str, PlannedResource]) -> None:
    tagged = [r for r in prod.values() if r.type.startswith("azure-native:") and "tags" in r.inputs]
    assert {r.kind for r in tagged} == {
        "UserAssignedIdentity", "Secret", "PrometheusRuleGroup", "Dashboard"
    }  # fmt: skip
    for resource in tagged:
        tags = resource.inputs["tags"]
        for key in ("environment", "managed-by", "project", "brand", "owner", "cost-center"):
            assert tags.get(key), f"{resource.name}: tag {key} missing"


def test_service_and_training_follow_the_brand_file(prod: dict[str, PlannedResource]) -> None:
    hpa = prod["newsroom-ranking-hpa"].inputs["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)
    cron = prod["newsroom-training-cronjob"].inputs["spec"]
    assert cron["schedule"] == "15 */6 * * *" and cron["concurrencyPolicy"] == "Forbid"
    job = cron["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 0 and job["activeDeadlineSeconds"] > 0
    streamly = prod["streamly-training-cronjob"].inputs["spec"]["jobTemplate"]["spec"]
    container = streamly["template"]["spec"]["containers"][0]
    assert container["args"][0] == "ranking-train"
    args = dict(zip(container["args"][1::2], container["args"][2::2], strict=True))
    assert args["--dask-scheduler"] == (
        "tcp://training-dask-scheduler.brand-streamly.svc.cluster.local:8786"
    )
    assert (args["--workers"], args["--num-leaves"], args["--lookback-days"]) == ("4", "127", "60")
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["RECPLAT_LAKE_URI"] == "abfs://brand-streamly@strecplatlake.dfs.core.windows.net/"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert env["RECPLAT_GIT_SHA"] == DIGEST, "model versions must name the code that trained them"
    quota = prod["streamly-quota"].inputs["spec"]["hard"]
    # 9 service pods (max 8 + 1 surge) at 500m, job + 4 workers at 2 CPU, scheduler 500m, and
    # the experiment evaluator, sized like the job, which may run beside it.
    assert quota["requests.cpu"] == f"{9 * 500 + 5 * 2000 + 500 + 2000}m"
    assert quota["pods"] == str(9 + 5 + 1 + 1)


def test_the_service_reads_the_brands_serving_settings_in_aks_and_locally(
    tmp_path: Path,
) -> None:
    from recplat.local.workloads import ServiceOptions, WorkloadWiring, service_env

    newsroom = next(b for b in EXAMPLE_BRANDS if b.name == "newsroom")
    data = newsroom.model_dump(mode="json")
    data["serving"] |= {"exploration": 0.15, "default_k": 7, "challenger_traffic": 0.25}
    brand = Brand.model_validate(data)
    planned = plan_brands([brand.for_environment("prod")], "prod")
    deployment = planned["newsroom-ranking-deployment"]
    container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    serving_env = {
        "RECPLAT_EXPLORATION": "0.15",
        "RECPLAT_DEFAULT_K": "7",
        "RECPLAT_CHALLENGER_TRAFFIC": "0.25",
        "RECPLAT_MAX_CANDIDATES": "300",
    }
    assert {name: env.get(name) for name in serving_env} == serving_env, deployment.name
    local = service_env(
        brand.for_environment("dev"),
        "file:///lake",
        WorkloadWiring(environment="dev", tracking_uri="http://127.0.0.1:5000", storage_env={}),
        api_key_file=tmp_path / "key",
        event_log_dir=tmp_path / "log",
        options=ServiceOptions(),
    )
    # newsroom's dev override sets challenger_traffic 0.5 and exploration 0.2; the rest is
    # the brand file's.
    assert {name: local.get(name) for name in serving_env} == serving_env | {
        "RECPLAT_CHALLENGER_TRAFFIC": "0.5",
        "RECPLAT_EXPLORATION": "0.2",
    }


def test_kubernetes_objects_pass_strict_schema_validation(
    dev: dict[str, PlannedResource], prod: dict[str, PlannedResource], tmp_path: Path
) -> None:
    objects = [o for o in manifests(dev) + manifests(prod) if o["kind"] in BUILTIN_KINDS]
    assert {o["kind"] for o in objects} == BUILTIN_KINDS
    path = tmp_path / "brands.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--no-warn",
         "-k", KUBERNETES_VERSION, str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_names_fit_their_limits(prod: dict[str, PlannedResource]) -> None:
    label_value = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
    for obj in manifests(prod):
        name = obj["metadata"]["name"]
        limit = 52 if obj["kind"] == "CronJob" else 63
        assert len(name) <= limit and re.fullmatch(NAME_LIMITS["namespace"].pattern, name), name
        for key, value in obj["metadata"].get("labels", {}).items():
            assert len(value) <= 63 and label_value.fullmatch(value), f"{name}: {key}={value}"


# checkov checks that do not apply, each with the reason. None so far: the brand layer
# passes every kubernetes check (images are pinned by digest in this platform).
CHECKOV_SKIPS: dict[str, str] = {}


def test_kubernetes_objects_pass_checkov(
    dev: dict[str, PlannedResource], prod: dict[str, PlannedResource], tmp_path: Path
) -> None:
    for index, obj in enumerate(manifests(dev) + manifests(prod)):
        (tmp_path / f"{index:03d}-{obj['kind']}.yaml").write_text(yaml.safe_dump(obj))
    report = run_checkov("kubernetes", directory=tmp_path, skip_checks=CHECKOV_SKIPS)
    assert report.failed == [], "\n".join(report.failed)
    assert report.passed > 100, f"checkov ran only {report.passed} checks"


def test_longest_brand_name_fits_every_limit() -> None:
    longest = "a" + "b" * 22 + "c"
    assert len(longest) == 24
    for environment in ("dev", "prod"):
        names = brand_names(longest, environment)
        for field_name, value in names.limited().items():
            assert len(value) <= NAME_LIMITS[field_name].max_length, field_name
    brand = EXAMPLE_BRANDS[0].model_copy(update={"name": longest})
    planned = plan_brands([brand.for_environment("prod")], "prod")
    test_kubernetes_names_fit_their_limits(planned)
    assert planned[f"{longest}-namespace"].inputs["metadata"]["name"] == f"brand-{longest}"


def test_a_dask_brand_needs_the_dask_operator() -> None:
    streamly = next(b for b in EXAMPLE_BRANDS if b.name == "streamly").for_environment("prod")
    with pytest.raises(
        ValueError, match=r"brands/streamly.yaml: training.workers: 4 needs the Dask"
    ):
        plan_brands([streamly], "prod", dask_enabled=False)


def _train_args(planned: dict[str, PlannedResource], brand: str) -> list[str]:
    """The training CronJob's ``ranking-train`` flags, the command checked and dropped."""
    cron_job = planned[f"{brand}-training-cronjob"]
    pod = cron_job.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    command, *args = pod["containers"][0]["args"]
    assert command == "ranking-train", cron_job.name
    return [str(arg) for arg in args]


def _assert_parsed_as_brand(args: list[str], brand: Brand, where: str) -> None:
    """``ranking-train`` parses ``args`` to every setting of the merged ``brand``."""
    from ranking_training.__main__ import build_parser

    parsed = build_parser().parse_args(args)  # exits (SystemExit) on an unknown flag
    training, promotion = brand.training, brand.training.promotion
    expected = {
        "lookback_days": training.lookback_days,
        "label_delay_hours": training.label_delay_hours,
        "promotion_metric": promotion.metric.value,
        "min_gain": promotion.min_gain,
        "conversion_weight": promotion.conversion_weight,
        "margin": promotion.margin,
        "min_exploration_requests": promotion.min_exploration_requests,
        **training.lightgbm.model_dump(),
    }
    assert {key: getattr(parsed, key) for key in expected} == expected, where


def test_training_args_are_what_ranking_train_accepts(prod: dict[str, PlannedResource]) -> None:
    from ranking_training.__main__ import build_parser

    for brand in brands_for_environment(EXAMPLE_BRANDS, "prod"):
        args = _train_args(prod, brand.name)
        _assert_parsed_as_brand(args, brand, brand.name)
        assert build_parser().parse_args(args).workers == brand.training.workers, brand.name


def test_aks_and_the_local_platform_train_with_the_same_brand_settings() -> None:
    """The gate's settings reach the CronJob as they reach a local run; none of them may fall
    back to the job's defaults on AKS."""
    from recplat.local.workloads import WorkloadWiring, training_args

    newsroom = next(b for b in EXAMPLE_BRANDS if b.name == "newsroom")
    data = newsroom.model_dump(mode="json")
    data["training"]["label_delay_hours"] = 12
    data["training"]["promotion"] |= {
        "conversion_weight": 2.5, "margin": 0.03, "min_exploration_requests": 750,
    }  # fmt: skip
    brand = Brand.model_validate(data).for_environment("prod")
    aks = _train_args(plan_brands([brand], "prod"), "newsroom")
    _assert_parsed_as_brand(aks, brand, "AKS CronJob")
    wiring = WorkloadWiring(environment="prod", tracking_uri="http://mlflow", storage_env={})
    local = training_args(brand, wiring)
    _assert_parsed_as_brand(local, brand, "local platform")
    # Beyond the brand's settings, only how the job runs differs (threads, workers).
    how_it_runs = {"--workers", "--num-threads", "--dask-scheduler"}

    def settings(args: list[str]) -> dict[str, str]:
        pairs = dict(zip(args[::2], args[1::2], strict=True))
        return {flag: value for flag, value in pairs.items() if flag not in how_it_runs}

    assert settings(aks) == settings(local)
    assert settings(aks)["--conversion-weight"] == "2.5"


def test_no_brand_workload_starts_before_its_mlflow_names_are_reserved(
    prod: dict[str, PlannedResource],
) -> None:
    for brand in ("newsroom", "streamly"):
        workloads = [
            r for r in prod.values()
            if r.brand == brand and r.kind in {"Deployment", "CronJob", "DaskCluster"}
        ]  # fmt: skip
        assert len(workloads) >= 2, brand
        for workload in workloads:
            assert f"{brand}-mlflow-access" in workload.depends_on, workload.name


def test_the_mlflow_access_job_reserves_each_brand_as_admin_from_mounted_secrets(
    prod: dict[str, PlannedResource],
) -> None:
    from infra.mlflow_access import ACCESS_JOB_PATH

    for brand in ("newsroom", "streamly"):
        job = prod[f"{brand}-mlflow-access-job"].inputs
        provider_class = prod[f"{brand}-mlflow-access-secret-provider"].inputs
        assert job["metadata"]["namespace"] == provider_class["metadata"]["namespace"] == "mlflow"
        assert re.fullmatch(rf"mlflow-access-{brand}-[0-9a-f]{{10}}", job["metadata"]["name"])
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        # The job file the MLflow image ships (tests/images/test_mlflow_image.py runs it there).
        assert container["command"] == [
            "python3", ACCESS_JOB_PATH, "http://mlflow.mlflow.svc.cluster.local:5000",
            "/mnt/secrets", brand,
        ]  # fmt: skip
        assert "env" not in container, "no credential may travel as an env value"
        assert pod["serviceAccountName"] == "mlflow-server"
        assert pod["volumes"][0]["csi"]["volumeAttributes"] == {
            "secretProviderClass": f"mlflow-access-{brand}"
        }
        objects = [
            yaml.safe_load(item)
            for item in yaml.safe_load(provider_class["spec"]["parameters"]["objects"])["array"]
        ]
        assert [(o["objectName"], o["objectAlias"]) for o in objects] == [
            ("mlflow-admin-password", "admin-password"),
            (drawn_secret_name(brand, "mlflow-password"), f"brand-{brand}"),
            (drawn_secret_name(brand, "mlflow-reader-password"), f"brand-{brand}-reader"),
        ]
        assert "secretObjects" not in provider_class["spec"]
        # It runs only once the server may read both passwords it sets.
        assert {
            f"{brand}-mlflow-server-reads-password",
            f"{brand}-mlflow-server-reads-reader-password",
        } <= set(prod[f"{brand}-mlflow-access-job"].depends_on)


def test_the_access_job_reruns_when_a_password_is_rotated() -> None:
    from infra.mlflow_access import job_name

    names = brand_names("alpha", "dev")
    versions = ["https://kv/secrets/brand-alpha-mlflow-password/1", "https://kv/r/1"]
    assert job_name(names, versions) == job_name(names, versions[::-1])
    assert job_name(names, versions) != job_name(names, [versions[0], "https://kv/r/2"])
    assert job_name(names, versions) != job_name(brand_names("beta", "dev"), versions)
    longest = brand_names("b" * 24, "prod")
    assert len(job_name(longest, versions)) <= 63


def test_each_brand_evaluates_its_experiments_hourly_as_its_training_identity(
    prod: dict[str, PlannedResource],
) -> None:
    from ranking_training.experiment_job import build_parser

    for brand in ("newsroom", "streamly"):
        training = prod[f"{brand}-training-cronjob"].inputs
        evaluator = prod[f"{brand}-experiments-cronjob"]
        spec = evaluator.inputs["spec"]
        assert (spec["schedule"], spec["concurrencyPolicy"]) == ("17 * * * *", "Forbid")
        job = spec["jobTemplate"]["spec"]["template"]
        pod, train_pod = job["spec"], training["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        # Training's identity and secret, nothing more: no API key, no other account.
        assert pod["serviceAccountName"] == train_pod["serviceAccountName"] == "training"
        assert pod["volumes"] == train_pod["volumes"]
        assert job["metadata"]["labels"]["azure.workload.identity/use"] == "true"
        assert job["metadata"]["labels"]["app.kubernetes.io/name"] == "experiments"
        (container,) = pod["containers"]
        (train_container,) = train_pod["containers"]
        assert container["image"] == train_container["image"], evaluator.name
        env = {item["name"]: item["value"] for item in container["env"]}
        train_env = {item["name"]: item["value"] for item in train_container["env"]}
        assert env == {k: v for k, v in train_env.items() if k != "RECPLAT_GIT_SHA"}
        command, subcommand, *args = container["args"]
        assert (command, subcommand) == ("ranking-experiments", "evaluate")
        parsed = build_parser().parse_args([subcommand, *args])
        merged = next(b for b in EXAMPLE_BRANDS if b.name == brand).for_environment("prod")
        assert parsed.challenger_traffic == merged.serving.challenger_traffic
        assert parsed.max_experiment_days == merged.training.promotion.max_experiment_days
        assert f"{brand}-mlflow-access" in evaluator.depends_on, evaluator.name

"""The brand API edge: HTTPS only, on a host from stack config, internal unless config says public.

Bearer API keys must never cross a network in cleartext, and the service's operational
endpoints (``/model``, ``/metrics``, ``/healthz``, ``/readyz``) stay inside the cluster.
Every assertion runs on the rendered plan of the real program under Pulumi's mocks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra import azure_roles
from infra.config import IngressExposure, StackConfigError, parse_stack_config
from infra.ingress_edge import load_balancer_annotations
from policies.offline import evaluate_stack
from recplat.plan import Plan
from tests.infra.plan_queries import REPO_ROOT, one, stack_file

STACKS = ["dev", "prod"]
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
CONTROLLER = "kubernetes:approuting.kubernetes.azure.com/v1alpha1:NginxIngressController"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
VAULT = "azure-native:keyvault:Vault"
INTERNAL_LB = "service.beta.kubernetes.io/azure-load-balancer-internal"
SUBSCRIPTION = "8f6b0c5e-3d1a-4c2b-9e7f-0a1b2c3d4e5f"


@pytest.fixture(scope="module")
def brand_plans(plan_for: Callable[[str, Path | None], Plan]) -> dict[str, Plan]:
    return {stack: plan_for(stack, REPO_ROOT / "brands") for stack in STACKS}


def _ingress_config(stack: str) -> dict[str, Any]:
    return dict(stack_file(stack)["recplat:ingress"])


def _brand_ingresses(plan: Plan) -> list[dict[str, Any]]:
    found = plan.of_type(INGRESS)
    assert found, f"stack {plan.stack}: no brand Ingress in the plan"
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_every_brand_ingress_terminates_tls_for_the_stack_host_with_the_vault_certificate(
    brand_plans: dict[str, Plan], stack: str
) -> None:
    plan = brand_plans[stack]
    config = _ingress_config(stack)
    vault_name = one(plan, VAULT)["inputs"]["vaultName"]
    certificate_uri = (
        f"https://{vault_name}.vault.azure.net/certificates/{config['certificateName']}"
    )
    for ingress in _brand_ingresses(plan):
        props, urn = ingress["inputs"], ingress["urn"]
        name = props["metadata"]["name"]
        annotations = props["metadata"]["annotations"]
        assert props["spec"].get("tls") == [
            {"hosts": [config["host"]], "secretName": f"keyvault-{name}"}
        ], urn
        assert [rule.get("host") for rule in props["spec"]["rules"]] == [config["host"]], urn
        assert annotations["kubernetes.azure.com/tls-cert-keyvault-uri"] == certificate_uri, urn
        # A client that tries plain HTTP is redirected before anything reaches the service.
        assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true", urn
        assert annotations.get("nginx.ingress.kubernetes.io/ssl-redirect") != "false", urn


@pytest.mark.parametrize("stack", STACKS)
def test_only_rank_and_feedback_are_routed_and_ops_endpoints_stay_in_cluster(
    brand_plans: dict[str, Plan], stack: str
) -> None:
    for ingress in _brand_ingresses(brand_plans[stack]):
        props, urn = ingress["inputs"], ingress["urn"]
        prefix = f"/brands/{props['metadata']['namespace'].removeprefix('brand-')}/"
        assert props["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"] == "true"
        patterns = [
            re.compile(path["path"])
            for rule in props["spec"]["rules"]
            for path in rule["http"]["paths"]
        ]

        def routed(url: str, patterns: list[re.Pattern[str]] = patterns) -> bool:
            # ingress-nginx turns a regex path into `location ~* ^<path>`.
            return any(re.match(f"^(?:{p.pattern})", url, re.IGNORECASE) for p in patterns)

        for public in ("rank", "feedback"):
            assert routed(prefix + public), f"{urn}: {prefix}{public} is not routed"
        for private in ("model", "metrics", "healthz", "readyz", "", "docs", "openapi.json"):
            for url in (prefix + private, prefix + private.upper(), "/" + private):
                assert not routed(url), f"{urn}: {url} is reachable through the ingress"


@pytest.mark.parametrize("stack", STACKS)
def test_brand_ingresses_use_the_recplat_controller_which_is_internal_by_default(
    brand_plans: dict[str, Plan], stack: str
) -> None:
    plan = brand_plans[stack]
    controller = one(plan, CONTROLLER)
    spec = controller["inputs"]["spec"]
    assert _ingress_config(stack).get("exposure", "internal") == "internal"
    assert spec["loadBalancerAnnotations"] == {INTERNAL_LB: "true"}, controller["urn"]
    for ingress in _brand_ingresses(plan):
        assert ingress["inputs"]["spec"]["ingressClassName"] == spec["ingressClassName"], (
            f"{ingress['urn']} is served by another (possibly public) controller"
        )


@pytest.mark.parametrize("stack", STACKS)
def test_the_controller_spec_fits_the_app_routing_crd(
    environment_plans: dict[str, Plan], stack: str
) -> None:
    # From approuting.kubernetes.azure.com_nginxingresscontrollers.yaml (v1alpha1), which
    # kubernetes-validate does not ship: cluster-scoped, these two fields required.
    controller = one(environment_plans[stack], CONTROLLER)
    props, urn = controller["inputs"], controller["urn"]
    assert "namespace" not in props["metadata"], urn
    spec = props["spec"]
    prefix, class_name = spec["controllerNamePrefix"], spec["ingressClassName"]
    assert len(prefix) <= 60 and re.fullmatch(r"[a-z0-9][-a-z0-9]*[a-z0-9]", prefix), urn
    assert len(class_name) <= 253 and re.fullmatch(r"[a-z0-9][-a-z0-9.]*[a-z0-9]", class_name)
    assert set(spec) == {"controllerNamePrefix", "ingressClassName", "loadBalancerAnnotations"}
    assert all(isinstance(v, str) for v in spec["loadBalancerAnnotations"].values()), urn


def test_public_exposure_is_an_explicit_choice_that_still_names_the_load_balancer() -> None:
    assert load_balancer_annotations(IngressExposure.INTERNAL) == {INTERNAL_LB: "true"}
    assert load_balancer_annotations(IngressExposure.PUBLIC) == {INTERNAL_LB: "false"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_app_routing_identity_may_read_the_vault_certificate_and_nothing_more(
    brand_plans: dict[str, Plan], stack: str
) -> None:
    plan = brand_plans[stack]
    vault_id = f"/resourceGroups/{one(plan, VAULT)['inputs']['resourceGroupName']}"
    grants = [
        r
        for r in plan.of_type(ROLE_ASSIGNMENT)
        if str(r["name"]).endswith("app-routing-vault-secrets")
    ]
    assert len(grants) == 1, [r["urn"] for r in plan.of_type(ROLE_ASSIGNMENT)]
    props = grants[0]["inputs"]
    assert props["roleDefinitionId"].endswith(azure_roles.KEY_VAULT_SECRETS_USER)
    assert props["principalType"] == "ServicePrincipal"
    assert vault_id in props["scope"] and "/providers/Microsoft.KeyVault/vaults/" in props["scope"]
    assert props["principalId"], grants[0]["urn"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_rendered_plan_passes_the_ingress_tls_policy_and_a_plain_http_ingress_fails_it(
    brand_plans: dict[str, Plan], stack: str
) -> None:
    planned = [r for r in brand_plans[stack].resources if r["type"] == INGRESS]
    assert evaluate_stack(planned, stack).violations == ()

    plain = {**planned[0], "inputs": {**planned[0]["inputs"]}}
    plain["inputs"]["spec"] = {k: v for k, v in plain["inputs"]["spec"].items() if k != "tls"}
    report = evaluate_stack([plain], stack)
    assert [v.policy for v in report.mandatory] == ["k8s-ingress-tls"], report.render()


def _raw(stack: str) -> dict[str, Any]:
    raw: dict[str, Any] = {"subscriptionId": SUBSCRIPTION}
    for key, value in stack_file(stack).items():
        raw[key.split(":")[1]] = value
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"host": "http://api.example.com"},
            r"recplat:ingress\.host: .*a DNS name such as api\.example\.com "
            r"\(no scheme, port or path\)",
        ),
        ({"host": "localhost"}, r"recplat:ingress\.host: .*at least two labels"),
        ({"certificateName": "my_cert.pfx"}, r"recplat:ingress\.certificateName: .*Key Vault"),
        ({"exposure": "open"}, r"recplat:ingress\.exposure: .*'internal' or 'public'"),
    ],
)
def test_a_bad_ingress_setting_is_refused_with_the_file_key_and_fix(
    change: dict[str, str], message: str
) -> None:
    raw = _raw("dev")
    raw["ingress"] = {**raw["ingress"], **change}
    with pytest.raises(StackConfigError, match=rf"Pulumi\.dev\.yaml: {message}"):
        parse_stack_config("dev", raw)


def test_a_stack_without_ingress_config_is_refused_rather_than_served_over_http() -> None:
    raw = _raw("prod")
    del raw["ingress"]
    with pytest.raises(StackConfigError, match=r"Pulumi\.prod\.yaml: recplat:ingress: "):
        parse_stack_config("prod", raw)


def test_public_exposure_parses_and_internal_is_the_default() -> None:
    raw = _raw("dev")
    raw["ingress"] = {k: v for k, v in raw["ingress"].items() if k != "exposure"}
    assert parse_stack_config("dev", raw).ingress.exposure is IngressExposure.INTERNAL
    raw["ingress"]["exposure"] = "public"
    assert parse_stack_config("dev", raw).ingress.exposure is IngressExposure.PUBLIC


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_add_ons_default_public_controller_is_not_created(
    brand_plans: dict[str, Plan], stack: str
) -> None:
    cluster = one(brand_plans[stack], "azure-native:containerservice:ManagedCluster")
    routing = cluster["inputs"]["ingressProfile"]["webAppRouting"]
    assert routing["enabled"] is True
    # "None": no default NginxIngressController, so no public load balancer beside ours.
    assert routing["nginx"] == {"defaultIngressControllerType": "None"}, cluster["urn"]

"""deploy.yml and pull-request.yml follow the README's first-deploy sequence (issue 16).

Registry stack first, then the images in it (built and pushed for dev; copied Azure-side
with `az acr import` into prod's private registry), pinned by digest, then the environment.
And CI's identity works: the deployer's principal type is the CI service principal's, kubelogin
gets the workload-identity variables, and the runner's address reaches the API server only
for the run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.workflows import workflow_rules as rules

pytestmark = pytest.mark.fast

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = rules.load(REPO_ROOT / ".github" / "workflows" / "deploy.yml")
PULL_REQUEST = rules.load(REPO_ROOT / ".github" / "workflows" / "pull-request.yml")
KUBELOGIN_VARIABLES = ("AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST")


def step_index(job: dict[str, Any], predicate: Any, what: str) -> int:
    for index, step in enumerate(rules.steps(job)):
        if predicate(step):
            return index
    raise AssertionError(f"no step that {what}")


def pulumi_step(work_dir: str | None, command: str) -> Any:
    def matches(step: dict[str, Any]) -> bool:
        inputs = step.get("with") or {}
        return (
            rules.action_name(step) == "pulumi/actions"
            and inputs.get("command") == command
            and inputs.get("work-dir") == work_dir
        )

    return matches


def runs(text: str) -> Any:
    return lambda step: text in str(step.get("run", ""))


def jobs_needed(workflow: dict[str, Any], name: str) -> set[str]:
    """Every job `name` waits for, directly or not."""
    needs = workflow["jobs"][name].get("needs", [])
    direct = {needs} if isinstance(needs, str) else set(needs)
    return direct.union(*(jobs_needed(workflow, job) for job in direct)) if direct else set()


def test_dev_registry_exists_before_images_are_pushed_and_images_before_the_environment() -> None:
    jobs = DEPLOY["jobs"]
    registry_job = next(
        name
        for name, job in jobs.items()
        if any(pulumi_step("registry", "up")(step) for step in rules.steps(job))
        and "dev" in str(job.get("environment"))
    )
    assert registry_job in jobs_needed(DEPLOY, "images"), "images pushed before dev's registry"
    assert "images" in jobs_needed(DEPLOY, "up-dev")
    push = step_index(jobs["images"], runs("docker push"), "pushes the images")
    digests = step_index(jobs["images"], runs("RepoDigests"), "reads the pushed digests")
    assert push < digests
    assert "digests" in jobs["images"]["outputs"]


def test_prod_creates_its_registry_then_imports_dev_digests_then_deploys_them() -> None:
    job = DEPLOY["jobs"]["up-prod"]
    registry = step_index(job, pulumi_step("registry", "up"), "creates prod's registry")
    copy = step_index(job, runs("az acr import"), "imports the images")
    pin = step_index(job, runs("pin_images.py --stack prod"), "pins the images")
    up = step_index(job, pulumi_step(None, "up"), "updates the environment")
    assert registry < copy < pin < up
    (imported,) = [s["run"] for s in rules.steps(job) if "az acr import" in s.get("run", "")]
    assert "@$digest" in imported, "prod must import the digests dev tested, not a movable tag"


def test_each_environment_deploys_the_pushed_images_by_digest() -> None:
    for name, stack in (("up-dev", "dev"), ("up-prod", "prod")):
        job = DEPLOY["jobs"][name]
        (pin,) = [s["run"] for s in rules.steps(job) if "pin_images.py" in s.get("run", "")]
        assert f"--stack {stack}" in pin
        assert "--digests" in pin, f"{name}: pin by digest, not tag"


def test_ci_declares_itself_a_service_principal_and_uses_workload_identity() -> None:
    for name in ("up-dev", "up-prod"):
        job = DEPLOY["jobs"][name]
        text = "\n".join(str(step.get("run", "")) for step in rules.steps(job))
        assert "recplat:access.deployerPrincipalType ServicePrincipal" in text, name
        assert "recplat:cluster.kubeloginMode workloadidentity" in text, name


def test_kubelogin_gets_its_workload_identity_variables_before_pulumi_runs() -> None:
    for name in ("up-dev", "up-prod"):
        job = DEPLOY["jobs"][name]
        export = step_index(job, runs("AZURE_FEDERATED_TOKEN_FILE"), "exports kubelogin's vars")
        up = step_index(job, pulumi_step(None, "up"), "updates the environment")
        assert export < up, name
        (script,) = [
            s["run"] for s in rules.steps(job) if "AZURE_FEDERATED_TOKEN_FILE" in s.get("run", "")
        ]
        for variable in KUBELOGIN_VARIABLES:
            assert f"{variable}=" in script and "GITHUB_ENV" in script, f"{name}: {variable}"
        # The token is requested from GitHub for Entra's audience, and kept fresh for long runs.
        assert "ACTIONS_ID_TOKEN_REQUEST_URL" in script and "api://AzureADTokenExchange" in script


def test_the_runners_address_reaches_the_api_server_only_for_the_run() -> None:
    for name in ("up-dev", "up-prod"):
        job = DEPLOY["jobs"][name]
        add = step_index(job, runs("recplat:access.deployerIpRange"), "adds the runner range")
        up = step_index(job, pulumi_step(None, "up"), "updates the environment")
        remove = step_index(job, runs("--api-server-authorized-ip-ranges"), "removes it")
        assert add < up < remove, name
        cleanup = list(rules.steps(job))[remove]
        assert cleanup.get("if") == "always()", f"{name}: the cleanup must run after a failure"


def test_pull_requests_preview_the_registry_stacks_too() -> None:
    for stack in ("dev", "prod"):
        found = [
            job
            for job in PULL_REQUEST["jobs"].values()
            for step in rules.steps(job)
            if pulumi_step("registry", "preview")(step)
            and stack in [*rules.matrix_stacks(job), str(step["with"].get("stack-name"))]
        ]
        assert found, f"no preview of the registry stack {stack}"


def test_each_subscription_registers_its_resource_providers_before_the_first_stack() -> None:
    """An empty subscription has almost no namespace registered (MissingSubscriptionRegistration),
    and pulumi-azure-native does not register them; infra/resource_providers.py lists them."""
    registry_jobs = [
        name
        for name, job in DEPLOY["jobs"].items()
        if any(pulumi_step("registry", "up")(step) for step in rules.steps(job))
    ]
    assert sorted(registry_jobs) == ["registry-dev", "up-prod"]
    for name in registry_jobs:
        job = DEPLOY["jobs"][name]
        register = step_index(job, runs("az provider register"), f"{name}: registers providers")
        registry = step_index(job, pulumi_step("registry", "up"), f"{name}: creates the registry")
        assert register < registry, name
        (script,) = [
            s["run"] for s in rules.steps(job) if "az provider register" in s.get("run", "")
        ]
        assert "python -m infra.resource_providers" in script and "--wait" in script, name


def test_every_ci_update_selects_its_stack_and_subscription_first() -> None:
    """CI creates a missing stack only through scripts/ci/stack-settings.sh (never pulumi/actions'
    upsert, which would create an azblob stack without its Key Vault secrets provider), and
    the stack's subscription is the GitHub environment's."""
    for name, job in DEPLOY["jobs"].items():
        for step in rules.steps(job):
            assert not (step.get("with") or {}).get("upsert"), f"{name}: upsert"
        for work_dir, directory in (("registry", "registry"), (None, ".")):
            ups = [s for s in rules.steps(job) if pulumi_step(work_dir, "up")(s)]
            if not ups:
                continue
            (up_step,) = ups
            stack = up_step["with"]["stack-name"]
            settings = step_index(
                job, runs(f"scripts/ci/stack-settings.sh {directory} {stack}"), "selects the stack"
            )
            up = step_index(job, pulumi_step(work_dir, "up"), "updates it")
            assert settings < up, f"{name}: {directory}"


def test_each_environment_update_uses_its_stacks_policy_levels() -> None:
    """Without --policy-pack-config every rule of the pack is mandatory; dev's plan has
    advisory violations (purge protection, a PodDisruptionBudget) that would stop its update."""
    for name, stack in (("up-dev", "dev"), ("up-prod", "prod")):
        (step,) = [s for s in rules.steps(DEPLOY["jobs"][name]) if pulumi_step(None, "up")(s)]
        assert step["with"]["policyPacks"] == "policies", name
        assert step["with"]["policyPackConfigs"] == f"policies/config/{stack}.json", name
        assert (REPO_ROOT / step["with"]["policyPackConfigs"]).is_file()


def test_removing_the_runners_address_also_refreshes_the_cluster_in_the_state() -> None:
    """The address is removed with `az aks update`, outside Pulumi; until the state is
    refreshed the drift check would report the cluster every day."""
    for name in ("up-dev", "up-prod"):
        job = DEPLOY["jobs"][name]
        cleanup = list(rules.steps(job))[
            step_index(job, runs("--api-server-authorized-ip-ranges"), "removes the address")
        ]
        script = cleanup["run"]
        assert script.index("az aks update") < script.index("pulumi refresh"), name
        assert "--target" in script and "azure-native:containerservice:ManagedCluster" in script


def readme_section(title: str) -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def in_order(text: str, *commands: str) -> list[int]:
    positions: list[int] = []
    for command in commands:
        assert command in text, f"README: no `{command}`"
        positions.append(text.index(command, positions[-1] if positions else 0))
    return positions


def test_the_readme_first_deploy_is_the_sequence_the_deploy_workflow_runs() -> None:
    section = readme_section("Deploying to Azure")
    in_order(
        section,
        "uv sync --extra infra",
        "python -m infra.resource_providers",
        "az provider register",
        "pulumi up -C registry -s dev",
        "docker push",
        "pin_images.py --stack dev",
        "pulumi up -s dev --policy-pack policies --policy-pack-config policies/config/dev.json",
        "pulumi up -C registry -s prod",
        "az acr import",
        "pin_images.py --stack prod",
        "pulumi up -s prod --policy-pack policies --policy-pack-config policies/config/prod.json",
        "--api-server-authorized-ip-ranges",
    )
    deploy = (REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    for command in ("python -m infra.resource_providers", "az provider register", "az acr import"):
        assert command in deploy, command


def test_the_readme_ci_section_describes_what_the_workflows_run() -> None:
    section = readme_section("CI workflows")
    workflows = "\n".join(
        path.read_text() for path in (REPO_ROOT / ".github" / "workflows").glob("*.yml")
    )
    scripts = set(re.findall(r"scripts/ci/[\w.-]+", workflows))
    assert scripts, "the workflows run no scripts/ci script"
    for script in sorted(scripts):
        assert script in section, f"README 'CI workflows' never names {script}"
    assert "az aks command invoke" in section and "--preview-only" in section
    assert "policies/config/<stack>.json" in section
    # What the drift check used to claim, and cannot do with a read-only identity.
    assert "daily `pulumi preview --refresh --expect-no-changes`" not in section

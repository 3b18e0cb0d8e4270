"""deploy.yml and pull-request.yml follow the README's first-deploy sequence (issue 16).

Registry stack first, then the images in it (built and pushed for dev; copied Azure-side
with `az acr import` into prod's private registry), pinned by digest, then the environment.
And CI's identity works: the deployer's principal type is the CI service principal's, kubelogin
gets the workload-identity variables, and the runner's address reaches the API server only
for the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.workflows import workflow_rules as rules

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

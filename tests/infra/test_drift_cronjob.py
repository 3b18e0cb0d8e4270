"""Drift monitoring on AKS, in the plan: each brand's hourly drift CronJob runs with training's
identity and the brand's monitoring flags, and its service samples the brand's share; the
local platform passes the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from ranking_features.brand import Brand, brands_for_environment
from ranking_training.drift_job import build_parser

from tests.infra.brand_plans import EXAMPLE_BRANDS, PlannedResource, plan_brands


@pytest.fixture(scope="module")
def prod() -> dict[str, PlannedResource]:
    return plan_brands(brands_for_environment(EXAMPLE_BRANDS, "prod"), "prod")


def test_each_brand_judges_drift_hourly_as_its_training_identity_off_the_evaluators_half_hour(
    prod: dict[str, PlannedResource],
) -> None:
    for brand in ("newsroom", "streamly"):
        drift = prod[f"{brand}-drift-cronjob"]
        evaluator = prod[f"{brand}-experiments-cronjob"].inputs["spec"]
        spec = drift.inputs["spec"]
        assert (spec["schedule"], spec["concurrencyPolicy"]) == ("47 * * * *", "Forbid")
        assert evaluator["schedule"] == "17 * * * *"
        # The evaluator's deadline is 30 minutes: the two never need the quota's room at once.
        assert evaluator["jobTemplate"]["spec"]["activeDeadlineSeconds"] <= 1800
        assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] <= 1800
        job, evaluator_job = spec["jobTemplate"]["spec"]["template"], evaluator["jobTemplate"]
        pod, evaluator_pod = job["spec"], evaluator_job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == evaluator_pod["serviceAccountName"] == "training"
        assert pod["volumes"] == evaluator_pod["volumes"]
        assert job["metadata"]["labels"]["azure.workload.identity/use"] == "true"
        assert job["metadata"]["labels"]["app.kubernetes.io/name"] == "drift"
        (container,) = pod["containers"]
        (evaluator_container,) = evaluator_pod["containers"]
        assert container["env"] == evaluator_container["env"], drift.name
        assert container["resources"] == evaluator_container["resources"], drift.name
        command, subcommand, *args = container["args"]
        assert (command, subcommand) == ("ranking-experiments", "drift")
        parsed = build_parser().parse_args(args)
        merged = next(b for b in EXAMPLE_BRANDS if b.name == brand).for_environment("prod")
        assert parsed.psi_threshold == merged.monitoring.drift_psi_threshold
        assert parsed.window_hours == merged.monitoring.drift_window_hours
        assert parsed.min_rows == merged.monitoring.drift_min_rows


def test_the_service_samples_the_brands_share_on_aks_and_locally(tmp_path: Path) -> None:
    from recplat.local.workloads import ServiceOptions, WorkloadWiring, service_env

    newsroom = next(b for b in EXAMPLE_BRANDS if b.name == "newsroom")
    data = newsroom.model_dump(mode="json")
    data["monitoring"] = {"feature_sample": 0.03}
    # The example's dev override samples everything (its traffic is small): drop it, so both
    # environments take the brand's own share.
    for override in (data.get("overrides") or {}).values():
        if isinstance(override, dict):
            override.pop("monitoring", None)
    brand = Brand.model_validate(data)
    planned = plan_brands([brand.for_environment("prod")], "prod")
    container = planned["newsroom-ranking-deployment"].inputs["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["RECPLAT_FEATURE_SAMPLE"] == "0.03"
    local = service_env(
        brand.for_environment("dev"),
        "file:///lake",
        WorkloadWiring(environment="dev", tracking_uri="http://127.0.0.1:5000", storage_env={}),
        api_key_file=tmp_path / "key",
        event_log_dir=tmp_path / "log",
        options=ServiceOptions(),
    )
    assert local["RECPLAT_FEATURE_SAMPLE"] == "0.03"

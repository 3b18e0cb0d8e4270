"""A brand's Dask cluster on AKS, in the plan: no standing workers, an autoscaler to the run's
size, workers with the brand training's identity and nothing else, and the operator's one way
in to the scheduler (infra/brand_dask.py)."""

from __future__ import annotations

import importlib

import pytest
from ranking_features.brand import brands_for_environment
from ranking_training.__main__ import build_parser

from infra.brand_dask import DASK_DASHBOARD_PORT, DASK_SCHEDULER_PORT, SCHEDULER_PRELOAD
from tests.infra.brand_plans import EXAMPLE_BRANDS, PlannedResource, plan_brands

WORKERS = 4  # streamly's prod training.workers


@pytest.fixture(scope="module")
def prod() -> dict[str, PlannedResource]:
    return plan_brands(brands_for_environment(EXAMPLE_BRANDS, "prod"), "prod")


def _pods(prod: dict[str, PlannedResource]) -> dict[str, dict]:
    spec = prod["streamly-dask-cluster"].inputs["spec"]
    return {"worker": spec["worker"], "scheduler": spec["scheduler"]}


def test_workers_stand_at_zero_and_scale_to_the_run_with_the_autoscaler(
    prod: dict[str, PlannedResource],
) -> None:
    cluster = prod["streamly-dask-cluster"].inputs
    assert cluster["spec"]["worker"]["replicas"] == 0
    autoscaler = prod["streamly-dask-autoscaler"]
    assert autoscaler.inputs["kind"] == "DaskAutoscaler"
    assert autoscaler.inputs["metadata"]["namespace"] == cluster["metadata"]["namespace"]
    assert autoscaler.inputs["spec"] == {
        "cluster": cluster["metadata"]["name"],
        "minimum": 0,
        "maximum": WORKERS,
    }
    assert "streamly-dask-cluster" in autoscaler.depends_on
    assert "newsroom-dask-autoscaler" not in prod, "newsroom trains in its pod: no Dask at all"


def test_the_scheduler_asks_for_the_runs_workers_and_the_driver_waits_for_them(
    prod: dict[str, PlannedResource],
) -> None:
    (scheduler,) = _pods(prod)["scheduler"]["spec"]["containers"]
    args = scheduler["args"]
    assert args[:2] == ["dask", "scheduler"]
    assert args[args.index("--preload") + 1] == SCHEDULER_PRELOAD
    assert callable(importlib.import_module(SCHEDULER_PRELOAD).dask_setup)
    env = {e["name"]: e["value"] for e in scheduler["env"]}
    assert env["RECPLAT_TRAINING_WORKERS"] == str(WORKERS)
    metadata = _pods(prod)["scheduler"]["metadata"]
    assert "azure.workload.identity/use" not in metadata["labels"], "no Azure token for it"
    job = prod["streamly-training-cronjob"].inputs["spec"]["jobTemplate"]["spec"]["template"]
    command, *flags = job["spec"]["containers"][0]["args"]
    parsed = build_parser().parse_args(flags)
    assert command == "ranking-train"
    assert parsed.workers == WORKERS
    assert parsed.dask_scheduler.endswith(f".svc.cluster.local:{DASK_SCHEDULER_PORT}")


def test_workers_get_the_brands_training_identity_and_nothing_else(
    prod: dict[str, PlannedResource],
) -> None:
    worker = _pods(prod)["worker"]
    pod = worker["spec"]
    assert worker["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod["serviceAccountName"] == "training"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert [e["name"] for e in container["env"]] == ["TMPDIR"], "no MLflow, no brand settings"
    assert [v["name"] for v in pod["volumes"]] == ["tmp"], "no secrets volume"
    assert [m["name"] for m in container["volumeMounts"]] == ["tmp"]
    account = prod["streamly-training-sa"].inputs
    assert account["metadata"]["annotations"]["azure.workload.identity/client-id"]


def test_only_the_operator_reaches_the_scheduler_and_only_on_its_two_ports(
    prod: dict[str, PlannedResource],
) -> None:
    policy = prod["streamly-netpol-allow-dask-operator"].inputs["spec"]
    assert policy["podSelector"]["matchLabels"] == {
        "dask.org/cluster-name": "training-dask",
        "dask.org/component": "scheduler",
    }
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    assert peer == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dask-operator"}}
    }
    assert sorted(p["port"] for p in rule["ports"]) == [DASK_SCHEDULER_PORT, DASK_DASHBOARD_PORT]

"""The training image runs one real training job against the MLflow image's server and
registers the model, the way the brand's CronJob runs it (non-root, read-only root)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.images.podman_runtime import (
    CONTAINER_UID,
    BuiltImage,
    MlflowContainer,
    Podman,
    writable_by_container,
)

pytestmark = pytest.mark.containers

BRAND = "imgtrain"
LAST_DAY = date(2026, 1, 10)
DAYS = 6
JOB_TIMEOUT_S = 600


def synthesize_lake(lake: Path) -> None:
    """A small synthetic lake (impressions, feedback, catalog) from `recplat data synth`."""
    import subprocess

    recplat = Path(sys.executable).with_name("recplat")
    subprocess.run(
        [
            str(recplat), "data", "synth", "--brand", BRAND, "--users", "200", "--items", "60",
            "--days", str(DAYS), "--end-date", LAST_DAY.isoformat(), "--out", f"file://{lake}",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    for path in [lake, *lake.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_training_job_trains_and_registers_a_model(
    podman: Podman,
    images: dict[str, BuiltImage],
    mlflow_container: MlflowContainer,
    tmp_path: Path,
) -> None:
    lake = writable_by_container(tmp_path / "lake")
    synthesize_lake(lake)
    first_day = date.fromordinal(LAST_DAY.toordinal() - DAYS + 1)
    container = podman.start(
        images["training"].ref,
        "--network=host",
        "--read-only",
        "--tmpfs=/tmp:rw,mode=1777",
        f"--volume={lake}:/lake:ro",
        f"--env=RECPLAT_BRAND={BRAND}",
        "--env=RECPLAT_ENV=dev",
        "--env=RECPLAT_LAKE_URI=file:///lake",
        f"--env=MLFLOW_TRACKING_URI={mlflow_container.tracking_uri}",
        "--env=RECPLAT_GIT_SHA=imagetest",
        command=(
            "ranking-train", "--from", first_day.isoformat(), "--to", LAST_DAY.isoformat(),
            "--num-boost-round", "30", "--num-threads", "2",
        ),
    )  # fmt: skip
    try:
        exit_code = podman.wait_exit(container, JOB_TIMEOUT_S)
        logs = podman.logs(container)
        config = podman.inspect(container)
    finally:
        podman.remove(container)

    assert exit_code == 0, logs
    assert config["Config"]["User"] == f"{CONTAINER_UID}:{CONTAINER_UID}"
    assert config["HostConfig"]["ReadonlyRootfs"] is True
    client = MlflowClient(tracking_uri=mlflow_container.tracking_uri)
    version = client.get_model_version(f"{BRAND}-ranker", "1")
    assert version.tags["brand"] == BRAND
    assert version.tags["git_sha"] == "imagetest"
    assert version.run_id is not None
    run = client.get_run(version.run_id)
    # The synthetic lake has no explore rows and no champion serves, so the gate's first-model
    # fallback decides on the biased NDCG@10 against popularity (docs/architecture.md,
    # "Promotion gate"): champion (and the alias) exactly when the model's is higher.
    assert version.tags["gate.basis"] == "biased_ndcg", version.tags
    metrics = run.data.metrics
    beats = metrics["biased.model.ndcg_at_10"] > metrics["biased.popularity.ndcg_at_10"]
    expected = "champion" if beats else "rejected"
    assert version.tags["gate"] == run.data.tags["gate"] == expected, (version.tags, metrics)
    if beats:
        champion = client.get_model_version_by_alias(f"{BRAND}-ranker", "champion")
        assert champion.version == "1"
    assert f"{BRAND}: registered {BRAND}-ranker v1; gate {expected}: " in logs


# The brand loader lives in the contracts (ranking_features.brand): the image carries neither
# the CLI package nor infra, and still reads a brand file as the CronJob's --brand-file does.
BRAND_FILE_PROBE = """
import importlib.util, sys
from ranking_features.brand import load_brand
present = [name for name in ("recplat", "infra", "policies", "ranking_service")
           if importlib.util.find_spec(name) is not None]
print("present:", present, "schedule:", load_brand("/brands/shopsmart.yaml").training.schedule)
sys.exit(1 if present else 0)
"""


def test_reads_a_brand_file_without_the_cli_package(
    podman: Podman, images: dict[str, BuiltImage]
) -> None:
    brands = Path(__file__).resolve().parents[2] / "brands"
    container = podman.start(
        images["training"].ref,
        "--read-only",
        f"--volume={brands}:/brands:ro",
        command=("python3", "-c", BRAND_FILE_PROBE),
    )
    try:
        exit_code = podman.wait_exit(container, 120)
        logs = podman.logs(container)
    finally:
        podman.remove(container)
    assert exit_code == 0, logs
    assert "present: [] schedule: " in logs, logs

"""`ranking-train` on Dask, end to end: two worker processes read an abfs:// lake on Azurite,
train, evaluate and register what the in-process run does; the driver holds far less than the
window; corrupt data stops the distributed run with the in-process messages."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from azure.storage.blob import BlobServiceClient
from mlflow import MlflowClient
from ranking_training.__main__ import main
from ranking_training.cluster import TrainingCluster

from recplat.synthetic import SyntheticData, SynthParams, generate, write_lake
from tests.training.lake_corruptions import CORRUPTIONS, no_feedback
from tests.training.lake_window import END, FIRST

pytestmark = pytest.mark.slow

# The fit on two workers against one machine (docs/architecture.md, "Training on Dask").
NDCG_TOLERANCE = 0.02
# The driver's growth during a run against the window's in-memory (Arrow) size.
DRIVER_SHARE = 0.25


@pytest.fixture(scope="module")
def two_workers() -> Iterator[TrainingCluster]:
    cluster = TrainingCluster.local(2, memory_limit="2GiB")
    try:
        yield cluster
    finally:
        cluster.close()


def _args(brand: str, lake_uri: str, tracking_uri: str, *extra: str) -> list[str]:
    return [
        "--brand", brand,
        "--lake-uri", lake_uri,
        "--tracking-uri", tracking_uri,
        "--from", str(FIRST),
        "--to", str(END),
        "--num-threads", "1",
        *extra,
    ]  # fmt: skip


def _run_metrics(tracking_uri: str, brand: str) -> tuple[dict[str, float], dict[str, str]]:
    client = MlflowClient(tracking_uri)
    version = client.get_model_version_by_alias(f"{brand}-ranker", "champion")
    assert version.run_id is not None
    run = client.get_run(version.run_id)
    return run.data.metrics, run.data.tags


@pytest.mark.azurite
def test_two_worker_processes_train_from_azurite_what_the_in_process_run_registers(
    azurite: object,
    mlflow_server: object,
    synthetic: SyntheticData,
    brand_name: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    connection_string = azurite.connection_string  # type: ignore[attr-defined]
    # Set before the job starts its worker processes: they read the lake themselves.
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string)
    container = brand_name()
    BlobServiceClient.from_connection_string(connection_string).create_container(container)
    lake_uri = f"abfs://{container}/lake"
    write_lake(synthetic, lake_uri)
    tracking_uri = mlflow_server.tracking_uri  # type: ignore[attr-defined]

    in_process, on_dask = brand_name(), brand_name()
    assert main(_args(in_process, lake_uri, tracking_uri)) == 0, capsys.readouterr().err
    assert main(_args(on_dask, lake_uri, tracking_uri, "--workers", "2")) == 0, (
        capsys.readouterr().err
    )
    assert f"registered {on_dask}-ranker v1" in capsys.readouterr().out

    local, local_tags = _run_metrics(tracking_uri, in_process)
    spread, spread_tags = _run_metrics(tracking_uri, on_dask)
    assert (local_tags["trainer"], spread_tags["trainer"]) == ("in-process", "dask")
    rows = {k for k in local if k.startswith("rows.")}
    assert rows and {k: spread[k] for k in rows} == {k: local[k] for k in rows}
    # The same matrix: the popularity baseline scores the same features identically.
    popularity = {k for k in local if k.startswith("biased.popularity.")}
    assert popularity and {k: spread[k] for k in popularity} == {k: local[k] for k in popularity}
    model = "biased.model.ndcg_at_10"
    print(f"gate NDCG@10: in process {local[model]:.4f}, on 2 workers {spread[model]:.4f}")
    assert abs(spread[model] - local[model]) < NDCG_TOLERANCE, (spread[model], local[model])
    assert spread[model] > spread["biased.popularity.ndcg_at_10"]


@pytest.fixture(scope="module")
def big_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 3M impressions over the tests' ten days."""
    root = tmp_path_factory.mktemp("big-lake")
    data = generate(
        SynthParams(brand="big", users=60_000, items=2_000, days=10, seed=9, end_date=str(END))
    )
    write_lake(data, root.as_uri())
    return root


def _window_bytes(lake: Path) -> int:
    """The window's events in memory, as Arrow holds them once read."""
    return sum(pq.read_table(lake / "events" / kind).nbytes for kind in ("impressions", "feedback"))


DRIVER = """
import re, sys
from pathlib import Path
import lightgbm, matplotlib.pyplot, mlflow, pandas, distributed  # what a run imports anyway
import ranking_training.job
from ranking_training.__main__ import main

def rss(field):
    status = Path("/proc/self/status").read_text()
    return int(re.search(field + r":\\s+(\\d+) kB", status).group(1)) * 1024

before = rss("VmRSS")
code = main(sys.argv[1:])
print(f"driver growth {rss('VmHWM') - before}")
sys.exit(code)
"""


def _driver_growth(args: list[str]) -> int:
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        capture_output=True,
        text=True,
        timeout=1200,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("driver growth "))
    return int(line.rsplit(" ", 1)[1])


def test_the_driver_holds_far_less_than_the_window_on_dask_and_all_of_it_in_process(
    big_lake: Path, mlflow_server: object, brand_name: Callable[[], str]
) -> None:
    tracking_uri = mlflow_server.tracking_uri  # type: ignore[attr-defined]
    window = _window_bytes(big_lake)
    bound = DRIVER_SHARE * window
    spread = _driver_growth(_args(brand_name(), big_lake.as_uri(), tracking_uri, "--workers", "2"))
    # Can fail: in process, the same run holds the window.
    local = _driver_growth(_args(brand_name(), big_lake.as_uri(), tracking_uri))
    figures = (
        f"window {window / 2**20:.0f} MiB; driver growth on 2 workers {spread / 2**20:.0f} MiB, "
        f"in process {local / 2**20:.0f} MiB"
    )
    print(figures)
    assert spread < bound, figures
    assert local > bound, figures


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS), ids=lambda f: f.__name__)
def test_corrupt_input_stops_the_distributed_run_with_the_in_process_message(
    corrupt: Callable[[Path], Path],
    lake_copy: Path,
    two_workers: TrainingCluster,
    mlflow_server: object,
    brand_name: Callable[[], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    where = corrupt(lake_copy)
    brand = brand_name()
    tracking_uri = mlflow_server.tracking_uri  # type: ignore[attr-defined]
    assert two_workers.client is not None
    address = two_workers.client.scheduler_info()["address"]
    extra = ("--workers", "2", "--dask-scheduler", address)
    exit_code = main(_args(brand, lake_copy.as_uri(), tracking_uri, *extra))
    error = capsys.readouterr().err
    assert exit_code == 1
    assert error.startswith("ranking-train: ")
    assert CORRUPTIONS[corrupt] in error
    if corrupt is not no_feedback:
        assert str(where.relative_to(lake_copy)) in error
    assert "Traceback" not in error
    assert MlflowClient(tracking_uri).search_registered_models(f"name = '{brand}-ranker'") == []

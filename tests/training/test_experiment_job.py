"""`ranking-experiments` against a real MLflow server and a lake of planted experiment traffic.

The experiment starts as training starts it (`registry.start_experiment`: tags, alias, start
run); the lake holds one day of requests whose arms come from the experiment's salt and whose
clicks are planted with a known CTR per arm. Each test checks what a user of the registry would
notice: which alias points where, the version's tags, the run in `recplat/<brand>/experiments`,
and the job's own words (never a traceback).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from ranking_features.assignment import experiment_bucket
from ranking_features.events import FEEDBACK_SCHEMA, IMPRESSION_SCHEMA
from ranking_features.mlflow_names import experiments_experiment_name
from ranking_training.experiment_job import main
from ranking_training.registry import start_experiment

from recplat.testing.servers import MlflowServer, free_port

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
NOW = START + timedelta(hours=20)
TRAFFIC = 0.5


@pytest.fixture
def client(mlflow_server: MlflowServer) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_server.tracking_uri)


@pytest.fixture
def brand() -> str:
    return f"xp{uuid.uuid4().hex[:8]}"


def _register(client: MlflowClient, brand: str, versions: int) -> str:
    """`<brand>-ranker` with `versions` versions (no artifacts: the job never loads them);
    v1 is champion."""
    model = f"{brand}-ranker"
    client.create_registered_model(model)
    experiment = client.create_experiment(f"recplat/{brand}")
    for _ in range(versions):
        run = client.create_run(experiment)
        version = client.create_model_version(
            model, f"runs:/{run.info.run_id}/model", run.info.run_id
        )
        client.set_model_version_tag(model, version.version, "brand", brand)
    client.set_registered_model_alias(model, "champion", "1")
    return model


def _alias(client: MlflowClient, model: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException:
        return None


def _write_lake(
    root: Path,
    experiment_id: str,
    ctr: dict[str, float],
    versions: dict[str, str],
    users: int = 600,
    requests_per_user: int = 4,
    seed: int = 0,
) -> None:
    """One day of the experiment: each request shows two items; a click on the first with the
    arm's CTR, drawn per request."""
    rng = np.random.default_rng(seed)
    impressions: dict[str, list[object]] = {f.name: [] for f in IMPRESSION_SCHEMA}
    feedback: dict[str, list[object]] = {f.name: [] for f in FEEDBACK_SCHEMA}
    for u in range(users):
        user = f"user-{u}"
        arm = "challenger" if experiment_bucket(experiment_id, user) < TRAFFIC else "champion"
        for r in range(requests_per_user):
            request = uuid.uuid4().hex
            ts = START + timedelta(hours=1, minutes=u % 600, seconds=r)
            for position, item in enumerate(("i-1", "i-2"), start=1):
                row = {
                    "event_id": uuid.uuid4().hex, "request_id": request, "ts": ts,
                    "user_id": user, "item_id": item, "position": position, "score": 1.0,
                    "model_name": "m", "model_version": versions[arm], "variant": arm,
                    "brand": "b", "policy": "exploit", "propensity": 1.0, "pool": None,
                    "experiment_id": experiment_id,
                }  # fmt: skip
                for key, value in row.items():
                    impressions[key].append(value)
            if rng.random() < ctr[arm]:
                click = {
                    "event_id": uuid.uuid4().hex, "request_id": request,
                    "ts": ts + timedelta(seconds=30), "user_id": user, "item_id": "i-1",
                    "type": "click", "brand": "b",
                }  # fmt: skip
                for key, value in click.items():
                    feedback[key].append(value)
    day = START.date().isoformat()
    for kind, schema, columns in (
        ("impressions", IMPRESSION_SCHEMA, impressions),
        ("feedback", FEEDBACK_SCHEMA, feedback),
    ):
        folder = root / "events" / kind / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns, schema=schema), folder / "part-0.parquet")


@pytest.fixture
def experiment(
    client: MlflowClient, brand: str, tmp_path: Path
) -> Iterator[Callable[[float, float], tuple[str, str, Path]]]:
    """Start v2's experiment against champion v1 and plant its traffic with the given CTRs."""

    def plant(champion_ctr: float, challenger_ctr: float) -> tuple[str, str, Path]:
        model = _register(client, brand, versions=2)
        experiment_id = start_experiment(client, model, "2", START)
        lake = tmp_path / "lake"
        ctr = {"champion": champion_ctr, "challenger": challenger_ctr}
        _write_lake(lake, experiment_id, ctr, {"champion": "1", "challenger": "2"})
        return model, experiment_id, lake

    yield plant


def _args(command: str, brand: str, lake: Path, server: MlflowServer, now: datetime) -> list[str]:
    return [
        command, "--brand", brand, "--lake-uri", lake.as_uri(),
        "--tracking-uri", server.tracking_uri, "--challenger-traffic", str(TRAFFIC),
        "--max-experiment-days", "14", "--now", now.isoformat(),
    ]  # fmt: skip


def _evaluation_runs(client: MlflowClient, brand: str) -> list[object]:
    found = client.get_experiment_by_name(experiments_experiment_name(brand))
    assert found is not None, f"no MLflow experiment {experiments_experiment_name(brand)}"
    return list(
        client.search_runs(
            [found.experiment_id], filter_string="tags.`experiment.event` = 'evaluation'"
        )
    )


def test_the_start_tags_the_version_before_it_moves_the_alias_and_logs_a_start_run(
    client: MlflowClient, brand: str
) -> None:
    model = _register(client, brand, versions=2)
    experiment_id = start_experiment(client, model, "2", START)
    assert experiment_id == f"exp-{brand}-v2-20260302T000000Z"
    tags = client.get_model_version(model, "2").tags
    assert tags["experiment_id"] == experiment_id
    assert tags["experiment.started_at"] == "2026-03-02T00:00:00+00:00"
    assert tags["experiment.champion_version"] == "1"
    assert (_alias(client, model, "challenger"), _alias(client, model, "champion")) == ("2", "1")
    found = client.get_experiment_by_name(experiments_experiment_name(brand))
    assert found is not None
    (run,) = client.search_runs([found.experiment_id])
    assert run.info.run_name == experiment_id
    assert run.data.params["challenger_version"] == "2"
    assert run.data.params["champion_version"] == "1"


def test_a_clearly_better_challenger_is_promoted_and_recorded(
    client: MlflowClient,
    brand: str,
    mlflow_server: MlflowServer,
    experiment: Callable[[float, float], tuple[str, str, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, experiment_id, lake = experiment(0.10, 0.30)
    assert main(_args("evaluate", brand, lake, mlflow_server, NOW)) == 0
    out = capsys.readouterr().out
    assert "decision: promote" in out and "champion -> v2" in out, out
    assert _alias(client, model, "champion") == "2"
    assert _alias(client, model, "challenger") is None
    tags = client.get_model_version(model, "2").tags
    assert tags["experiment"] == "won"
    assert tags["experiment.decision"] == "promote"
    assert tags["experiment.evaluated_at"] == "2026-03-02T20:00:00+00:00"
    (run,) = _evaluation_runs(client, brand)
    assert run.data.tags["decision"] == "promote"  # type: ignore[attr-defined]
    assert run.data.params["experiment_id"] == experiment_id  # type: ignore[attr-defined]
    metrics = run.data.metrics  # type: ignore[attr-defined]
    assert metrics["ctr_difference_low"] > 0
    assert 0.25 < metrics["challenger.ctr"] < 0.35 and 0.06 < metrics["champion.ctr"] < 0.14


def test_a_clearly_worse_challenger_is_stopped_and_the_champion_stays(
    client: MlflowClient,
    brand: str,
    mlflow_server: MlflowServer,
    experiment: Callable[[float, float], tuple[str, str, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, _, lake = experiment(0.30, 0.10)
    assert main(_args("evaluate", brand, lake, mlflow_server, NOW)) == 0
    assert "decision: stop" in capsys.readouterr().out
    assert (_alias(client, model, "champion"), _alias(client, model, "challenger")) == ("1", None)
    tags = client.get_model_version(model, "2").tags
    assert (tags["experiment"], tags["experiment.decision"]) == ("lost", "stop")
    (run,) = _evaluation_runs(client, brand)
    assert run.data.metrics["ctr_difference_high"] < 0  # type: ignore[attr-defined]


def test_an_undecided_experiment_continues_and_expires_after_max_days(
    client: MlflowClient,
    brand: str,
    mlflow_server: MlflowServer,
    experiment: Callable[[float, float], tuple[str, str, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, _, lake = experiment(0.20, 0.20)
    assert main(_args("evaluate", brand, lake, mlflow_server, NOW)) == 0
    assert "decision: continue" in capsys.readouterr().out
    assert (_alias(client, model, "champion"), _alias(client, model, "challenger")) == ("1", "2")
    assert client.get_model_version(model, "2").tags["experiment.decision"] == "continue"
    late = START + timedelta(days=15)
    assert main(_args("evaluate", brand, lake, mlflow_server, late)) == 0
    assert "decision: stop: expired" in capsys.readouterr().out
    assert (_alias(client, model, "champion"), _alias(client, model, "challenger")) == ("1", None)
    assert client.get_model_version(model, "2").tags["experiment"] == "expired"
    assert len(_evaluation_runs(client, brand)) == 2


def test_status_shows_the_experiment_and_changes_nothing(
    client: MlflowClient,
    brand: str,
    mlflow_server: MlflowServer,
    experiment: Callable[[float, float], tuple[str, str, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, experiment_id, lake = experiment(0.10, 0.30)
    assert main(_args("status", brand, lake, mlflow_server, NOW)) == 0
    out = capsys.readouterr().out
    assert f"experiment {experiment_id}" in out
    assert "champion   v1:" in out and "challenger v2:" in out
    assert "users" in out and "confidence sequence" in out and "decision: promote" in out
    assert (_alias(client, model, "champion"), _alias(client, model, "challenger")) == ("1", "2")
    assert "experiment.decision" not in client.get_model_version(model, "2").tags
    assert not _evaluation_runs(client, brand)


def test_no_running_experiment_is_a_message_not_an_error(
    client: MlflowClient,
    brand: str,
    mlflow_server: MlflowServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = _register(client, brand, versions=1)
    (tmp_path / "lake").mkdir()
    assert main(_args("evaluate", brand, tmp_path / "lake", mlflow_server, NOW)) == 0
    assert capsys.readouterr().out.strip() == (
        f"{brand}: no experiment running: {model} has no challenger alias"
    )


def test_a_missing_lake_and_an_unreachable_mlflow_are_named_without_a_traceback(
    brand: str, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    script = Path(sys.executable).parent / "ranking-experiments"
    missing = tmp_path / "no-lake"
    lake_args = _args("evaluate", brand, missing, mlflow_server, NOW)
    no_lake = subprocess.run([str(script), *lake_args], capture_output=True, text=True)
    assert no_lake.returncode == 1
    assert no_lake.stderr.strip() == (
        f"ranking-experiments evaluate: the lake {missing.as_uri()} does not exist; check "
        "RECPLAT_LAKE_URI (or --lake-uri): the service ships its impressions and feedback there"
    )
    (tmp_path / "lake").mkdir()
    dead = f"http://127.0.0.1:{free_port()}"
    args = _args("status", brand, tmp_path / "lake", mlflow_server, NOW)
    args[args.index("--tracking-uri") + 1] = dead
    down = subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
        timeout=120,
    )
    assert down.returncode == 1
    assert down.stderr.startswith(
        f"ranking-experiments status: MLflow at {dead} is unreachable or refused the request ("
    ), down.stderr
    assert "Traceback" not in down.stderr

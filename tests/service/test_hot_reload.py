"""Hot reload: a promotion is picked up under load without a failed request; a broken version
is rejected while the old one keeps serving."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recplat.testing.rankers import (
    RegisteredRankers,
    register_broken_version,
    register_ranker,
    set_alias,
    train_ranker,
)
from recplat.testing.servers import MlflowServer, wait_until
from recplat.testing.service_process import RankingService

CANDIDATES = [f"i-{n}" for n in range(40)]


@pytest.fixture(scope="module")
def service(
    rankers: RegisteredRankers,
    mlflow_server: MlflowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RankingService]:
    workdir: Path = tmp_path_factory.mktemp("reload")
    running = RankingService(
        workdir,
        brand=rankers.model_name.removesuffix("-ranker"),
        lake_uri=f"file://{workdir / 'lake'}",
        tracking_uri=mlflow_server.tracking_uri,
        env={"RECPLAT_RELOAD_INTERVAL_S": "0.5"},
    ).start()
    try:
        yield running
    finally:
        running.stop()


class Load:
    """Clients sending /rank back to back, recording every status and served version."""

    def __init__(self, service: RankingService, clients: int = 3) -> None:
        self.service = service
        self.stop = threading.Event()
        self.results: list[list[tuple[int, str | None]]] = [[] for _ in range(clients)]
        self.errors: list[str] = []
        self.threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(clients)
        ]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def _run(self, n: int) -> None:
        with self.service.client() as client:
            while not self.stop.is_set():
                try:
                    response = client.post(
                        "/rank", json={"user_id": f"u-{n}", "candidates": CANDIDATES}
                    )
                except httpx.HTTPError as error:
                    self.errors.append(repr(error))
                    continue
                version = response.json()["model"]["version"] if response.is_success else None
                self.results[n].append((response.status_code, version))

    def seen(self, version: str) -> bool:
        return any(v == version for results in self.results for _, v in results[-5:])


def current_champion(service: RankingService) -> str:
    models = httpx.get(f"{service.url}/model").json()["models"]
    return next(m["version"] for m in models if m["alias"] == "champion")


def test_promotion_under_load_is_served_without_a_failed_request(
    service: RankingService, rankers: RegisteredRankers, mlflow_server: MlflowServer
) -> None:
    before = current_champion(service)
    new_version = register_ranker(
        mlflow_server.tracking_uri, rankers.model_name, train_ranker(seed=5), rankers.snapshot
    )
    with Load(service) as load:
        wait_until(lambda: sum(map(len, load.results)) > 30, 60, "load running")
        set_alias(mlflow_server.tracking_uri, rankers.model_name, "champion", new_version)
        wait_until(lambda: load.seen(new_version), 90, f"version {new_version} served")
        settled = sum(map(len, load.results))
        wait_until(lambda: sum(map(len, load.results)) > settled + 30, 60, "more requests")
    assert load.errors == []
    statuses = {status for results in load.results for status, _ in results}
    assert statuses == {200}
    for results in load.results:
        versions = [v for _, v in results]
        # Each client sees the old version, then the new one, never back.
        switch = versions.index(new_version)
        assert set(versions[:switch]) <= {before}
        assert set(versions[switch:]) == {new_version}
    assert current_champion(service) == new_version
    assert service.metric("recplat_model_version", alias="champion") == float(new_version)


def test_broken_version_is_rejected_and_the_old_one_keeps_serving(
    service: RankingService, rankers: RegisteredRankers, mlflow_server: MlflowServer
) -> None:
    serving = current_champion(service)
    failures = service.metric("recplat_model_reload_failures_total", alias="champion")
    broken = register_broken_version(
        mlflow_server.tracking_uri, rankers.model_name, rankers.snapshot
    )
    set_alias(mlflow_server.tracking_uri, rankers.model_name, "champion", broken)
    # Waits for the rejection itself: a transient download failure of the new version is
    # counted too (and retried), so the counter alone can move before the verdict.
    wait_until(
        lambda: f"rejected {rankers.model_name}/{broken} for champion" in service.log(),
        90,
        "broken version rejected",
    )
    assert service.metric("recplat_model_reload_failures_total", alias="champion") > failures
    with service.client() as client:
        answers = [
            client.post("/rank", json={"user_id": f"u-{n}", "candidates": CANDIDATES})
            for n in range(10)
        ]
    assert [a.status_code for a in answers] == [200] * 10
    assert {a.json()["model"]["version"] for a in answers} == {serving}
    assert current_champion(service) == serving
    assert f"rejected {rankers.model_name}/{broken} for champion" in service.log()
    assert "model.lgb is not a LightGBM model" in service.log()


def test_model_trained_on_other_features_is_rejected(
    service: RankingService, rankers: RegisteredRankers, mlflow_server: MlflowServer
) -> None:
    serving = current_champion(service)
    other = train_ranker(seed=9, feature_names=tuple(f"f{n}" for n in range(9)))
    version = register_ranker(
        mlflow_server.tracking_uri, rankers.model_name, other, rankers.snapshot
    )
    set_alias(mlflow_server.tracking_uri, rankers.model_name, "champion", version)
    wait_until(
        lambda: f"{rankers.model_name}/{version} for champion" in service.log(),
        90,
        "incompatible version rejected",
    )
    assert "retrain with this release's ranking_features" in service.log()
    assert current_champion(service) == serving


def test_a_version_whose_artifacts_cannot_be_downloaded_is_retried_not_rejected(
    service: RankingService, rankers: RegisteredRankers, mlflow_server: MlflowServer
) -> None:
    serving = current_champion(service)
    before = set(mlflow_server.artifacts_dir.rglob("model.lgb"))
    version = register_ranker(
        mlflow_server.tracking_uri, rankers.model_name, train_ranker(seed=5), rankers.snapshot
    )
    (model_file,) = set(mlflow_server.artifacts_dir.rglob("model.lgb")) - before
    # The artifact store lists the model file but cannot serve it for a while (an outage):
    # the file is swapped for a link to nowhere, so the download fails with a server error.
    hidden = model_file.with_name("model.lgb.away")
    model_file.rename(hidden)
    model_file.symlink_to(model_file.with_name("gone"))
    failures = service.metric("recplat_model_reload_failures_total", reason="download_failed")
    set_alias(mlflow_server.tracking_uri, rankers.model_name, "champion", version)
    wait_until(
        lambda: (
            service.metric("recplat_model_reload_failures_total", reason="download_failed")
            >= failures + 2
        ),
        90,
        "two failed downloads",
    )
    assert current_champion(service) == serving
    assert f"{rankers.model_name}/{version} for champion not loaded, retrying" in service.log()
    model_file.unlink()
    hidden.rename(model_file)
    wait_until(lambda: current_champion(service) == version, 90, "the version loaded once back")
    assert f"rejected {rankers.model_name}/{version}" not in service.log()

"""Every dashboard panel's PromQL, run by a real Prometheus scraping a real ranking service.

Debian's ``prometheus`` scrapes a real ``ranking-serve`` (real MLflow, real LightGBM
champion and challenger) every second while it answers /rank without a model (fallback),
then with both models, takes feedback of every type and refuses bad requests. Each panel
query of the platform dashboard and of the brand's dashboard, read from the JSON that is
provisioned, is sent to Prometheus's HTTP API with the dashboard's variables substituted.
A query fails when Prometheus rejects it, or returns no series while every metric it
reads is exported (``ranking_features.metric_names``): so a metric renamed on either side
fails here, not on a dashboard in production.
"""

from __future__ import annotations

import copy
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mlflow import MlflowClient
from ranking_features import metric_names

from infra.dashboards.brand_dashboard import BrandDashboardArgs, brand_dashboard
from infra.dashboards.panels import dashboard_json
from infra.dashboards.platform_dashboard import platform_dashboard
from infra.dashboards.queries import PanelQuery, constant_variables, panel_queries
from recplat.testing.rankers import register_ranker, tiny_snapshot, train_ranker
from recplat.testing.servers import MlflowServer, free_port, wait_until
from recplat.testing.service_process import RankingService

pytestmark = pytest.mark.slow

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
BRAND = "dash-shop"
RATE_INTERVAL = "10m"
"""Longer than the whole test, so every rate sees all of its traffic."""
SCRAPE_INTERVAL = "1s"


@dataclass
class PrometheusServer:
    """Debian's prometheus on a free loopback port, scraping one target."""

    workdir: Path
    target: str
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusServer:
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "ranking", "static_configs": [{"targets": [self.target]}]}
            ],
        }
        config_file = self.workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.port = free_port()
        log = (self.workdir / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._ready, 60, f"prometheus ready on {self.url}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.workdir / "prometheus.log").read_text(errors="replace")
            raise AssertionError(f"prometheus exited early; log:\n{log[-3000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str, *, instant: bool = True) -> dict[str, Any]:
        """The API's answer (``status``, ``data`` or ``error``), whatever its HTTP status."""
        now = time.time()
        if instant:
            answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr, "time": now})
        else:
            answer = httpx.get(
                f"{self.url}/api/v1/query_range",
                params={"query": expr, "start": now - 120, "end": now, "step": "5"},
            )
        return dict(answer.json())

    def value(self, expr: str) -> float | None:
        result = self.query(expr)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def query_failure(
    prometheus: PrometheusServer, query: PanelQuery, variables: Mapping[str, str]
) -> str | None:
    """Why ``query`` fails on this Prometheus, or None when it passes."""
    where = f"{query.dashboard} / {query.panel} / {query.ref_id}"
    expr = query.resolved(variables, RATE_INTERVAL)
    answer = prometheus.query(expr, instant=query.instant)
    if answer.get("status") != "success":
        return f"{where}: Prometheus rejects {expr!r}: {answer.get('error')}"
    if query.expects_data and not answer["data"]["result"]:
        return f"{where}: no series for {expr!r} (reads {sorted(query.metrics)})"
    return None


@dataclass(frozen=True)
class Scraped:
    prometheus: PrometheusServer
    dashboards: tuple[str, ...]
    """The dashboard JSON models, as provisioned."""


def _rank(client: httpx.Client, user: str, items: list[str]) -> httpx.Response:
    return client.post("/rank", json={"user_id": user, "candidates": items, "k": 5})


@pytest.fixture(scope="module")
def scraped(
    mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scraped]:
    """A service that served fallback, then champion and challenger traffic, all scraped."""
    workdir = tmp_path_factory.mktemp("dashboards")
    service = RankingService(
        workdir / "service",
        brand=BRAND,
        lake_uri=f"file://{workdir / 'lake'}",
        tracking_uri=mlflow_server.tracking_uri,
        env={"RECPLAT_CHALLENGER_TRAFFIC": "0.5", "RECPLAT_EXPLORATION": "0.2"},
    ).start()
    prometheus = PrometheusServer(workdir / "prometheus", service.url.removeprefix("http://"))
    (workdir / "prometheus").mkdir()
    try:
        prometheus.start()
        snapshot = tiny_snapshot()
        items = [f"i-{n}" for n in range(30)]
        sent = 0
        with service.client() as client:
            # No model registered yet: the fallback path.
            for n in range(5):
                assert _rank(client, f"u-{n}", items).json()["fallback"] is True
                sent += 1
            uri, model_name = mlflow_server.tracking_uri, f"{BRAND}-ranker"
            champion = register_ranker(
                uri, model_name, train_ranker(seed=1), snapshot, ("champion",)
            )
            # The drift job's verdict on the champion, which the service exports (drift panel).
            for feature, psi in (("item_ctr", "0.31"), ("user_log_clicks", "0.02")):
                MlflowClient(tracking_uri=uri).set_model_version_tag(
                    model_name, champion, f"drift.psi.{feature}", psi
                )
            MlflowClient(tracking_uri=uri).set_model_version_tag(
                model_name, champion, "drift.psi_threshold", "0.2"
            )
            # A challenger takes traffic only in an online experiment: tags before the alias,
            # as training sets them (docs/architecture.md, "Online experiments").
            challenger = register_ranker(uri, model_name, train_ranker(seed=2), snapshot)
            registry = MlflowClient(tracking_uri=uri)
            for key, value in {
                "experiment_id": f"exp-{BRAND}-v{challenger}-20260101T000000Z",
                "experiment.started_at": "2026-01-01T00:00:00+00:00",
            }.items():
                registry.set_model_version_tag(model_name, challenger, key, value)
            registry.set_registered_model_alias(model_name, "challenger", challenger)
            # The experiment evaluator's figures per arm's version (online CTR panel).
            for version, (ctr, low, high) in {
                champion: ("0.41", "0.38", "0.44"),
                challenger: ("0.45", "0.41", "0.49"),
            }.items():
                for key, value in {
                    "online.ctr": ctr,
                    "online.ctr_low": low,
                    "online.ctr_high": high,
                }.items():
                    registry.set_model_version_tag(model_name, version, key, value)
            wait_until(
                lambda: (
                    {model["alias"] for model in client.get("/model").json()["models"]}
                    == {"champion", "challenger"}
                ),
                120,
                "champion and challenger loaded",
            )
            variants: set[str] = set()
            for n in range(80):
                answer = _rank(client, f"u-{n % 30}", items)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                variants.add(body["model"]["variant"])
                sent += 1
                if n % 3 == 0:
                    for kind in ("click", "conversion", "dismiss"):
                        feedback = client.post(
                            "/feedback",
                            json={
                                "event_id": f"e-{n}-{kind}",
                                "type": kind,
                                "user_id": f"u-{n % 30}",
                                "item_id": body["items"][0]["item_id"],
                                "request_id": body["request_id"],
                            },
                        )
                        assert feedback.status_code == 202, feedback.text
            assert variants == {"champion", "challenger"}, variants
            assert client.post("/rank", json={"user_id": "u-1"}).status_code == 422
            sent += 1
        assert httpx.post(f"{service.url}/rank", json={}).status_code == 401
        sent += 1

        def caught_up() -> bool:
            # Every request counted, and every recplat series scraped at least twice (a rate
            # needs two samples): a series first scraped in the last scrape would have one.
            total = prometheus.value(f'sum({metric_names.RANK_REQUESTS.total}{{brand="{BRAND}"}})')
            scraped_twice = all(
                (
                    fewest := prometheus.value(
                        f'min(count_over_time({series}{{job="ranking"}}[10m]))'
                    )
                )
                is None
                or fewest >= 2
                for family in metric_names.ALL
                for series in family.series_names
            )
            drift = prometheus.value(
                f'min(count_over_time({metric_names.FEATURE_DRIFT.name}{{brand="{BRAND}"}}[10m]))'
            )
            online = prometheus.value(
                f'count(count_over_time({metric_names.ONLINE_CTR.name}{{brand="{BRAND}"}}[10m])'
                " >= 2)"
            )
            return (
                total == sent
                and scraped_twice
                and drift is not None
                and drift >= 2
                and online == 6  # two versions x three bounds, each scraped twice
            )

        wait_until(caught_up, 60, f"prometheus scraped all {sent} requests twice")
        brand = BrandDashboardArgs(BRAND, "Dashboard Shop", 50)
        yield Scraped(
            prometheus,
            (
                dashboard_json(platform_dashboard("test", [brand])),
                dashboard_json(brand_dashboard(brand)),
            ),
        )
    finally:
        prometheus.stop()
        service.stop()


def test_every_panel_query_is_valid_and_returns_data_when_its_metrics_are_exported(
    scraped: Scraped,
) -> None:
    checked, planned, failures = 0, [], []
    for dashboard in scraped.dashboards:
        variables = constant_variables(dashboard)
        for query in panel_queries(dashboard):
            checked += 1
            failure = query_failure(scraped.prometheus, query, variables)
            if failure:
                failures.append(failure)
            if not query.expects_data:
                planned.append(f"{query.panel} / {query.ref_id}")
    assert not failures, "\n".join(failures)
    # Every panel of both dashboards expects data: every metric they read is exported.
    assert checked >= 30, checked
    assert planned == []
    print(f"{checked} panel queries checked, {len(planned)} valid awaiting their metrics")


def _brand_dashboard_with(expr_edit: tuple[str, str], scraped: Scraped) -> dict[str, Any]:
    """A copy of the brand dashboard whose first panel query has one edit."""
    model = copy.deepcopy(json.loads(scraped.dashboards[1]))
    first = next(panel for panel in model["panels"] if panel.get("targets"))
    old, new = expr_edit
    assert old in first["targets"][0]["expr"]
    first["targets"][0]["expr"] = first["targets"][0]["expr"].replace(old, new)
    return dict(model)


def test_a_panel_reading_a_renamed_metric_fails(scraped: Scraped) -> None:
    renamed = _brand_dashboard_with(
        ("recplat_rank_requests_total", "recplat_rank_request_total"), scraped
    )
    variables = constant_variables(renamed)
    failures = [
        failure
        for query in panel_queries(renamed)
        if (failure := query_failure(scraped.prometheus, query, variables))
    ]
    assert failures == [
        "recplat / Dashboard Shop (dash-shop) / Requests by variant and outcome / A: no series "
        'for \'sum by (variant, outcome) (rate(recplat_rank_request_total{brand="dash-shop"}'
        "[10m]))' (reads ['recplat_rank_request_total'])"
    ]


def test_a_panel_with_invalid_promql_fails(scraped: Scraped) -> None:
    broken = _brand_dashboard_with(("(rate(", "(rate(("), scraped)
    variables = constant_variables(broken)
    failures = [
        failure
        for query in panel_queries(broken)
        if (failure := query_failure(scraped.prometheus, query, variables))
    ]
    assert len(failures) == 1 and "Prometheus rejects" in failures[0], failures
    assert "Requests by variant and outcome / A" in failures[0]

"""Feature drift end to end: shifted traffic fires the drift alert in a real Prometheus, the same
traffic unshifted does not.

Real MLflow, real `ranking-train` (LightGBM), real `ranking-serve` over uvicorn, the
simulator's world as the client, `ranking-experiments drift` as its console script, Debian's
`prometheus` with the brand's rule file as infra renders it (`infra.brand_alerts`; only the
group's evaluation interval is shortened from 1 minute to 1 second).

The champion is a model retrained on a day the previous model served (the steady state: the
training distribution describes the items the champion itself returns on that day's requests,
`ranking_training.drift`, as the sample does). Then:

- unshifted: the same world's users send requests; every feature's PSI must stay well under
  the threshold (at most half of it), and the alert must not fire;
- shifted: 60 % of the requests come from users the service has never seen (a campaign's
  newcomers, `TrafficOptions.new_user_share`); the user features move, and the alert fires.

Measured (docs/architecture.md, "Feature drift"): unshifted, largest PSI 0.067
(`recent_same_category`; 0.082 in another run), `item_ctr` 0.012; shifted, `user_log_clicks`
1.46, `recent_same_category` 1.44, `user_category_affinity` 0.76 fire, the item features stay
under 0.04. With the logged items as the training distribution (before issue 19's fix), unshifted
`item_ctr` was 0.21: the previous model's choice, not the traffic.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mlflow import MlflowClient
from ranking_features import FEATURE_NAMES
from ranking_features.brand import Brand

from infra.brand_alerts import brand_alert_rules, rule_file
from infra.brand_names import brand_names
from recplat.local.lake_events import missing_event_ids
from recplat.local.simulator import ClientSessions, TrafficOptions, simulate_brand
from recplat.synthetic import GroundTruth, LoggingPolicy, SynthParams, generate, write_lake
from recplat.testing.servers import MlflowServer, free_port, stop_group, wait_until
from recplat.testing.service_process import RankingService

pytestmark = pytest.mark.slow

BRAND = "drifty"
MODEL = f"{BRAND}-ranker"
THRESHOLD = 0.2
PHASE_REQUESTS = 500
SHIFT = 0.6
PROMETHEUS = "prometheus"


def _brand() -> Brand:
    return Brand.model_validate(
        {
            "name": BRAND,
            "display_name": "Drift test brand",
            "owner": "team-drift@recplat.dev",
            "cost_center": "CC-TEST-01",
            "environments": ["dev"],
            "monitoring": {"drift_psi_threshold": THRESHOLD, "feature_sample": 1.0},
        }
    )


@dataclass
class World:
    lake_uri: str
    tracking_uri: str
    service: RankingService
    truth: GroundTruth
    sessions: ClientSessions
    prometheus_url: str
    seed: int = 40

    def traffic(self, requests: int, new_user_share: float = 0.0) -> None:
        """One phase of simulated users; returns once their feedback is in the lake."""
        self.seed += 1
        result = simulate_brand(
            BRAND,
            self.service.url,
            self.service.api_key,
            self.truth,
            TrafficOptions(requests=requests, seed=self.seed, new_user_share=new_user_share),
            self.sessions,
        )
        assert result.failed_requests == 0, result.failures[:3]
        sent = result.feedback_event_ids
        wait_until(
            lambda: not missing_event_ids(self.lake_uri, sent), 120, f"{len(sent)} events in lake"
        )

    def drift(self, since: datetime) -> dict[str, Any]:
        """`ranking-experiments drift --json`, as the CronJob runs it."""
        script = Path(sys.executable).parent / "ranking-experiments"
        argv = [
            str(script), "drift", "--json", "--brand", BRAND, "--lake-uri", self.lake_uri,
            "--tracking-uri", self.tracking_uri, "--psi-threshold", str(THRESHOLD),
            "--min-rows", "1000", "--since", since.isoformat(),
        ]  # fmt: skip
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        assert completed.returncode == 0, completed.stderr
        result: dict[str, Any] = json.loads(completed.stdout)
        return result

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": expr})
        body = answer.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def scraped_verdict(self, version: str, psi: dict[str, float]) -> bool:
        """Prometheus holds this verdict, and has evaluated the rules on it a few times."""
        series = self.query(
            f'recplat_feature_drift_psi{{brand="{BRAND}",model_version="{version}"}}'
        )
        found = {s["metric"]["feature"]: float(s["value"][1]) for s in series}
        if set(found) != set(psi) or any(abs(found[f] - psi[f]) > 1e-5 for f in psi):
            return False
        samples = self.query(
            f'count_over_time(recplat_feature_drift_psi{{brand="{BRAND}",feature="item_ctr",'
            f'model_version="{version}"}}[1m])'
        )
        return bool(samples) and float(samples[0]["value"][1]) >= 5

    def firing(self) -> list[dict[str, Any]]:
        return self.query('ALERTS{alertname="RecplatFeatureDrift",alertstate="firing"}')

    def firing_features(self) -> set[str]:
        return {alert["metric"]["feature"] for alert in self.firing()}


def _train(lake_uri: str, tracking_uri: str, *extra: str) -> str:
    from ranking_training.__main__ import main

    args = ["--brand", BRAND, "--lake-uri", lake_uri, "--tracking-uri", tracking_uri]
    flags = ["--num-threads", "1", "--num-boost-round", "80", "--label-delay-hours", "0"]
    assert main([*args, *flags, "--min-exploration-requests", "50", *extra]) == 0
    versions = MlflowClient(tracking_uri=tracking_uri).search_model_versions(f"name = '{MODEL}'")
    return str(max(int(v.version) for v in versions))


def _start_prometheus(workdir: Path, target: str) -> tuple[subprocess.Popen[bytes], str]:
    """Debian's prometheus scraping the service every second, with the brand's rule file."""
    rules = yaml.safe_load(rule_file(brand_names(BRAND, "dev"), brand_alert_rules(_brand(), "dev")))
    rules["groups"][0]["interval"] = "1s"  # deployed: 1m; the rules themselves unchanged
    (workdir / "brand.rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(workdir / "brand.rules.yaml")],
        "scrape_configs": [{"job_name": "ranking", "static_configs": [{"targets": [target]}]}],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (workdir / "prometheus.log").open("ab")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, (workdir / "prometheus.log").read_text()[-2000:]
        try:
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 60, f"prometheus ready on {url}")
    return process, url


@pytest.fixture(scope="module")
def world(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("drift")
    lake_uri = (root / "lake").as_uri()
    tracking = mlflow_server.tracking_uri
    # The history ends the day before yesterday: the champion's gate window, the 24 hours
    # before its training, then holds only the day the first model served.
    history_end = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    params = SynthParams(
        brand=BRAND, users=600, items=200, days=4, seed=23, end_date=history_end,
        requests_per_user_per_day=4.0, logging_policy=LoggingPolicy.POPULARITY.value,
        exploration=0.2,
    )  # fmt: skip
    write_lake(generate(params), lake_uri)
    first = _train(lake_uri, tracking, "--to", history_end)
    registry = MlflowClient(tracking_uri=tracking)
    registry.set_registered_model_alias(MODEL, "champion", first)
    service = RankingService(
        root / "service",
        brand=BRAND,
        lake_uri=lake_uri,
        tracking_uri=tracking,
        env={"RECPLAT_FEATURE_SAMPLE": "1.0", "RECPLAT_CHALLENGER_TRAFFIC": "0"},
    ).start()
    (root / "prometheus").mkdir()
    prometheus, prometheus_url = _start_prometheus(
        root / "prometheus", service.url.removeprefix("http://")
    )
    try:
        loop = World(
            lake_uri=lake_uri,
            tracking_uri=tracking,
            service=service,
            truth=GroundTruth.load(lake_uri),
            sessions=ClientSessions.from_lake(lake_uri),
            prometheus_url=prometheus_url,
        )
        # A day the first model served, which the champion is retrained on (its gate window).
        loop.traffic(2 * PHASE_REQUESTS)
        champion = _train(lake_uri, tracking, "--to", datetime.now(UTC).date().isoformat())
        assert champion != first
        registry.set_registered_model_alias(MODEL, "champion", champion)

        def serving() -> str | None:
            info = httpx.get(f"{service.url}/model", headers=service.auth).json()
            return next((m["version"] for m in info["models"] if m["alias"] == "champion"), None)

        wait_until(lambda: serving() == champion, 60, f"the service to serve v{champion}")
        yield loop
    finally:
        stop_group(prometheus)
        service.stop()


def _report(label: str, verdict: dict[str, Any]) -> None:
    psi = verdict["psi"]
    print(
        f"\n[{label}] v{verdict['model_version']}, {verdict['sample_rows']} sampled rows vs "
        f"{verdict['training_rows']} training rows (noise alone ~{verdict['noise_psi']:.4f}): "
        + ", ".join(f"{name} {psi[name]:.4f}" for name in FEATURE_NAMES)
    )


def test_unshifted_traffic_stays_well_under_the_threshold_and_does_not_fire(world: World) -> None:
    since = datetime.now(UTC)
    world.traffic(PHASE_REQUESTS)
    verdict = world.drift(since)
    _report("unshifted", verdict)
    assert verdict["judged"], verdict
    assert max(verdict["psi"].values()) < THRESHOLD / 2, verdict["psi"]
    assert verdict["drifted"] == []
    wait_until(
        lambda: world.scraped_verdict(verdict["model_version"], verdict["psi"]),
        90,
        "prometheus to scrape the unshifted verdict and evaluate the rules on it",
    )
    assert world.firing() == []


def test_shifted_traffic_fires_the_drift_alert(world: World) -> None:
    since = datetime.now(UTC)
    world.traffic(PHASE_REQUESTS, new_user_share=SHIFT)
    verdict = world.drift(since)
    _report(f"{SHIFT:.0%} new users", verdict)
    assert verdict["judged"], verdict
    assert verdict["drifted"], verdict["psi"]
    drifted = set(verdict["drifted"])
    started = time.monotonic()
    # The job writes the verdict's tags one at a time and the service polls them, so the
    # features' alerts can start firing on different rule evaluations: wait for the whole set
    # (a feature that should not fire keeps the sets apart, and the wait fails).
    wait_until(
        lambda: world.firing_features() == drifted,
        120,
        f"RecplatFeatureDrift to fire for exactly {sorted(drifted)}",
    )
    print(f"firing after {time.monotonic() - started:.1f} s for {sorted(drifted)}")

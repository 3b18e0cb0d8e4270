"""The online experiment's loop, end to end: real service over uvicorn, real MLflow, real
LightGBM, the evaluator as its console script, users clicking per the simulator's world.

Two versions are trained on a synthetic world lake (`recplat.synthetic`, the latent-factor
cascade of `recplat.simulation.truth`): a proper model and a crippled one (one split of one
tree). They are planted against each other:

- the crippled version serves as champion and the proper one starts an experiment as
  challenger (`registry.start_experiment`, as the gate would): the evaluator must promote it,
  the service must switch without a restart, and the simulated users' CTR must rise;
- the proper version serves as champion and the crippled one starts an experiment: the
  evaluator must stop it, and the champion must stay.

Traffic is sent in rounds and the evaluator judges after each (the mSPRT is valid however often
it looks) until it decides; each test fails if the decision is the other one, or none.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from ranking_training.registry import start_experiment

from recplat.local.lake_events import missing_event_ids
from recplat.local.processes import wait_until
from recplat.local.simulator import ClientSessions, TrafficOptions, TrafficResult, simulate_brand
from recplat.synthetic import GroundTruth, SynthParams, generate, write_lake
from recplat.testing.servers import MlflowServer
from recplat.testing.service_process import RankingService

pytestmark = pytest.mark.slow

TRAFFIC = 0.5
REQUESTS_PER_ROUND = 1500
MAX_ROUNDS = 4
CRIPPLED = ("--num-leaves", "2", "--num-boost-round", "1")


@dataclass
class Loop:
    brand: str
    lake_uri: str
    tracking_uri: str
    service: RankingService
    truth: GroundTruth
    sessions: ClientSessions
    proper: str
    crippled: str
    seed: int = 100

    @property
    def model(self) -> str:
        return f"{self.brand}-ranker"

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri)

    def serving(self) -> dict[str, Any]:
        """What the service serves now: the version per alias, and the running experiment."""
        info = httpx.get(f"{self.service.url}/model", headers=self.service.auth).json()
        return {
            "experiment": info["experiment_id"],
            **{m["alias"]: m["version"] for m in info["models"]},
        }

    def wait_serving(self, expected: dict[str, Any]) -> None:
        wait_until(
            lambda: self.serving() == expected,
            timeout_s=60,
            what=f"the service to serve {expected} (it serves {self.serving()})",
            interval_s=0.5,
        )

    def traffic(self, requests: int) -> TrafficResult:
        """One round of simulated users; returns once their feedback is in the lake."""
        self.seed += 1
        result = simulate_brand(
            self.brand,
            self.service.url,
            self.service.api_key,
            self.truth,
            TrafficOptions(requests=requests, seed=self.seed),
            self.sessions,
        )
        assert result.failed_requests == 0, result.failures[:3]
        sent = result.feedback_event_ids
        wait_until(
            lambda: not missing_event_ids(self.lake_uri, sent),
            timeout_s=90,
            what=f"{len(sent)} feedback events to land in {self.lake_uri}",
            interval_s=1.0,
        )
        return result

    def evaluate(self) -> dict[str, Any]:
        """`ranking-experiments evaluate --json`, as the CronJob runs it."""
        script = Path(sys.executable).parent / "ranking-experiments"
        completed = subprocess.run(
            [
                str(script),
                "evaluate",
                "--json",
                "--brand",
                self.brand,
                "--lake-uri",
                self.lake_uri,
                "--tracking-uri",
                self.tracking_uri,
                "--challenger-traffic",
                str(TRAFFIC),
                "--max-experiment-days",
                "14",
                "--now",
                datetime.now(UTC).isoformat(),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        result: dict[str, Any] = json.loads(completed.stdout)
        return result

    def run_experiment(self) -> tuple[dict[str, Any], list[TrafficResult]]:
        """Traffic rounds, each judged, until the evaluator decides (or MAX_ROUNDS)."""
        rounds: list[TrafficResult] = []
        verdict: dict[str, Any] = {}
        for _ in range(MAX_ROUNDS):
            rounds.append(self.traffic(REQUESTS_PER_ROUND))
            verdict = self.evaluate()
            arms = verdict["arms"]
            print(
                f"\n[{self.brand}] {verdict['experiment_id']}: "
                + ", ".join(
                    f"{arm} v{a['model_version']} {a['users']} users {a['requests']} requests "
                    f"CTR {a['ctr']:.4f}"
                    for arm, a in arms.items()
                )
                + f"; difference {verdict['ctr_difference']:+.4f} "
                f"[{verdict['ctr_difference_low']:+.4f}, {verdict['ctr_difference_high']:+.4f}]"
                f" -> {verdict['decision']}"
            )
            if verdict["decision"] != "continue":
                break
        return verdict, rounds

    def alias(self, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(self.model, alias).version)
        except MlflowException:
            return None


def _train(brand: str, lake_uri: str, tracking_uri: str, *extra: str) -> str:
    from ranking_training.__main__ import main

    args = ["--brand", brand, "--lake-uri", lake_uri, "--tracking-uri", tracking_uri]
    assert main([*args, "--num-threads", "1", "--num-boost-round", "100", *extra]) == 0
    client = MlflowClient(tracking_uri=tracking_uri)
    versions = client.search_model_versions(f"name = '{brand}-ranker'")
    return str(max(int(v.version) for v in versions))


def _ctr(results: list[TrafficResult], key: str) -> tuple[float, int]:
    """Item CTR of the simulated users under `key` ("champion v3"), and its impressions."""
    tallies = [r.by_variant[key] for r in results if key in r.by_variant]
    impressions = sum(t.impressions for t in tallies)
    clicks = sum(t.clicks for t in tallies)
    return clicks / max(impressions, 1), impressions


@pytest.fixture(scope="module")
def loop(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    brand = "loop"
    root = tmp_path_factory.mktemp("loop")
    lake_uri = (root / "lake").as_uri()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    params = SynthParams(brand=brand, users=600, items=200, days=8, seed=5, end_date=yesterday)
    write_lake(generate(params), lake_uri)
    tracking = mlflow_server.tracking_uri
    proper = _train(brand, lake_uri, tracking)
    crippled = _train(brand, lake_uri, tracking, *CRIPPLED)
    assert proper != crippled
    client = MlflowClient(tracking_uri=tracking)
    # Planted: the aliases are the tests' to set, whatever the gate made of the two.
    with contextlib.suppress(MlflowException):
        client.delete_registered_model_alias(f"{brand}-ranker", "challenger")
    client.set_registered_model_alias(f"{brand}-ranker", "champion", crippled)
    service = RankingService(
        root / "service",
        brand=brand,
        lake_uri=lake_uri,
        tracking_uri=tracking,
        env={"RECPLAT_CHALLENGER_TRAFFIC": str(TRAFFIC), "RECPLAT_EXPLORATION": "0"},
    ).start()
    try:
        yield Loop(
            brand=brand,
            lake_uri=lake_uri,
            tracking_uri=tracking,
            service=service,
            truth=GroundTruth.load(lake_uri),
            sessions=ClientSessions.from_lake(lake_uri),
            proper=proper,
            crippled=crippled,
        )
    finally:
        service.stop()


def test_a_better_challenger_is_promoted_online_and_ctr_rises(loop: Loop) -> None:
    loop.client.set_registered_model_alias(loop.model, "champion", loop.crippled)
    experiment_id = start_experiment(loop.client, loop.model, loop.proper, datetime.now(UTC))
    loop.wait_serving(
        {"experiment": experiment_id, "champion": loop.crippled, "challenger": loop.proper}
    )

    verdict, rounds = loop.run_experiment()

    assert verdict["decision"] == "promote", verdict["reason"]
    assert (loop.alias("champion"), loop.alias("challenger")) == (loop.proper, None)
    assert loop.client.get_model_version(loop.model, loop.proper).tags["experiment"] == "won"
    # The running service switches without a restart; no experiment runs any more.
    loop.wait_serving({"experiment": None, "champion": loop.proper})
    before, before_n = _ctr(rounds, f"champion v{loop.crippled}")
    after_round = loop.traffic(REQUESTS_PER_ROUND)
    after, after_n = _ctr([after_round], f"champion v{loop.proper}")
    print(
        f"\n[{loop.brand}] online CTR of the champion: v{loop.crippled} {before:.4f} "
        f"({before_n} impressions, during the experiment) -> v{loop.proper} {after:.4f} "
        f"({after_n} impressions, after the promotion)"
    )
    assert set(after_round.by_variant) == {f"champion v{loop.proper}"}
    assert after > before, (before, after)


def test_a_worse_challenger_is_stopped_and_the_champion_stays(loop: Loop) -> None:
    loop.client.set_registered_model_alias(loop.model, "champion", loop.proper)
    experiment_id = start_experiment(loop.client, loop.model, loop.crippled, datetime.now(UTC))
    loop.wait_serving(
        {"experiment": experiment_id, "champion": loop.proper, "challenger": loop.crippled}
    )

    verdict, _ = loop.run_experiment()

    assert verdict["decision"] == "stop", verdict["reason"]
    assert verdict["outcome"] == "lost"
    assert (loop.alias("champion"), loop.alias("challenger")) == (loop.proper, None)
    assert loop.client.get_model_version(loop.model, loop.crippled).tags["experiment"] == "lost"
    loop.wait_serving({"experiment": None, "champion": loop.proper})

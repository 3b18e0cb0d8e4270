"""The local platform's Prometheus and every dashboard panel against it, after real traffic.

`recplat local up --detach` starts Debian's prometheus with it; the simulator sends each
brand's service real /rank and /feedback traffic (and a few refused requests). Then:

- Prometheus scrapes every service and itself, and evaluates exactly the alert rules infra
  deploys (the platform rule file and each brand's rules for `dev`);
- every panel target of every dashboard infra provisions for these brands (the platform's and
  one per brand), sent as Grafana sends it over the platform's run, is valid PromQL and
  returns series wherever the traffic the platform saw says it must (a renamed or misspelled
  metric fails here, and a copy of a panel with a misspelled metric is shown to fail);
- the demo report draws one image per dashboard from those answers;
- a feedback segment the lake cannot take fires `RecplatEventSegmentsQuarantined`, and
  `recplat local status` shows it firing;
- `recplat local down` stops Prometheus with everything else.

`tests/infra/test_dashboards_prometheus.py` drives one service through every code path
(fallback, champion and challenger, refusals) for the same queries; this module checks the
platform as `up` wires it: its Prometheus, its targets, its rules and its brands.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from matplotlib import image
from ranking_features.brand import Brand, Environment, brands_for_environment, load_brands

from infra.brand_alerts import brand_alert_rules
from recplat.local.demo_report import write_dashboard_images
from recplat.local.processes import port_is_listening, wait_until
from recplat.local.prometheus import PLATFORM_RULES, SCRAPE_INTERVAL_S
from recplat.local.prometheus_api import PrometheusApi
from recplat.local.prometheus_panels import (
    DashboardResult,
    Window,
    failures,
    local_dashboards,
    query_dashboard,
)
from recplat.local.simulator import TrafficOptions, TrafficResult, simulate_brand
from recplat.local.state import PlatformState, load_state
from recplat.local.status import service_model
from recplat.local.workloads import read_api_key
from recplat.synthetic import GroundTruth
from tests.local.platform_cli import recplat, write_brands

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BRANDS = ["alpha", "bravo"]
REQUESTS = 150
SCRAPED_TIMEOUT_S = 90.0
FIRING_TIMEOUT_S = 300.0
"""The quarantine alert's `for` is 1 min and its group is evaluated every minute, as
deployed: pending at the first evaluation after the scrape, firing at the second."""

# Panels fed by batch jobs this test does not run: the drift job's PSI and the experiment
# evaluator's online CTR (`ranking_features.metric_names` says what should export them).
MISSPELLINGS = (
    ("recplat_rank_latency_seconds_bucket", "recplat_rank_latency_second_bucket"),
    ("recplat_fallback_total", "recplat_fallbacks_total"),
)
BATCH_JOB_PANELS = frozenset(
    {
        "Online CTR per model version / A",
        "Online CTR per model version / B",
        "Online CTR per model version / C",
        "Feature drift (PSI per feature) / A",
        "Feature drift (PSI per feature) / B",
    }
)


@dataclass(frozen=True)
class Observed:
    """The running platform after its traffic."""

    state_dir: Path
    state: PlatformState
    api: PrometheusApi
    traffic: dict[str, TrafficResult]
    """Each brand's simulated traffic."""
    serving: dict[str, dict[str, str]]
    """Each brand's served versions by alias (empty: the fallback serves)."""
    window: Window


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    root = tmp_path_factory.mktemp("prometheus-platform")
    brands_dir = write_brands(root / "brands", BRANDS)
    state_dir = root / "state"
    result = recplat(
        "local", "up", "--detach", "--brands-dir", str(brands_dir), "--state-dir", str(state_dir)
    )
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        state = load_state(state_dir)
        assert state is not None and state.prometheus_url is not None
        api = PrometheusApi(state.prometheus_url)
        traffic = {name: _traffic(state, name) for name in BRANDS}
        sent = sum(result.requests for result in traffic.values()) + 2 * len(BRANDS)
        wait_until(
            lambda: _scraped_requests(api) == sent,
            timeout_s=SCRAPED_TIMEOUT_S,
            what=f"Prometheus to have scraped all {sent} /rank requests",
        )
        # Three more scrapes of every target: every point of a range query from then on has
        # two samples after the last request in its rate window (the step is a scrape
        # interval, and the rate window four).
        traffic_end = time.time()
        wait_until(
            lambda: _every_target_scraped_after(api, traffic_end + 2 * SCRAPE_INTERVAL_S),
            timeout_s=SCRAPED_TIMEOUT_S,
            what="three more scrapes of every target",
        )
        started = next(p.create_time for p in state.processes if p.name == "prometheus")
        yield Observed(
            state_dir,
            state,
            api,
            traffic,
            {name: service_model(str(state.brands[name].service_url)) for name in BRANDS},
            Window(started, time.time()),
        )
    finally:
        recplat("local", "down", "--state-dir", str(state_dir), timeout=120)


def _traffic(state: PlatformState, name: str) -> TrafficResult:
    record = state.brands[name]
    assert record.service_url is not None and record.api_key_file is not None
    key = read_api_key(Path(record.api_key_file))
    result = simulate_brand(
        name,
        record.service_url,
        key,
        GroundTruth.load(record.lake_uri),
        TrafficOptions(requests=REQUESTS, candidates=20, shown=10),
    )
    assert result.failed_requests == 0, result.failures
    # Refused requests, which the refused-ratio panel and its alert count.
    assert httpx.post(f"{record.service_url}/rank", json={}).status_code == 401
    invalid = httpx.post(
        f"{record.service_url}/rank",
        json={"user_id": "u1"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert invalid.status_code == 422
    return result


def _scraped_requests(api: PrometheusApi) -> float | None:
    answer = api.query("sum(recplat_rank_requests_total)", time.time())
    return answer.series[0].points[0][1] if answer.series else None


def _every_target_scraped_after(api: PrometheusApi, moment: float) -> bool:
    answer = api.query("timestamp(up)", time.time())
    return bool(answer.series) and all(s.points[0][1] > moment for s in answer.series)


def _no_data_expected(observed: Observed, dashboard: DashboardResult) -> set[str]:
    """Targets whose empty answer is right for what this platform served."""
    brands = [name for name in BRANDS if dashboard.uid == f"recplat-brand-{name}"] or BRANDS
    expected = set(BATCH_JOB_PANELS)
    fell_back = any("fallback" in observed.traffic[name].by_variant for name in brands)
    served_a_model = any(observed.serving[name] for name in brands)
    if not fell_back:
        expected.add("Fallbacks by reason / A")
    if not served_a_model:
        expected |= {
            "Model version per alias / A",
            "Model reloads / A",
            "Running experiments / C",
        }
    return expected


def _checked(observed: Observed) -> list[DashboardResult]:
    return [
        query_dashboard(observed.api, model, observed.window)
        for model in local_dashboards(_dev_brands(observed.state)).values()
    ]


def _dev_brands(state: PlatformState) -> dict[str, Brand]:
    brands = brands_for_environment(load_brands(Path(state.brands_dir)), Environment.DEV)
    return {brand.name: brand for brand in brands}


def test_prometheus_scrapes_every_service_and_itself(observed: Observed) -> None:
    targets = httpx.get(f"{observed.api.url}/api/v1/targets", timeout=10).json()["data"]
    health = {
        (t["labels"]["job"], t["labels"].get("program", "")): t["health"]
        for t in targets["activeTargets"]
    }
    assert health == {
        ("prometheus", ""): "up",
        **{("ranking", f"service-{name}"): "up" for name in BRANDS},
    }
    scraped = {t["scrapeUrl"] for t in targets["activeTargets"]}
    for name in BRANDS:
        assert f"{observed.state.brands[name].service_url}/metrics" in scraped, scraped


def test_prometheus_evaluates_the_alert_rules_infra_deploys(observed: Observed) -> None:
    loaded = {
        Path(file).name: sorted(names) for file, names in observed.api.alerting_rules().items()
    }
    platform_rules = yaml.safe_load(PLATFORM_RULES.read_text())["groups"]
    brands = _dev_brands(observed.state)
    expected = {
        PLATFORM_RULES.name: sorted(
            rule["alert"] for group in platform_rules for rule in group["rules"] if "alert" in rule
        ),
        **{
            f"brand-{name}.rules.yaml": sorted(
                rule.alert for rule in brand_alert_rules(brands[name], Environment.DEV.value)
            )
            for name in BRANDS
        },
    }
    assert loaded == expected


def test_every_panel_query_is_valid_and_has_data_where_the_traffic_says_it_must(
    observed: Observed,
) -> None:
    known = observed.api.metric_names()
    checked, found = 0, []
    for dashboard in _checked(observed):
        checked += sum(len(panel.targets) for panel in dashboard.panels)
        found += failures(dashboard, known, _no_data_expected(observed, dashboard))
    assert not found, "\n".join(found)
    # The platform dashboard's 7 targets and its p99/SLO target per brand; 24 per brand.
    assert checked == 7 + len(BRANDS) + 24 * len(BRANDS), checked


def test_a_panel_with_a_misspelled_metric_fails(observed: Observed) -> None:
    brands = _dev_brands(observed.state)
    model = json.loads(local_dashboards(brands)["recplat-brand-alpha"])
    misspelled = copy.deepcopy(model)
    for panel in misspelled["panels"]:
        for target in panel.get("targets") or []:
            # Plain, and inside a ratio's numerator, where `or 0 * denominator` would still
            # return a series.
            for right, wrong in MISSPELLINGS:
                target["expr"] = target["expr"].replace(right, wrong)
    dashboard = query_dashboard(observed.api, json.dumps(misspelled), observed.window)
    assert dashboard.panels, "the copy has no panels"
    found = failures(dashboard, observed.api.metric_names(), _no_data_expected(observed, dashboard))
    where = "recplat / alpha test brand (alpha) / "
    assert [line.split(": reads ")[0] for line in found] == [
        f"{where}Latency percentiles (SLO 50 ms) / A",
        f"{where}Latency percentiles (SLO 50 ms) / B",
        f"{where}Latency percentiles (SLO 50 ms) / C",
        f"{where}p99 latency by variant / A",
        f"{where}Fallback ratio / A",
        f"{where}Fallbacks by reason / A",
    ], found
    assert "reads recplat_fallbacks_total, which is not declared in" in found[4], found[4]
    # The unchanged dashboard passes on the same Prometheus.
    unchanged = query_dashboard(observed.api, json.dumps(model), observed.window)
    expected = _no_data_expected(observed, unchanged)
    assert failures(unchanged, observed.api.metric_names(), expected) == []


def test_the_report_draws_one_image_per_dashboard_from_its_panels(
    observed: Observed, tmp_path: Path
) -> None:
    images = write_dashboard_images(observed.state, _dev_brands(observed.state), tmp_path)
    assert sorted(path.name for path in images.values()) == [
        "dashboard-recplat-brand-alpha.png",
        "dashboard-recplat-brand-bravo.png",
        "dashboard-recplat-platform.png",
    ]
    for path in images.values():
        height, width, _ = image.imread(path).shape
        assert width == 1600 and height > 600, (path, width, height)
    drawn = [
        panel.title
        for dashboard in _checked(observed)
        for panel in dashboard.panels
        if any(target.answer.series for target in panel.targets)
    ]
    assert "Requests by variant and outcome" in drawn and "Traffic by brand" in drawn


def test_status_shows_an_alert_firing_on_a_quarantined_segment(observed: Observed) -> None:
    # A feedback segment whose records cannot become the lake's parquet: the service's
    # shipper quarantines it at its next round, as it would a corrupt one on a pod's disk.
    event_log = observed.state_dir / "services" / "alpha" / "event-log" / "feedback"
    event_log.mkdir(parents=True, exist_ok=True)
    (event_log / "00000000000000000001-broken.jsonl").write_text('{"not": "feedback"}\n')

    def firing() -> bool:
        return any(
            alert.name == "RecplatEventSegmentsQuarantined"
            and alert.state == "firing"
            and alert.labels.get("brand") == "alpha"
            for alert in observed.api.alerts()
        )

    wait_until(firing, timeout_s=FIRING_TIMEOUT_S, what="the quarantine alert to fire")
    result = recplat("local", "status", "--state-dir", str(observed.state_dir), timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line for line in lines if "│ RecplatEventSegmentsQuarantined" in line]
    assert len(rows) == 1, result.stdout
    assert [cell.strip() for cell in rows[0].split("│")[1:4]] == [
        "firing",
        "RecplatEventSegmentsQuarantined",
        "alpha",
    ], result.stdout
    assert "  RecplatEventSegmentsQuarantined: alpha: event segments that cannot be shipped" in (
        result.stdout
    )
    assert "prometheus" in result.stdout and "ready" in result.stdout


def test_down_stops_prometheus(observed: Observed) -> None:
    record = next(p for p in observed.state.processes if p.name == "prometheus")
    assert record.port is not None and port_is_listening(record.port)
    result = recplat("local", "down", "--state-dir", str(observed.state_dir), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "prometheus" in result.stdout
    assert not psutil.pid_exists(record.pid) or psutil.Process(record.pid).status() == "zombie"
    assert not port_is_listening(record.port)


def test_up_without_prometheus_says_how_to_install_it_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    brands = write_brands(tmp_path / "brands", ["alpha"])
    state_dir = tmp_path / "state"
    # The venv's programs, and no /usr/bin: Debian's prometheus is not found.
    path = str(Path(sys.executable).parent)
    result = subprocess.run(
        [sys.executable, "-m", "recplat", "local", "up", "--brands-dir", str(brands),
         "--state-dir", str(state_dir)],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "PATH": path},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == (
        "recplat local up: program 'prometheus' not found on PATH, so the local platform cannot "
        "collect metrics or evaluate alerts; install Debian's package with `make setup` "
        "(scripts/bootstrap.sh) or `sudo apt-get install prometheus`\n"
    )
    assert "Traceback" not in result.stdout
    assert not (state_dir / "state.json").exists()
    # MLflow started before Prometheus was looked for, and was stopped.
    assert (state_dir / "logs" / "mlflow.log").exists()
    left = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if str(state_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert left == []

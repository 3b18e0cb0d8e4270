"""The local platform's Prometheus: Debian's `prometheus`, scraping every local program that
exports metrics, with the alert rules infra deploys, evaluated live.

`recplat local up` starts it before the ranking services, so it sees them from their first
request. Its files live under `<state dir>/prometheus/`: `prometheus.yml`, the rule files in
`rules/`, one scrape target file per program in `targets/` and the TSDB in `data/`.

- **Rules.** Each brand's SLO rules are rendered from the same `infra.brand_alerts.AlertRule`
  list that `BrandStack` turns into an Azure Monitor rule group (`rule_file`, for the `dev`
  environment the local platform stands for), and the platform rules are infra's own
  `infra/rules/platform.rules.yaml`, loaded as deployed. Their Kubernetes metrics do not
  exist here, so those rules never fire locally; the brand rules do.
- **Targets** are file-based service discovery (`file_sd_configs`): a program started after
  Prometheus (a service, or anything else that serves `/metrics`) is added by writing its
  target file, which Prometheus picks up without a restart. Targets get no `brand` label:
  the services label their own series with it, as on AKS.
- **Scrape interval** is 5 s (AKS: managed Prometheus's 30 s default), so a short local run
  has points to draw; rule groups keep their deployed evaluation interval (1 min).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import yaml
from ranking_features.brand import Environment

from recplat.local.processes import (
    LOOPBACK,
    LocalPlatformError,
    StartedProcess,
    free_port,
    start_process,
    wait_until,
)

if TYPE_CHECKING:
    from ranking_features.brand import Brand

PROCESS_NAME = "prometheus"
SCRAPE_INTERVAL_S = 5
PROMETHEUS_START_TIMEOUT_S = 60.0
SERVICE_JOB = "ranking"
"""The scrape job of the ranking services."""
RULES_ENVIRONMENT = Environment.DEV.value
"""The environment whose alert rules are loaded: the local platform runs brands' `dev`."""
PLATFORM_RULES = Path(__file__).resolve().parents[2] / "infra" / "rules" / "platform.rules.yaml"
"""infra's platform rule file (`infra.monitoring.PLATFORM_RULES`; not imported, since
`infra.monitoring` pulls in the whole Azure provider)."""


@dataclass(frozen=True)
class PrometheusFiles:
    """Where the local Prometheus keeps its configuration and data."""

    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "prometheus.yml"

    @property
    def rules_dir(self) -> Path:
        return self.root / "rules"

    @property
    def targets_dir(self) -> Path:
        return self.root / "targets"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @classmethod
    def of(cls, state_dir: Path) -> PrometheusFiles:
        return cls(state_dir / "prometheus")


def prometheus_program() -> str:
    """The `prometheus` binary, or a clear error saying how to install it."""
    found = shutil.which(PROCESS_NAME)
    if found is None:
        raise LocalPlatformError(
            "program 'prometheus' not found on PATH, so the local platform cannot collect "
            "metrics or evaluate alerts; install Debian's package with `make setup` "
            "(scripts/bootstrap.sh) or `sudo apt-get install prometheus`"
        )
    return found


def brand_rule_file(brand: Brand, environment: str = RULES_ENVIRONMENT) -> str:
    """The brand's alert rules as the Prometheus rule file infra renders for `environment`."""
    from infra.brand_alerts import brand_alert_rules, rule_file
    from infra.brand_names import brand_names

    return rule_file(brand_names(brand.name, environment), brand_alert_rules(brand, environment))


def write_rule_files(brands: Mapping[str, Brand], files: PrometheusFiles) -> list[Path]:
    """The platform rule file and one per brand, written into `files.rules_dir` (emptied first,
    so a brand removed since the last `up` leaves no rules behind)."""
    shutil.rmtree(files.rules_dir, ignore_errors=True)
    files.rules_dir.mkdir(parents=True)
    platform = files.rules_dir / PLATFORM_RULES.name
    shutil.copyfile(PLATFORM_RULES, platform)
    written = [platform]
    for name, brand in sorted(brands.items()):
        path = files.rules_dir / f"brand-{name}.rules.yaml"
        path.write_text(brand_rule_file(brand))
        written.append(path)
    return written


def write_config(files: PrometheusFiles, rule_files: list[Path], port: int) -> Path:
    """`prometheus.yml`: scrape itself (on `port`) and every target file, load `rule_files`."""
    interval = f"{SCRAPE_INTERVAL_S}s"
    files.targets_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": "1m"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": PROCESS_NAME, "static_configs": [{"targets": [f"{LOOPBACK}:{port}"]}]},
            {
                "job_name": SERVICE_JOB,
                "file_sd_configs": [
                    {"files": [str(files.targets_dir / "*.json")], "refresh_interval": interval}
                ],
            },
        ],
    }
    files.config_file.parent.mkdir(parents=True, exist_ok=True)
    files.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    return files.config_file


def add_scrape_target(files: PrometheusFiles, name: str, port: int) -> Path:
    """Have Prometheus scrape `http://127.0.0.1:<port>/metrics` (labelled `program=<name>`).

    Written atomically: Prometheus re-reads target files as they change and must never
    see half of one.
    """
    files.targets_dir.mkdir(parents=True, exist_ok=True)
    path = files.targets_dir / f"{name}.json"
    temporary = path.with_suffix(".tmp")
    groups = [{"targets": [f"{LOOPBACK}:{port}"], "labels": {"program": name}}]
    temporary.write_text(json.dumps(groups) + "\n")
    temporary.replace(path)
    return path


def start_prometheus(
    files: PrometheusFiles, brands: Mapping[str, Brand], log_dir: Path
) -> StartedProcess:
    """Write the rule files and config, and start Prometheus on a free loopback port;
    returns at once (`wait_prometheus_ready` waits)."""
    program = prometheus_program()
    port = free_port()
    write_config(files, write_rule_files(brands, files), port)
    files.data_dir.mkdir(parents=True, exist_ok=True)
    return start_process(
        PROCESS_NAME,
        [
            program,
            f"--config.file={files.config_file}",
            f"--storage.tsdb.path={files.data_dir}",
            f"--web.listen-address={LOOPBACK}:{port}",
        ],
        log_path=log_dir / "prometheus.log",
        port=port,
    )


def prometheus_url(process: StartedProcess) -> str:
    return f"http://{LOOPBACK}:{process.port}"


def prometheus_is_ready(url: str) -> bool:
    """True when the Prometheus at `url` has loaded its config and rules and answers."""
    try:
        return httpx.get(f"{url}/-/ready", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_prometheus_ready(
    process: StartedProcess, timeout_s: float = PROMETHEUS_START_TIMEOUT_S
) -> None:
    """Wait until Prometheus is ready; a bad config or rule file ends it early, and its log
    says why."""
    url = prometheus_url(process)
    wait_until(
        lambda: prometheus_is_ready(url),
        timeout_s=timeout_s,
        what=f"Prometheus to be ready on {url}",
        process=process,
    )

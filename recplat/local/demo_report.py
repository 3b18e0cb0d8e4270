"""The demo's report: a table on the terminal, `report.json`, `ctr.png` (CTR per version), and
one image per dashboard (`dashboard-<uid>.png`) drawn from the local Prometheus.

The dashboard images are drawn while the platform still runs (the demo's last step): every
panel of the dashboards infra provisions for these brands, queried over the demo's time range
as Grafana queries it (`recplat.local.prometheus_panels`), laid out on Grafana's grid.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from ranking_features.brand import Brand

    from recplat.local.demo import BrandOutcome
    from recplat.local.stages import StageReporter
    from recplat.local.state import PlatformState

DASHBOARD_IMAGE_PREFIX = "dashboard-"


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_table(outcomes: list[BrandOutcome]) -> Table:
    """One row per brand: the loop from first champion to the model serving after the switch."""
    table = Table(title="recplat demo: the feedback loop per brand")
    for column in (
        "brand",
        "champion before (NDCG@10)",
        "feedback sent / in lake",
        "retrain -> new version (NDCG@10)",
        "gate decision",
        "picked up by service",
        "problems",
    ):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        before = (
            f"v{outcome.champion_before} ({_number(outcome.ndcg_before)})"
            if outcome.champion_before
            else f"[red]none: {outcome.first_training}[/]"
        )
        new = (
            f"v{outcome.new_version} ({_number(outcome.new_version_ndcg)})"
            if outcome.new_version
            else outcome.retraining or "-"
        )
        switch = (
            f"{outcome.switched_alias} v{outcome.new_version} in {outcome.switch_seconds:.1f} s"
            if outcome.switch_seconds is not None
            else "-"
        )
        table.add_row(
            outcome.brand,
            before,
            f"{outcome.feedback_sent} / {outcome.feedback_in_lake}",
            new,
            outcome.gate or "-",
            switch,
            "; ".join(outcome.problems)[:200] or "-",
        )
    return table


def ctr_table(outcomes: list[BrandOutcome]) -> Table:
    """Online CTR per brand, model version and variant, from the lake (`recplat.online_ctr`).

    CTR is per ranked list: the share of requests with at least one click; its 95 % interval is
    user-clustered (traffic is split per user, so users, not requests, are independent).
    Impressions and item clicks are shown too, and the unmatched feedback left out of them:
    events naming one of the row's requests with another user or an item it did not show.
    """
    table = Table(title="online CTR per model version (from the lake; CTR = requests with a click)")
    columns = ("brand", "version", "variant", "users", "requests", "clicked", "impr.", "clicks")
    for column in (*columns, "unmatched feedback", "CTR", "95% CI (users)"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        for row in outcome.online_ctr:
            table.add_row(
                outcome.brand,
                _version(row),
                str(row.get("variant", "-")),
                str(row.get("users", "-")),
                str(row.get("requests", "-")),
                str(row.get("clicked_requests", "-")),
                str(row.get("impressions", "-")),
                str(row.get("clicks", "-")),
                str(row.get("unmatched_feedback", "-")),
                _number(_float(row.get("ctr"))),
                f"[{_number(_float(row.get('ci_low')))}, {_number(_float(row.get('ci_high')))}]",
            )
    return table


def _version(row: dict[str, Any]) -> str:
    version = str(row.get("model_version", "-"))
    return version if version == "-" else f"v{version}"


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def write_report(
    outcomes: list[BrandOutcome], report_dir: Path, stage_seconds: dict[str, float]
) -> tuple[Path, Path]:
    """Write `report.json` and `ctr.png` into `report_dir`; return their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path = report_dir / "report.json"
    document = {
        "brands": [_outcome_json(outcome) for outcome in outcomes],
        "dashboards": sorted(p.name for p in report_dir.glob(f"{DASHBOARD_IMAGE_PREFIX}*.png")),
        "stage_seconds": {name: round(seconds, 2) for name, seconds in stage_seconds.items()},
        "total_seconds": round(sum(stage_seconds.values()), 2),
    }
    json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    png_path = report_dir / "ctr.png"
    plot_ctr(outcomes, png_path)
    return json_path, png_path


def _outcome_json(outcome: BrandOutcome) -> dict[str, Any]:
    data = asdict(outcome)
    data["traffic"] = [
        {
            "requests": result.requests,
            "failed_requests": result.failed_requests,
            "feedback_events": len(result.feedback_event_ids),
            "clicks": sum(t.clicks for t in result.by_variant.values()),
            "conversions": sum(t.conversions for t in result.by_variant.values()),
            "seconds": round(result.seconds, 2),
            "ctr_by_variant": {
                key: {
                    "impressions": t.impressions,
                    "clicks": t.clicks,
                    "conversions": t.conversions,
                    "ctr": round(t.ctr, 4),
                }
                for key, t in result.by_variant.items()
            },
        }
        for result in outcome.traffic
    ]
    return data


def plot_ctr(outcomes: list[BrandOutcome], path: Path) -> None:
    """A bar chart of online CTR per brand and model version (variant in the label), with
    user-clustered 95% intervals: bars of one version share a colour across brands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels: list[str] = []
    values: list[float] = []
    low_err: list[float] = []
    high_err: list[float] = []
    versions: list[str] = []
    for outcome in outcomes:
        for row in outcome.online_ctr:
            ctr = _float(row.get("ctr")) or 0.0
            labels.append(f"{outcome.brand}\n{_version(row)}\n{row.get('variant')}")
            versions.append(_version(row))
            values.append(ctr)
            low_err.append(max(ctr - (_float(row.get("ci_low")) or ctr), 0.0))
            high_err.append(max((_float(row.get("ci_high")) or ctr) - ctr, 0.0))
    palette = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")
    colour_of = {v: palette[i % len(palette)] for i, v in enumerate(sorted(set(versions)))}
    figure, axes = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 1), 3.8), dpi=100)
    axes.bar(
        range(len(values)),
        values,
        yerr=[low_err, high_err],
        capsize=4,
        color=[colour_of[v] for v in versions],
    )
    axes.set_xticks(range(len(labels)), labels, fontsize=7)
    axes.set_ylabel("online CTR")
    axes.set_title("CTR per brand and model version (95% CI, clustered by user)")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_dashboard_images(
    state: PlatformState, brands: Mapping[str, Brand], report_dir: Path
) -> dict[str, Path]:
    """Every dashboard (the platform's and one per brand) drawn from the running platform's
    Prometheus over its whole run so far, one PNG each; returns them by dashboard title."""
    from recplat.local.processes import LocalPlatformError
    from recplat.local.prometheus import PROCESS_NAME
    from recplat.local.prometheus_api import PrometheusApi
    from recplat.local.prometheus_dashboard_images import draw_dashboard
    from recplat.local.prometheus_panels import Window, local_dashboards, query_dashboard

    started = next((p.create_time for p in state.processes if p.name == PROCESS_NAME), None)
    if state.prometheus_url is None or started is None:
        raise LocalPlatformError(
            f"the platform in {state.state_dir} runs no Prometheus, so there is nothing to draw "
            "the dashboards from; restart it with `recplat local up`"
        )
    api = PrometheusApi(state.prometheus_url)
    window = Window(start=started, end=time.time())
    images = {}
    # Prometheus answers queries side by side, so one dashboard is drawn while others are
    # still being queried.
    models = local_dashboards(brands)
    with ThreadPoolExecutor(max_workers=max(len(models), 1)) as pool:
        queried = {
            uid: pool.submit(query_dashboard, api, model, window) for uid, model in models.items()
        }
        for uid, future in queried.items():
            dashboard = future.result()
            path = report_dir / f"{DASHBOARD_IMAGE_PREFIX}{uid}.png"
            images[dashboard.title] = draw_dashboard(dashboard, path)
    return images


def dashboard_images_stage(
    reporter: StageReporter, state: PlatformState, brands: Mapping[str, Brand]
) -> dict[str, Path]:
    """The demo's step: draw every dashboard into the report folder, next to `ctr.png`."""
    report_dir = Path(state.state_dir) / "report"
    with reporter.stage("draw every dashboard panel from the local Prometheus"):
        images = write_dashboard_images(state, brands, report_dir)
        for title, path in images.items():
            reporter.console.print(f"     {title}: {path}", markup=False, highlight=False)
    return images

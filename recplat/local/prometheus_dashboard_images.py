"""A dashboard drawn as one PNG, panels where Grafana puts them, from what Prometheus answered.

Grafana lays panels out on a grid 24 columns wide with rows of 30 px (`gridPos`); the image
keeps that grid at 1600 px wide. Time series are drawn as lines named by their legend
format, with the panel's threshold as a dashed red line; a stat shows each series' last
value (mapped to its text, red past its threshold, as Grafana colours the background); a
table joins its instant targets on the labels all their series share, one column per target
(and per extra label value); a row is a heading.
A target without series reads "No data", as on Grafana. Times are UTC, like the dashboards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from recplat.local.prometheus_panels import DashboardResult, PanelResult

WIDTH_PX = 1600
ROW_PX = 30
DPI = 100
HEADER_PX = 50
GAP_PX = 6
# Grafana's classic palette, in its order.
PALETTE = ("#73bf69", "#f2cc0c", "#5794f2", "#ff780a", "#f2495c", "#b877d9", "#8ab8ff", "#705da0")
GREEN, RED = "#37872d", "#c4162a"


def draw_dashboard(dashboard: DashboardResult, path: Path) -> Path:
    """Draw `dashboard` into the PNG at `path`; return `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max((y + h for _, y, _, h in (panel.grid for panel in dashboard.panels)), default=1)
    height_px = HEADER_PX + rows * ROW_PX
    figure = plt.figure(figsize=(WIDTH_PX / DPI, height_px / DPI), dpi=DPI)
    start, end = (_utc(t) for t in (dashboard.window.start, dashboard.window.end))
    figure.text(
        GAP_PX / WIDTH_PX,
        1 - 22 / height_px,
        dashboard.title,
        fontsize=15,
        weight="bold",
        va="center",
    )
    figure.text(
        1 - GAP_PX / WIDTH_PX,
        1 - 22 / height_px,
        f"{start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC, step {dashboard.window.step_s} s, "
        f"$__rate_interval {dashboard.window.rate_interval}",
        fontsize=9,
        ha="right",
        va="center",
        color="#555555",
    )
    for panel in dashboard.panels:
        if panel.kind == "row":
            _draw_row(figure, panel, height_px)
            continue
        axes = _panel_axes(figure, panel, height_px)
        axes.set_title(panel.title, fontsize=9, loc="left", weight="bold")
        if panel.kind == "stat":
            _draw_stat(axes, panel)
        elif panel.kind == "table":
            _draw_table(axes, panel)
        else:
            _draw_time_series(axes, panel, dashboard.window.start, dashboard.window.end)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _box(panel: PanelResult, height_px: int) -> tuple[float, float, float, float]:
    """The panel's rectangle in figure fractions: left, bottom, width, height."""
    x, y, w, h = panel.grid
    column_px = WIDTH_PX / 24
    left = x * column_px + GAP_PX
    top = HEADER_PX + y * ROW_PX + GAP_PX
    width = w * column_px - 2 * GAP_PX
    height = h * ROW_PX - 2 * GAP_PX
    return (left / WIDTH_PX, 1 - (top + height) / height_px, width / WIDTH_PX, height / height_px)


def _draw_row(figure: Figure, panel: PanelResult, height_px: int) -> None:
    left, bottom, _, height = _box(panel, height_px)
    figure.text(left, bottom + height / 2, panel.title, fontsize=12, weight="bold", va="center")


def _panel_axes(figure: Figure, panel: PanelResult, height_px: int) -> Axes:
    left, bottom, width, height = _box(panel, height_px)
    # Room inside the panel's box for its title above and tick labels left of and below it.
    title_px, left_px, bottom_px = 20, 52, 34
    if panel.kind in ("stat", "table"):
        left_px, bottom_px = 4, 4
    axes = figure.add_axes(
        (
            left + left_px / WIDTH_PX,
            bottom + bottom_px / height_px,
            width - (left_px + 4) / WIDTH_PX,
            height - (title_px + bottom_px) / height_px,
        )
    )
    axes.tick_params(labelsize=7)
    return axes


def _no_data(axes: Axes) -> None:
    axes.text(0.5, 0.5, "No data", ha="center", va="center", color="#888888", fontsize=12)
    axes.set_xticks([])
    axes.set_yticks([])


def _draw_time_series(axes: Axes, panel: PanelResult, start: float, end: float) -> None:
    import matplotlib.dates as mdates

    drawn = 0
    for target in panel.targets:
        for series in target.answer.series:
            times = mdates.date2num([_utc(t) for t, _ in series.points])
            values = [v for _, v in series.points]
            colour = PALETTE[drawn % len(PALETTE)]
            axes.plot(times, values, lw=1.2, color=colour, label=target.legend(series))
            drawn += 1
    if not drawn:
        _no_data(axes)
        return
    axes.set_xlim(float(mdates.date2num(_utc(start))), float(mdates.date2num(_utc(end))))
    axes.xaxis.set_major_locator(mdates.AutoDateLocator(tz=UTC, minticks=3, maxticks=9))
    # Seconds on a short range, as Grafana shows them.
    clock = "%H:%M:%S" if end - start < 900 else "%H:%M"
    axes.xaxis.set_major_formatter(mdates.DateFormatter(clock, tz=UTC))
    if panel.minimum is not None:
        axes.set_ylim(bottom=panel.minimum)
    if panel.line_at is not None:
        axes.axhline(panel.line_at, color=RED, ls="--", lw=1)
        # The threshold stays in view, as Grafana's "Show thresholds" keeps it.
        low, high = axes.get_ylim()
        axes.set_ylim(low, max(high, panel.line_at * 1.1))
    axes.yaxis.set_major_formatter(lambda value, _: format_value(value, panel.unit))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=6, loc="upper left", ncol=max(1, drawn // 4), framealpha=0.6)


def _draw_stat(axes: Axes, panel: PanelResult) -> None:
    from matplotlib.patches import Rectangle

    values = [
        (target.legend(series), series.points[-1][1])
        for target in panel.targets
        for series in target.answer.series
        if series.points
    ]
    axes.set_xticks([])
    axes.set_yticks([])
    if not values:
        _no_data(axes)
        return
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    width = 1 / len(values)
    for index, (name, value) in enumerate(values):
        red = panel.line_at is not None and value >= panel.line_at
        colour = RED if red else GREEN
        axes.add_patch(Rectangle((index * width + 0.01, 0.02), width - 0.02, 0.96, color=colour))
        text = panel.value_texts.get(_mapping_key(value)) or format_value(value, panel.unit)
        centre = index * width + width / 2
        axes.text(centre, 0.55, text, ha="center", va="center", fontsize=16, color="white")
        axes.text(centre, 0.18, name, ha="center", va="center", fontsize=8, color="white")


def _draw_table(axes: Axes, panel: PanelResult) -> None:
    """One row per value of the labels every series has (the brand), one column per target;
    a target's extra labels (an alias) name its columns, as a Grafana join would."""
    axes.axis("off")
    answered = [
        (target.legend_format or target.query.ref_id, series)
        for target in panel.targets
        for series in target.answer.series
        if series.points
    ]
    if not answered:
        _no_data(axes)
        return
    shared = sorted(set.intersection(*(set(series.labels) for _, series in answered)))
    rows: dict[tuple[str, ...], dict[str, str]] = {}
    columns: list[str] = []
    for name, series in answered:
        key = tuple(series.labels[label] for label in shared)
        extra = [value for label, value in sorted(series.labels.items()) if label not in shared]
        column = f"{name} ({', '.join(extra)})" if extra else name
        if column not in columns:
            columns.append(column)
        rows.setdefault(key, {})[column] = format_value(series.points[-1][1], "short")
    cells = [[*key, *(values.get(c, "") for c in columns)] for key, values in sorted(rows.items())]
    table = axes.table(cellText=cells, colLabels=[*shared, *columns], loc="upper center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)


def _mapping_key(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def format_value(value: float, unit: str) -> str:
    """`value` in the panel's Grafana unit, shortly."""
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    if unit == "s":
        for size, suffix in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
            if abs(value) >= size:
                return f"{value / size:.3g} {suffix}"
        return "0 s" if value == 0 else f"{value * 1000:.3g} ms"
    text = _short(value)
    return f"{text} req/s" if unit == "reqps" else text


def _short(value: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"

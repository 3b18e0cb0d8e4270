"""`recplat report`: online metrics read from a brand's lake."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer

app = typer.Typer(help="Online metrics from the lake, such as CTR per variant.")


def _lake_url(lake: str) -> str:
    """A folder lake given as a path (`.scratch/local/lake/acme`) as the file URL readers take."""
    if "://" in lake:
        return lake
    return Path(lake).expanduser().resolve().as_uri()


@app.command()
def ctr(
    lake_uri: str = typer.Option(
        ...,
        help="The brand's lake: a folder (relative or absolute), file:///path or abfs://container.",
    ),
    brand: str = typer.Option("", help="Only this brand's events (default: all in the lake)."),
    since: str = typer.Option("", help="First day to count, YYYY-MM-DD (default: all days)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Online CTR per serving variant (champion, challenger, fallback) with a 95 % interval.

    A ranking request counts as clicked when any click links to its request_id; the interval
    is Wilson's. Retries of one event count once (same event_id, type, request, user and
    item). Feedback whose request_id, user_id and item_id match no impression is left out
    and counted as unmatched.
    """
    from recplat.online_ctr import LakeReadError, online_ctr_report

    first_day = None
    if since:
        try:
            first_day = date.fromisoformat(since)
        except ValueError:
            typer.echo(f"--since: expected a date YYYY-MM-DD, got {since!r}", err=True)
            raise typer.Exit(2) from None
    try:
        report = online_ctr_report(_lake_url(lake_uri), brand=brand or None, since=first_day)
    except (LakeReadError, FileNotFoundError, ValueError) as error:
        typer.echo(f"recplat report ctr: {error}", err=True)
        raise typer.Exit(1) from None

    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Online CTR per variant ({brand or 'all brands'})")
    for column in ("variant", "versions", "requests", "clicked", "CTR", "95% CI", "item clicks"):
        table.add_column(column, justify="left" if column in ("variant", "versions") else "right")
    for r in report.variants:
        table.add_row(
            r.variant,
            r.model_versions,
            str(r.requests),
            str(r.clicked_requests),
            f"{r.ctr:.2%}",
            f"{r.ci_low:.2%} - {r.ci_high:.2%}",
            f"{r.clicks}/{r.impressions}",
        )
    Console().print(table)
    # Plain echo: rich would wrap the line at the terminal's width.
    typer.echo(
        f"unmatched feedback: {report.unmatched_feedback} (left out: request, user and item "
        "match no impression)"
    )

"""`recplat report`: online metrics read from a brand's lake."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import typer

app = typer.Typer(help="Online metrics from the lake, such as CTR per model version.")


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
    """Online CTR per model version and variant (champion, challenger, fallback), 95 % interval.

    A ranking request counts as clicked when any click links to its request_id; the interval
    is user-clustered (delta method over users: traffic is split per user). Retries of one
    event count once (same event_id, type, request, user and item). Feedback whose request_id,
    user_id and item_id match no impression is left out and counted as unmatched.
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

    table = Table(title=f"Online CTR per model version ({brand or 'all brands'})")
    columns = ("version", "variant", "users", "requests", "clicked", "CTR", "95% CI (users)")
    for column in (*columns, "item clicks"):
        table.add_column(column, justify="left" if column in ("version", "variant") else "right")
    for r in report.rows:
        table.add_row(
            r.model_version if r.model_version == "-" else f"v{r.model_version}",
            r.variant,
            str(r.users),
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

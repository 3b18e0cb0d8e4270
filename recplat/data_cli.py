"""`recplat data`: synthetic lake data for demos, tests and benchmarks."""

from __future__ import annotations

import typer

app = typer.Typer(help="Lake data: generate synthetic impressions, feedback and catalog.")


@app.command()
def synth(
    brand: str = typer.Option(..., help="Brand name written into every event."),
    out: str = typer.Option(..., help="Lake URI: file:///path or abfs://container/path."),
    users: int = typer.Option(1000, min=1, help="Number of users."),
    items: int = typer.Option(500, min=10, help="Number of catalog items."),
    days: int = typer.Option(14, min=1, help="Days of events, ending yesterday (UTC)."),
    seed: int = typer.Option(7, help="Seed: the same seed and sizes give the same data."),
    end_date: str = typer.Option("", help="Last day of events (YYYY-MM-DD); default yesterday."),
    requests_per_user_per_day: float = typer.Option(0.5, min=0.01),
    list_size: int = typer.Option(10, min=2, help="Items per ranked list."),
) -> None:
    """Write events from a hidden ground-truth preference model and report its oracle NDCG."""
    from recplat.synthetic import SynthParams, default_end_date, generate, write_lake

    params = SynthParams(
        brand=brand,
        users=users,
        items=items,
        days=days,
        seed=seed,
        end_date=end_date or default_end_date(),
        requests_per_user_per_day=requests_per_user_per_day,
        list_size=list_size,
    )
    try:
        params.start  # noqa: B018 - validates end_date
    except ValueError:
        typer.echo(f"--end-date: expected YYYY-MM-DD, got {end_date!r}", err=True)
        raise typer.Exit(2) from None
    data = generate(params)
    try:
        write_lake(data, out)
    except (OSError, ValueError) as error:
        typer.echo(f"--out {out}: cannot write the lake: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{brand}: wrote {data.impressions.num_rows} impressions, {data.feedback.num_rows} "
        f"feedback events and {data.catalog.num_rows} items to {out} "
        f"({params.start.date()} .. {params.end_date})"
    )
    typer.echo(
        "oracle (ground truth) on the logged labels: "
        + ", ".join(f"{k}={v:.4f}" for k, v in data.oracle.items() if k != "groups")
    )

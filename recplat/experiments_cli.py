"""`recplat experiments`: a brand's online experiment on the local platform, judged or shown.

Both commands run the evaluator the brand's CronJob runs on AKS (`ranking-experiments`, from
the training package) as its own process, with the environment the local platform gives the
brand's training job, so `recplat` never imports the training code. `evaluate` applies the
decision (promote, stop or continue) and records it in MLflow; `status` shows the running
experiment, its sample sizes, the interval and the decision so far, and changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import typer

from recplat.local.commands import DEFAULT_STATE_DIR

app = typer.Typer(
    help="Online experiments: evaluate a brand's running experiment, or show it.",
    no_args_is_help=True,
)

_BRAND_OPTION = typer.Option(..., "--brand", help="The brand whose experiment to judge.")
_STATE_DIR_OPTION = typer.Option(
    DEFAULT_STATE_DIR, "--state-dir", help="The local platform's state folder."
)


def _run(command: str, brand: str, state_dir: Path) -> None:
    from recplat.local.batch_jobs import run_experiments
    from recplat.local.platform import attach
    from recplat.local.processes import LocalPlatformError

    try:
        platform = attach(state_dir)
    except LocalPlatformError as error:
        typer.echo(f"recplat experiments {command}: {error}", err=True)
        raise typer.Exit(1) from None
    if brand not in platform.brands:
        known = ", ".join(sorted(platform.brands)) or "none"
        typer.echo(
            f"recplat experiments {command}: --brand {brand!r}: not on the local platform "
            f"(its brands: {known})",
            err=True,
        )
        raise typer.Exit(2)
    outcome = run_experiments(
        command,
        platform.brands[brand],
        platform.state.brands[brand].lake_uri,
        platform.wiring,
        platform.log_dir,
    )
    if not outcome.succeeded:
        typer.echo(f"recplat experiments {command}: {outcome.report}", err=True)
        raise typer.Exit(1)
    typer.echo(outcome.report)


@app.command()
def evaluate(brand: str = _BRAND_OPTION, state_dir: Path = _STATE_DIR_OPTION) -> None:
    """Judge the brand's running experiment and act: promote, stop or continue."""
    _run("evaluate", brand, state_dir)


@app.command()
def status(brand: str = _BRAND_OPTION, state_dir: Path = _STATE_DIR_OPTION) -> None:
    """Show the running experiment, its sample sizes, the interval and the decision so far."""
    _run("status", brand, state_dir)

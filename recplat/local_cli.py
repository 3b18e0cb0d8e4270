"""`recplat local`: run the whole platform on this machine (up, down, status, demo)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from recplat.local.commands import DEFAULT_STATE_DIR, PROJECT_ROOT, recplat_command
from recplat.local.state import StorageMode

if TYPE_CHECKING:
    from recplat.local.state import PlatformState

app = typer.Typer(
    help="The whole platform on this machine: MLflow, lakes, training jobs, ranking services.",
    no_args_is_help=True,
)

DEFAULT_BRANDS_DIR = PROJECT_ROOT / "brands"

_STATE_DIR_OPTION = typer.Option(
    DEFAULT_STATE_DIR, "--state-dir", help="Where state, logs, lakes and the registry live."
)
_BRANDS_DIR_OPTION = typer.Option(
    DEFAULT_BRANDS_DIR, "--brands-dir", help="Folder of brand files; brands with `dev` start."
)
_STORAGE_OPTION = typer.Option(
    StorageMode.LOCAL,
    "--storage",
    help="local: a folder lake; azurite: Blob storage emulated by Azurite.",
)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> None:
    # `kill <pid>` stops the platform as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _raise_interrupt)


@app.command()
def up(
    brands_dir: Path = _BRANDS_DIR_OPTION,
    storage: StorageMode = _STORAGE_OPTION,
    detach: bool = typer.Option(False, "--detach", help="Leave it running; stop with `down`."),
    state_dir: Path = _STATE_DIR_OPTION,
) -> None:
    """Start storage, MLflow, a training run and a ranking service per brand."""
    from recplat.local.platform import UpOptions
    from recplat.local.platform import up as start_platform
    from recplat.local.processes import LocalPlatformError
    from recplat.local.stages import StageReporter
    from recplat.local.summary import first_request, print_summary

    console = Console(soft_wrap=True)
    reporter = StageReporter(console)
    options = UpOptions(
        brands_dir=brands_dir,
        storage=storage,
        state_dir=state_dir,
        project_root=PROJECT_ROOT,
    )
    _stop_on_sigterm()
    try:
        platform = start_platform(options, reporter)
    except LocalPlatformError as error:
        typer.echo(f"recplat local up: {error}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: everything started has been stopped[/]")
        raise typer.Exit(130) from None
    print_summary(console, platform.state, first_request(platform.state), detached=detach)
    if detach:
        down_command = recplat_command("local", "down", state_dir=state_dir)
        console.print(f"running in the background; stop it with `{down_command}`", markup=False)
        return
    _run_until_interrupted(platform.state, console)


def _run_until_interrupted(state: PlatformState, console: Console) -> None:
    from recplat.local.platform import stop_all
    from recplat.local.processes import is_same_process

    console.print("platform running; press Ctrl-C to stop it")
    reported: set[str] = set()
    try:
        while True:
            for record in state.processes:
                if record.name not in reported and not is_same_process(
                    record.pid, record.create_time
                ):
                    reported.add(record.name)
                    console.print(f"[red]{record.name} exited; see {record.log_path}[/]")
            time.sleep(1.0)
    except KeyboardInterrupt:
        console.print("stopping ...")
    finally:
        stopped = stop_all(state)
        console.print(f"stopped {len(stopped)} process(es)")


@app.command()
def down(state_dir: Path = _STATE_DIR_OPTION) -> None:
    """Stop everything `recplat local up --detach` started."""
    from recplat.local.platform import down as stop_platform
    from recplat.local.processes import LocalPlatformError

    try:
        stopped = stop_platform(state_dir)
    except LocalPlatformError as error:
        typer.echo(f"recplat local down: {error}", err=True)
        raise typer.Exit(1) from None
    if not stopped:
        typer.echo("no local platform is running")
        return
    typer.echo(f"stopped {len(stopped)} process(es): {', '.join(stopped)}")


@app.command()
def status(state_dir: Path = _STATE_DIR_OPTION) -> None:
    """Show what runs, its health and the model each brand serves."""
    from recplat.local.processes import LocalPlatformError
    from recplat.local.state import load_state
    from recplat.local.status import print_status

    console = Console(soft_wrap=True)
    try:
        state = load_state(state_dir.resolve())
    except LocalPlatformError as error:
        typer.echo(f"recplat local status: {error}", err=True)
        raise typer.Exit(1) from None
    if state is None:
        up_command = recplat_command("local", "up", "--detach", state_dir=state_dir)
        console.print(f"no local platform is running (start one with `{up_command}`)")
        raise typer.Exit(3)
    print_status(console, state)


@app.command()
def demo(
    brands_dir: Path = _BRANDS_DIR_OPTION,
    storage: StorageMode = _STORAGE_OPTION,
    state_dir: Path = _STATE_DIR_OPTION,
    requests: int = typer.Option(400, min=1, help="Ranking requests per brand and phase."),
    keep_data: bool = typer.Option(
        False, "--keep-data", help="Reuse lakes and registry of a previous run."
    ),
) -> None:
    """Run the feedback loop once: up, traffic, retrain, gate, hot switch, CTR; then stop."""
    from recplat.local.demo import DemoOptions, run_demo
    from recplat.local.demo_report import ctr_table, summary_table, write_report
    from recplat.local.platform import UpOptions
    from recplat.local.processes import LocalPlatformError
    from recplat.local.simulator import TrafficOptions
    from recplat.local.stages import StageReporter

    console = Console(soft_wrap=True)
    reporter = StageReporter(console)
    options = DemoOptions(
        up=UpOptions(
            brands_dir=brands_dir,
            storage=storage,
            state_dir=state_dir,
            project_root=PROJECT_ROOT,
        ),
        traffic=TrafficOptions(requests=requests),
        fresh=not keep_data,
    )
    _stop_on_sigterm()
    started = time.monotonic()
    try:
        outcomes = run_demo(options, reporter)
    except LocalPlatformError as error:
        typer.echo(f"recplat local demo: {error}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: every process the demo started has been stopped[/]")
        raise typer.Exit(130) from None
    except Exception as error:
        typer.echo(
            f"recplat local demo: failed: {type(error).__name__}: {error}; every process it "
            f"started has been stopped; logs are in {state_dir / 'logs'}",
            err=True,
        )
        raise typer.Exit(1) from None
    console.print(summary_table(outcomes))
    console.print(ctr_table(outcomes))
    json_path, png_path = write_report(outcomes, state_dir / "report", reporter.durations)
    console.print(f"report: {json_path} and {png_path}")
    console.print(f"demo finished in {time.monotonic() - started:.0f} s")
    if any(outcome.problems for outcome in outcomes):
        console.print("[yellow]some brands had problems; see the table above[/]")

"""The ``recplat`` command: mounts each area's sub-command group.

Each group lives in its own module and keeps heavy imports (pulumi, mlflow,
LightGBM) inside its commands, so ``recplat --help`` stays instant.
"""

from __future__ import annotations

import importlib

import typer

_GROUPS: list[tuple[str, str, str]] = [
    ("brands", "recplat.brands_cli", "Validate, create, list brand files; print their schema."),
    ("plan", "recplat.plan_cli", "Show offline what `pulumi up` would do for a stack."),
    ("data", "recplat.data_cli", "Synthetic lake data for demos and tests."),
    ("local", "recplat.local_cli", "Run the whole platform on this machine."),
    ("report", "recplat.report_cli", "Online metrics from the lake, such as CTR per variant."),
    ("experiments", "recplat.experiments_cli", "Evaluate or show a brand's online experiment."),
]

app = typer.Typer(
    name="recplat",
    help="Multi-brand recommendation platform on Azure: brands, plans and the local platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _mount_groups() -> None:
    for name, module_name, help_text in _GROUPS:
        app.add_typer(importlib.import_module(module_name).app, name=name, help=help_text)


_mount_groups()


def main() -> None:
    """Entry point of the ``recplat`` console script."""
    app()

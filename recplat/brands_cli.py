"""``recplat brands``: validate, create and list brand files, and print their JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from ranking_features.brand import (
    NAME_HINT,
    SCHEMA_FILE_NAME,
    BrandFileError,
    Serving,
    Training,
    brand_files,
    json_schema,
    load_brand_files,
    load_brands,
    parse_brand,
)
from ranking_features.brand.fields import is_brand_name
from rich.console import Console
from rich.table import Table

DEFAULT_BRANDS_DIR = Path("brands")

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

BrandsDir = Annotated[Path, typer.Option("--brands-dir", help="Directory holding the brand files.")]


def _fail(lines: list[str]) -> NoReturn:
    for line in lines:
        _err.print(line, markup=False)
    raise typer.Exit(1)


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Brand files or directories; default: every file in brands/."),
    ] = None,
) -> None:
    """Check brand files; exit 1 with a line per problem: <file>: <field>: <expected>, got <x>."""
    files: list[Path] = []
    problems: list[str] = []
    for path in paths or [DEFAULT_BRANDS_DIR]:
        if path.is_dir():
            files.extend(brand_files(path))
        elif path.exists():
            files.append(path)
        else:
            problems.append(f"{path}: (file): an existing brand file or directory, got nothing")
    if not files and not problems:
        problems.append(f"{paths or DEFAULT_BRANDS_DIR}: (file): at least one *.yaml, got none")
    try:
        brands = load_brand_files(files)
    except BrandFileError as error:
        problems.extend(str(problem) for problem in error.problems)
        brands = []
    if problems:
        _fail(problems)
    _out.print(f"{len(brands)} brand file(s) valid: {', '.join(b.name for b in brands)}")


_TEMPLATE = """\
# yaml-language-server: $schema=./{schema}
# Brand file for {name}. `recplat brands validate` checks it; the next
# `pulumi up` of each listed environment stamps out everything the brand needs.

# Lowercase DNS label, 3-24 characters, equal to the file name.
name: {name}
display_name: {display_name}
# Owner and cost center become the `owner` and `cost-center` tags and labels.
owner: {owner}
cost_center: {cost_center}
# Add prod when the brand is ready to go live.
environments: [dev]

# The real-time ranking service.
serving:
  replicas: {{min: {s.replicas.min}, max: {s.replicas.max}}}
  # Per pod: CPU request; memory request and limit.
  cpu: {s.cpu}
  memory: {s.memory}
  # p99 latency objective of /rank; an alert fires above it.
  latency_slo_ms: {s.latency_slo_ms}
  max_candidates: {s.max_candidates}
  # Share of users served by the challenger model (0 to 0.5).
  challenger_traffic: {s.challenger_traffic}

# The batch training job.
training:
  # Cron, UTC.
  schedule: "{t.schedule}"
  lookback_days: {t.lookback_days}
  # LambdaRank parameters, passed to LightGBM unchanged.
  lightgbm:
    num_leaves: {t.lightgbm.num_leaves}
    learning_rate: {t.lightgbm.learning_rate}
    num_boost_round: {t.lightgbm.num_boost_round}
    min_data_in_leaf: {t.lightgbm.min_data_in_leaf}
    feature_fraction: {t.lightgbm.feature_fraction}
    early_stopping_rounds: {t.lightgbm.early_stopping_rounds}
  # The gate a challenger must pass to become champion.
  promotion:
    metric: {t.promotion.metric.value}
    min_gain: {t.promotion.min_gain}
  # 0 trains in the job's pod; N runs on a Dask cluster of N workers.
  workers: {t.workers}
  cpu: "{t.cpu}"
  memory: {t.memory}

# Per-environment partial overrides, e.g. {{prod: {{serving: {{replicas: {{min: 3}}}}}}}}.
overrides: {{}}
"""


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="The brand's name: a lowercase DNS label.")],
    brands_dir: BrandsDir = DEFAULT_BRANDS_DIR,
    owner: Annotated[
        str | None, typer.Option(help="Owning team's email; it becomes the owner tag. Required.")
    ] = None,
    cost_center: Annotated[
        str | None, typer.Option(help="Cost center the brand is charged to. Required.")
    ] = None,
    display_name: Annotated[str | None, typer.Option(help="Human-readable name.")] = None,
) -> None:
    """Write a valid, commented brand file from the template."""
    if not is_brand_name(name):
        _fail([f"{name}: name: {NAME_HINT}, got {name!r}"])
    target = brands_dir / f"{name}.yaml"
    if target.exists():
        _fail([f"{target}: (file): a name no brand file uses yet, got an existing file"])
    # No defaults: a placeholder owner would become every tag and label of the brand.
    missing = []
    if not owner:
        missing.append(
            f"{target}: owner: the owning team's email address (pass --owner), got nothing"
        )
    if not cost_center:
        missing.append(
            f"{target}: cost_center: the cost center the brand's costs are charged to "
            "(pass --cost-center), got nothing"
        )
    if missing:
        _fail(missing)
    text = _TEMPLATE.format(
        schema=SCHEMA_FILE_NAME,
        name=name,
        display_name=json.dumps(display_name or name.replace("-", " ").title()),
        owner=json.dumps(owner),
        cost_center=json.dumps(cost_center),
        s=Serving(),
        t=Training(),
    )
    try:
        parse_brand(text, str(target), stem=name)
    except BrandFileError as error:
        _fail([str(problem) for problem in error.problems])
    brands_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    _out.print(f"wrote {target}; edit it, then run `recplat brands validate {target}`")


@app.command()
def schema(
    write: Annotated[
        Path | None, typer.Option("--write", help="Write the schema to this file instead.")
    ] = None,
) -> None:
    """Print the brand file's JSON Schema (generated from the model)."""
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if write is None:
        typer.echo(text, nl=False)
    else:
        write.write_text(text, encoding="utf-8")
        _out.print(f"wrote {write}")


@app.command("list")
def list_brands(brands_dir: BrandsDir = DEFAULT_BRANDS_DIR) -> None:
    """A table of brands, their environments and key settings per environment."""
    try:
        brands = load_brands(brands_dir)
    except BrandFileError as error:
        _fail([str(problem) for problem in error.problems])
    table = Table(title=f"brands in {brands_dir}")
    for column in (
        "brand",
        "env",
        "owner",
        "replicas",
        "SLO ms",
        "challenger",
        "schedule",
        "workers",
    ):
        table.add_column(column)
    for brand in brands:
        for environment in brand.environments:
            merged = brand.for_environment(environment)
            table.add_row(
                brand.name,
                environment.value,
                brand.owner,
                f"{merged.serving.replicas.min}-{merged.serving.replicas.max}",
                str(merged.serving.latency_slo_ms),
                f"{merged.serving.challenger_traffic:.0%}",
                merged.training.schedule,
                str(merged.training.workers),
            )
    _out.print(table)

"""``recplat plan``: print what ``pulumi up`` would create for a stack, offline, and police it.

Groups the resources by environment component and by brand, optionally writes them
as JSON and every Kubernetes object as YAML, then runs the CrossGuard policy pack
over them and exits non-zero on any mandatory violation. ``--diff`` compares with
a git ref instead (``recplat.plan_diff``).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

StackOption = Annotated[str, typer.Option("--stack", "-s", help="Stack to plan: dev or prod.")]
JsonOption = Annotated[
    Path | None, typer.Option("--json", help="Write every resource with its inputs to FILE.")
]
ManifestsOption = Annotated[
    Path | None, typer.Option("--manifests", help="Render every Kubernetes object to DIR as YAML.")
]
BrandsOption = Annotated[
    Path | None, typer.Option("--brands-dir", help="Brand files to stamp (default: ./brands).")
]
DiffOption = Annotated[
    str | None, typer.Option("--diff", help="Compare with the plan at git REF (e.g. origin/main).")
]
MarkdownOption = Annotated[
    Path | None, typer.Option("--markdown", help="With --diff: also write the diff as Markdown.")
]


def kubernetes_manifest(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The Kubernetes object a planned resource would apply, or ``None`` for anything else."""
    token = str(resource["type"])
    if not token.startswith("kubernetes:") or token.startswith(("kubernetes:helm.sh", "pulumi:")):
        return None
    group_version, kind = token.removeprefix("kubernetes:").rsplit(":", 1)
    group, version = group_version.split("/")
    inputs = dict(resource["inputs"])
    manifest = {
        "apiVersion": inputs.pop("apiVersion", version if group == "core" else group_version),
        "kind": inputs.pop("kind", kind),
    }
    manifest.update(inputs)
    return manifest


def write_manifests(resources: list[dict[str, Any]], directory: Path) -> list[Path]:
    """Write one YAML file per Kubernetes object into ``directory``; return the paths."""
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for resource in resources:
        manifest = kubernetes_manifest(resource)
        if manifest is None:
            continue
        metadata = manifest.get("metadata") or {}
        namespace = metadata.get("namespace") or "cluster"
        path = directory / f"{namespace}--{manifest['kind'].lower()}--{metadata.get('name')}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        written.append(path)
    return written


def _print_summary(plan: Any, brands: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    counts = Counter(
        plan.component_of(resource["urn"]) for resource in plan.resources if resource["custom"]
    )
    components = Table(title=f"recplat plan: stack {plan.stack}")
    components.add_column("component")
    components.add_column("resources", justify="right")
    for component, count in sorted(counts.items()):
        if not component.startswith("brand:"):
            components.add_row(component, str(count))
    console.print(components)

    by_brand = Table(title="brands")
    for column in ("brand", "resources", "replicas", "training schedule", "workers"):
        by_brand.add_column(column)
    for brand in brands:
        replicas = brand.serving.replicas
        by_brand.add_row(
            brand.name,
            str(counts.get(f"brand:{brand.name}", 0)),
            f"{replicas.min}-{replicas.max}",
            brand.training.schedule,
            str(brand.training.workers),
        )
    console.print(by_brand)
    total = sum(counts.values())
    environment = sum(n for c, n in counts.items() if not c.startswith("brand:"))
    # Pulumi (and the policy pack below) also count the component resources that group them.
    grouping = len(plan.resources) - total
    console.print(
        f"{total} resources to create: {environment} environment, "
        f"{total - environment} in {len(brands)} brand(s); "
        f"{len(plan.resources)} with the {grouping} components that group them",
        soft_wrap=True,
    )


def _police(plan: Any) -> int:
    from policies.offline import evaluate_stack

    report = evaluate_stack(plan.resources, plan.stack)
    typer.echo(report.render())
    return 1 if report.mandatory else 0


@app.callback(invoke_without_command=True)
def plan(
    stack: StackOption = "dev",
    json_file: JsonOption = None,
    manifests: ManifestsOption = None,
    brands_dir: BrandsOption = None,
    diff: DiffOption = None,
    markdown: MarkdownOption = None,
) -> None:
    """Run the Pulumi program for STACK under mocks and print what it would create."""
    if diff is not None:
        from recplat.plan_diff import run_plan_diff

        raise typer.Exit(run_plan_diff(stack, diff, markdown))
    from ranking_features.brand import BrandFileError, brands_for_environment, load_brands

    from recplat.plan import PlanError, plan_stack, stack_config

    directory = brands_dir or Path.cwd() / "brands"
    try:
        stack_config(Path.cwd(), stack)
        brands = brands_for_environment(load_brands(directory), stack)
        result = plan_stack(stack, brands_dir=directory)
    except (PlanError, BrandFileError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    _print_summary(result, brands)
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(result.to_json(), indent=2, sort_keys=True))
        typer.echo(f"wrote {len(result.resources)} resources to {json_file}")
    if manifests is not None:
        written = write_manifests(result.resources, manifests)
        typer.echo(f"wrote {len(written)} Kubernetes manifests to {manifests}")
    raise typer.Exit(_police(result))

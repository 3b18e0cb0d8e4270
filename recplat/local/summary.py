"""What `recplat local up` prints once the platform runs: a table, where things are, what next.

The table holds only short values, because a rich table is laid out to the terminal's
width and would break a URL across lines. URLs, key files and lakes are printed one per
line instead (the console soft-wraps, so a narrow terminal folds them visually but a copy
still gets the whole URL), and the next commands are printed runnable as they stand.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from ranking_features.mlflow_names import registered_model_name
from rich.console import Console
from rich.table import Table

from recplat.local import azurite as azurite_storage
from recplat.local.commands import lake_argument, recplat_command, shell_path
from recplat.local.state import BrandRecord, PlatformState

NEXT_STEPS_HEADING = "next steps (copy and run as they are):"
# Any user id works (an unknown user is ranked like a new one); this one is in the synthetic data.
EXAMPLE_USER_ID = "u000001"


@dataclass(frozen=True)
class FirstRequest:
    """The brand the first-request example goes to, and catalog items it can rank."""

    brand: str
    item_ids: list[str]


def serving_summary(record: BrandRecord) -> str:
    """What a brand serves right after `up`: its champion, or the fallback until it has one."""
    if record.service_url is None:
        return "not serving"
    if record.model_version is None:
        return "fallback (no champion yet)"
    return f"champion v{record.model_version}"


def platform_table(state: PlatformState) -> Table:
    """Brand, serving model, NDCG@10 and the training outcome: short values only, no URLs."""
    table = Table(title=f"recplat local platform ({state.storage} storage)")
    for column in ("brand", "serving", "NDCG@10", "training"):
        table.add_column(column, overflow="fold")
    for name, record in state.brands.items():
        ndcg = f"{record.ndcg_at_10:.4f}" if record.ndcg_at_10 is not None else "-"
        training = record.training_message.removeprefix(f"{name}: ")
        if record.training_status == "failed":
            training = f"[red]FAILED: {training}[/]"
        table.add_row(name, serving_summary(record), ndcg, training)
    return table


def first_request_brand(state: PlatformState) -> str | None:
    """The brand to send a first request to: one serving a champion, else any serving one."""
    serving = [name for name, record in state.brands.items() if record.service_url]
    with_champion = [name for name in serving if state.brands[name].model_version]
    candidates = with_champion or serving
    return candidates[0] if candidates else None


def first_request(state: PlatformState, items: int = 3) -> FirstRequest | None:
    """The first-request example's brand and the first `items` ids of its lake's catalog."""
    import pyarrow.parquet as pq
    from ranking_features.events import CATALOG_PATH
    from ranking_features.lake import open_lake

    brand = first_request_brand(state)
    if brand is None:
        return None
    fs, root = open_lake(state.brands[brand].lake_uri)
    with fs.open(f"{root}/{CATALOG_PATH}", "rb") as catalog:
        item_ids = pq.read_table(catalog, columns=["item_id"]).column("item_id")
    return FirstRequest(brand, [str(item) for item in item_ids.slice(0, items).to_pylist()])


def rank_curl(record: BrandRecord, item_ids: list[str]) -> str:
    """A `curl` of `POST /rank` that reads the API key from the brand's key file."""
    body = json.dumps({"user_id": EXAMPLE_USER_ID, "candidates": item_ids})
    key = shell_path(str(record.api_key_file))
    return (
        f"curl -s -w '\\n' {record.service_url}/rank "
        f'-H "Authorization: Bearer $(cat {key})" '
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )


def report_command(state: PlatformState, record: BrandRecord) -> str:
    """`recplat report ctr` on the brand's lake (with Azurite's connection string if needed)."""
    if state.azurite_blob_endpoint and record.lake_uri.startswith("abfs://"):
        connection = azurite_storage.connection_string(state.azurite_blob_endpoint)
        command = recplat_command("report", "ctr", "--lake-uri", record.lake_uri)
        return f"AZURE_STORAGE_CONNECTION_STRING={shlex.quote(connection)} {command}"
    lake = lake_argument(record.lake_uri)
    return f"{recplat_command('report', 'ctr', '--lake-uri')} {lake}"


def next_commands(state: PlatformState, first: FirstRequest | None, *, detached: bool) -> list[str]:
    """The commands to run next, in order; each runs as printed from the current directory."""
    state_dir = state.path.parent
    commands = [recplat_command("local", "status", state_dir=state_dir)]
    if first is not None:
        record = state.brands[first.brand]
        commands.append(rank_curl(record, first.item_ids))
        commands.append(report_command(state, record))
    if detached:
        commands.append(recplat_command("local", "down", state_dir=state_dir))
    return commands


def print_summary(
    console: Console, state: PlatformState, first: FirstRequest | None, *, detached: bool
) -> None:
    """The table, then one line per URL, key file and lake, then the next commands."""
    console.print(platform_table(state))
    for name, record in state.brands.items():
        lines = [f"{name}:"]
        if record.service_url:
            lines.append(f"  service  {record.service_url}")
            lines.append(f"  API key  {shell_path(str(record.api_key_file))} (Bearer token)")
        if state.mlflow_url:
            lines.append(f"  model    {state.mlflow_url}/#/models/{registered_model_name(name)}")
        lines.append(f"  lake     {lake_argument(record.lake_uri)}")
        _print_plain(console, *lines)
    if state.mlflow_url:
        _print_plain(console, f"MLflow UI: {state.mlflow_url}")
    if state.prometheus_url:
        url = state.prometheus_url
        _print_plain(console, f"Prometheus: {url} (alerts: {url}/alerts)")
    if first is not None:
        _print_plain(
            console, f"{first.brand}'s catalog holds items such as {', '.join(first.item_ids)}"
        )
    _print_plain(console, NEXT_STEPS_HEADING)
    _print_plain(console, *(f"  {c}" for c in next_commands(state, first, detached=detached)))


def _print_plain(console: Console, *lines: str) -> None:
    # No markup, no highlighting and no wrapping: these lines are copied as they are.
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

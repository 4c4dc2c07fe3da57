"""`kumo hosts apply inventory.yaml [--dry-run] [--prune]`."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.console import Console

from kumo.apiclient import APIError, connect
from kumo.inventory import apply as applier
from kumo.inventory.diff import plan
from kumo.inventory.model import InventoryError, parse

app = typer.Typer(help="Hosts: declarative inventory")
STYLE = {"+": "green", "-": "red", "~": "yellow", "!": "magenta"}


@app.command("apply")
def apply_inventory(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="inventory YAML"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the changes, apply nothing"),
    prune: bool = typer.Option(False, "--prune", help="Also delete what the inventory does not list"),
    os_cloud: str = typer.Option(None, "--os-cloud", envvar="OS_CLOUD", help="Cloud in clouds.yaml"),
    wait: float = typer.Option(300.0, help="Seconds to wait for each node provision step"),
) -> None:
    """Make nodes, host labels and aggregates match FILE: shows the diff, then applies it."""
    out, err = Console(), Console(stderr=True)
    try:
        inventory = parse(yaml.safe_load(file.read_text()))
    except (InventoryError, yaml.YAMLError) as exc:
        err.print(f"[red]Invalid inventory:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        client = connect(os_cloud)
        current = applier.read_current(
            client, with_nodes=bool(inventory.nodes) or prune and _has_baremetal(client)
        )
        changes = plan(inventory, current, prune=prune)
        if not changes:
            out.print("No changes.")
            return
        for change in changes:
            line = change.describe()
            out.print(f"[{STYLE.get(line[0], 'white')}]{line}[/]", highlight=False)
        if dry_run:
            out.print(f"{len(changes)} change(s); dry run, nothing applied.")
            return
        count = applier.apply(client, changes, current, echo=lambda _line: None, wait=wait)
        out.print(f"Applied {count} change(s).")
    except APIError as exc:
        err.print(f"[red]Error {exc.status}:[/red] {exc.message}")
        raise typer.Exit(1) from None


def _has_baremetal(client: applier.Client) -> bool:
    try:
        client.call("baremetal", "GET", "/nodes", headers=applier.IRONIC)
    except Exception:  # no baremetal service in the catalog: nothing to prune there
        return False
    return True

"""`kumo stock request|list|show|approve|reject`: the stock-request workflow from a terminal,
authenticated like the openstack CLI (--os-cloud, OS_CLOUD, or OS_* variables)."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from kumo.apiclient import APIError, Client, connect

app = typer.Typer(help="Baremetal stock: ask for machines, approve or reject requests (admins)")
PATH = "/os-kumo-stock-requests"
COLUMNS = ("id", "project_id", "flavor_id", "count", "status", "reason", "hosts", "aggregate")

CloudOption = typer.Option(None, "--os-cloud", envvar="OS_CLOUD", help="Cloud in clouds.yaml")
FormatOption = typer.Option("table", "--format", "-f", help="table or json")


def _client(os_cloud: str | None) -> Client:
    return connect(os_cloud)


def _call(os_cloud: str | None, method: str, path: str, body: Any = None, params: Any = None) -> Any:
    try:
        return _client(os_cloud).call("compute", method, path, body, params)
    except APIError as exc:
        Console(stderr=True).print(f"[red]Error {exc.status}:[/red] {exc.message}")
        raise typer.Exit(1) from None


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _show(row: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        typer.echo(json.dumps(row, indent=2))
        return
    table = Table("Field", "Value")
    for key, value in row.items():
        table.add_row(key, _cell(value))
    Console().print(table)


@app.command("request")
def request(
    flavor: str = typer.Option(..., help="Flavor name or id"),
    count: int = typer.Option(..., min=1, help="How many machines"),
    reason: str = typer.Option(..., help="Why (the admin reads it)"),
    os_cloud: str = CloudOption,
    fmt: str = FormatOption,
) -> None:
    """Ask for COUNT machines of FLAVOR in your project's private stock."""
    body = {"stock_request": {"flavor": flavor, "count": count, "reason": reason}}
    _show(_call(os_cloud, "POST", PATH, body)["stock_request"], fmt)


@app.command("list")
def list_(
    all_projects: bool = typer.Option(False, "--all-projects", help="Every project's (admins)"),
    status: str = typer.Option(None, help="pending, approved or rejected"),
    os_cloud: str = CloudOption,
    fmt: str = FormatOption,
) -> None:
    """List stock requests."""
    params: dict[str, str] = {}
    if all_projects:
        params["all_projects"] = "1"
    if status:
        params["status"] = status
    rows = _call(os_cloud, "GET", PATH, params=params)["stock_requests"]
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(*COLUMNS)
    for row in rows:
        table.add_row(*(_cell(row[c]) for c in COLUMNS))
    Console().print(table)


@app.command("show")
def show(request_id: str, os_cloud: str = CloudOption, fmt: str = FormatOption) -> None:
    """Show one stock request."""
    _show(_call(os_cloud, "GET", f"{PATH}/{request_id}")["stock_request"], fmt)


@app.command("approve")
def approve(request_id: str, os_cloud: str = CloudOption, fmt: str = FormatOption) -> None:
    """Approve: move the machines from public to the project's private stock (admins)."""
    _show(_call(os_cloud, "POST", f"{PATH}/{request_id}/action", {"approve": None})["stock_request"], fmt)


@app.command("reject")
def reject(
    request_id: str,
    reason: str = typer.Option(..., help="Why (the requester reads it)"),
    os_cloud: str = CloudOption,
    fmt: str = FormatOption,
) -> None:
    """Reject a pending request with a reason (admins)."""
    body = {"reject": {"reason": reason}}
    _show(_call(os_cloud, "POST", f"{PATH}/{request_id}/action", body)["stock_request"], fmt)

"""The `kumo` command: api, agent, up (all-in-one), db upgrade."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import typer

from kumo.config import Settings, get_settings

app = typer.Typer(add_completion=False, help="kumo: a private cloud with the OpenStack API")
db_app = typer.Typer(help="Database schema")
app.add_typer(db_app, name="db")


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8780, help="Port to listen on"),
    workers: int = typer.Option(1, help="Worker processes (safe on PostgreSQL)"),
) -> None:
    """Serve identity, compute, image and the agents' internal API."""
    import uvicorn

    from kumo.logs import setup_logging

    setup_logging()
    uvicorn.run(
        "kumo.api.asgi:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


@app.command()
def agent(
    host: str = typer.Option(..., "--host", help="This hypervisor's host name"),
    driver: str = typer.Option("fake", help="Driver: fake"),
    api_url: str = typer.Option("http://127.0.0.1:8780", help="kumo API URL"),
    vcpus: int = typer.Option(32, help="fake driver: vCPUs to report"),
    memory_mb: int = typer.Option(131072, help="fake driver: RAM to report"),
    disk_gb: int = typer.Option(2000, help="fake driver: disk to report"),
    fake_delay: float = typer.Option(0.0, help="fake driver: seconds each guest operation takes"),
) -> None:
    """Run one hypervisor's agent."""
    from kumo.agent.agent import Agent, wait_for_api
    from kumo.agent.drivers import load_driver
    from kumo.logs import setup_logging

    setup_logging()
    settings = get_settings()
    wait_for_api(api_url, timeout=60)
    options: dict[str, object] = {}
    if driver == "fake":
        options = {"vcpus": vcpus, "memory_mb": memory_mb, "disk_gb": disk_gb, "delay": fake_delay}
    runner = Agent(
        api_url, host, load_driver(driver, host, **options), settings.secret("agent_token")
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    runner.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration to KUMO_DATABASE_URL."""
    from kumo.db.migrate import upgrade

    upgrade(get_settings().resolved_database_url)
    typer.echo("database at head")


@app.command()
def up(
    state_dir: Path = typer.Option(None, help="Where the all-in-one keeps its state (default ~/.kumo)"),
    port: int = typer.Option(8780, help="API port"),
    hosts: int = typer.Option(4, help="In-process fake hypervisors (spread over az1/az2)"),
    demo: bool = typer.Option(True, help="Boot a demo server once up"),
    exit_after_demo: bool = typer.Option(False, "--exit", help="Stop once the demo server is ACTIVE"),
) -> None:
    """All-in-one: migrate, bootstrap, serve the API with in-process agents, boot a demo server."""
    from kumo.allinone import run_all_in_one
    from kumo.logs import setup_logging

    setup_logging("WARNING")
    settings = Settings(state_dir=state_dir) if state_dir else get_settings()
    os.environ.setdefault("KUMO_STATE_DIR", str(settings.state_dir))
    run_all_in_one(settings, port=port, host_count=hosts, demo=demo, exit_after_demo=exit_after_demo)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
